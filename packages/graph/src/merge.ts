/**
 * Composition of two models into one: b's chosen inputs are fed by a's outputs, and every other name
 * gets a per-model prefix so the two graphs cannot collide.
 */
import { CompatibilityError, InvalidArgumentError, NotFoundError } from '@vlit/core';
import { onnx, toNumber, type GraphProto, type LongLike, type NodeProto, type OnnxModel, type TensorProto, type ValueInfoProto } from './proto.js';
import { cloneModel } from './model.js';
import { formatDims } from './shape-rules/index.js';
import { typeInfoFromValueInfo } from './value-info.js';

/** Options for mergeModels. */
export interface MergeModelsOptions {
  /** Prefix for every name from model a (default 'a/'). */
  prefixA?: string;
  /** Prefix for every name from model b (default 'b/'). */
  prefixB?: string;
  /** Pairs [output of a, input of b]: b's input is fed by a's output. */
  connect: [string, string][];
}

/** Options for renameGraph. */
export interface RenameGraphOptions {
  /** New names for the graph's named nodes, subgraphs' included (default: node names stay). */
  nodes?: (name: string) => string;
}

/** Rename a graph's values in place (inputs, outputs, value_info, initializers, node inputs and outputs), subgraphs included. */
export function renameGraph(graph: GraphProto, rename: (name: string) => string, options: RenameGraphOptions = {}): void {
  const vi = (v: ValueInfoProto) => {
    v.name = rename(v.name);
  };
  graph.input.forEach(vi);
  graph.output.forEach(vi);
  graph.valueInfo.forEach(vi);
  graph.initializer.forEach((t: TensorProto) => {
    t.name = rename(t.name);
  });
  graph.node.forEach((n: NodeProto) => {
    if (n.name && options.nodes) n.name = options.nodes(n.name);
    n.input = n.input.map((x) => (x ? rename(x) : x));
    n.output = n.output.map((x) => (x ? rename(x) : x));
    for (const a of n.attribute) {
      // Subgraphs may read outer names, so they get the same renaming to stay consistent.
      if (a.g) renameGraph(a.g as GraphProto, rename, options);
      for (const g of a.graphs ?? []) renameGraph(g as GraphProto, rename, options);
    }
  });
}

function opsets(model: OnnxModel): Map<string, number> {
  const m = new Map<string, number>();
  for (const o of model.opsetImport) m.set(o.domain === 'ai.onnx' ? '' : (o.domain ?? ''), toNumber(o.version as LongLike));
  return m;
}

/** Join two models into one graph, wiring a's outputs into b's inputs as listed in `connect`. */
export function mergeModels(a: OnnxModel, b: OnnxModel, options: MergeModelsOptions): OnnxModel {
  const prefixA = options.prefixA ?? 'a/';
  const prefixB = options.prefixB ?? 'b/';
  if (!a.graph || !b.graph) throw new InvalidArgumentError('both models need a graph', { details: { field: !a.graph ? 'a.graph' : 'b.graph' } });
  const opA = opsets(a);
  const opB = opsets(b);
  for (const [domain, version] of opB) {
    const other = opA.get(domain);
    if (other !== undefined && other !== version) {
      // Operator semantics change between opsets (e.g. Squeeze's axes), so one graph cannot mix them.
      throw new CompatibilityError(`cannot merge: model a uses opset ${other} of domain '${domain || 'ai.onnx'}' but model b uses ${version}`, {
        details: { field: 'opset_import', left: `a: ${other}`, right: `b: ${version}`, domain },
      });
    }
  }
  const ga = a.graph as GraphProto;
  const gb = b.graph as GraphProto;
  const aOut = new Map(ga.output.map((o) => [o.name, o]));
  const bIn = new Map(gb.input.map((i) => [i.name, i]));
  const feeds = new Map<string, string>();
  for (const [outName, inName] of options.connect) {
    const o = aOut.get(outName);
    if (!o) throw new NotFoundError(`model a has no output '${outName}'`, { details: { field: 'connect', name: outName, available: [...aOut.keys()] } });
    const i = bIn.get(inName);
    if (!i) throw new NotFoundError(`model b has no input '${inName}'`, { details: { field: 'connect', name: inName, available: [...bIn.keys()] } });
    if (feeds.has(inName)) throw new InvalidArgumentError(`model b input '${inName}' is connected twice`, { details: { field: 'connect', name: inName } });
    const to = typeInfoFromValueInfo(o);
    const ti = typeInfoFromValueInfo(i);
    const left = `a.${outName} ${to?.dtype ?? '?'}${formatDims(to?.dims)}`;
    const right = `b.${inName} ${ti?.dtype ?? '?'}${formatDims(ti?.dims)}`;
    if (to && ti && to.dtype !== ti.dtype) {
      throw new CompatibilityError(`cannot connect ${left} to ${right}: element types differ`, { details: { field: 'connect', left, right } });
    }
    if (to?.dims && ti?.dims) {
      const bad = to.dims.length !== ti.dims.length || to.dims.some((d, k) => typeof d === 'number' && typeof ti.dims![k] === 'number' && d !== ti.dims![k]);
      if (bad) throw new CompatibilityError(`cannot connect ${left} to ${right}: shapes differ`, { details: { field: 'connect', left, right } });
    }
    feeds.set(inName, outName);
  }
  const ma = cloneModel(a);
  const mb = cloneModel(b);
  const renameA = (n: string) => prefixA + n;
  const renameB = (n: string) => (feeds.has(n) ? prefixA + feeds.get(n)! : prefixB + n);
  renameGraph(ma.graph as GraphProto, renameA, { nodes: renameA });
  renameGraph(mb.graph as GraphProto, renameB, { nodes: renameB });
  const A = ma.graph as GraphProto;
  const B = mb.graph as GraphProto;
  const fed = new Set([...feeds.values()].map((n) => prefixA + n));
  const bInputsKept = B.input.filter((v) => !fed.has(v.name));
  const aOutputsKept = A.output.filter((v) => !fed.has(v.name));
  const names = new Set<string>();
  const clash = (n: string) => {
    if (names.has(n)) {
      throw new InvalidArgumentError(`merged graph would define '${n}' twice; choose distinct prefixA/prefixB`, { details: { field: 'prefix', name: n } });
    }
    names.add(n);
  };
  for (const g of [A, B]) {
    g.initializer.forEach((t) => clash(t.name));
    g.node.forEach((n) => n.output.forEach((o) => o && clash(o)));
  }
  for (const v of [...A.input, ...bInputsKept])
    if (!A.initializer.some((t) => t.name === v.name) && !B.initializer.some((t) => t.name === v.name)) clash(v.name);
  const merged = onnx.GraphProto.create({
    name: `${A.name || 'a'}+${B.name || 'b'}`,
    node: [...A.node, ...B.node],
    input: [...A.input, ...bInputsKept],
    output: [...aOutputsKept, ...B.output],
    initializer: [...A.initializer, ...B.initializer],
    valueInfo: [...A.valueInfo, ...A.output.filter((v) => fed.has(v.name)), ...B.valueInfo],
    sparseInitializer: [...A.sparseInitializer, ...B.sparseInitializer],
  } as never) as unknown as GraphProto;
  const opsetImport = new Map(opA);
  for (const [d, v] of opB) opsetImport.set(d, v);
  return onnx.ModelProto.create({
    irVersion: Math.max(toNumber(a.irVersion as LongLike), toNumber(b.irVersion as LongLike)),
    producerName: 'vlit',
    opsetImport: [...opsetImport].map(([domain, version]) => onnx.OperatorSetIdProto.create({ domain, version })),
    graph: merged,
  }) as unknown as OnnxModel;
}
