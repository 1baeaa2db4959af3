/**
 * Graph surgery on existing models: extend a model with typed nodes and outputs, promote initializers
 * to graph inputs (so trained weights are fed), and prune everything the chosen outputs do not need.
 * The gradient builder and the trainer build on these; all work on a copy, never the caller's model.
 */
import { InvalidArgumentError, NotFoundError, type Tensor } from '@vlit/core';
import type { Attributes, OpOptions, Value, ValueRef } from '../builder.js';
import { inferGraphTypes } from '../infer.js';
import { onnx, protoToTensor, tensorToProto, type GraphProto, type NodeProto, type OnnxModel, type TensorProto } from '../proto.js';
import { cloneModel } from '../model.js';
import { outputCount, prepareOp } from '../prepare-op.js';
import { tensorValue, type TypeInfo } from '../shape-rules/index.js';
import { defaultOpset, makeValueInfo, typeInfoFromValueInfo } from '../value-info.js';

function graphOf(model: OnnxModel): GraphProto {
  if (!model.graph) throw new InvalidArgumentError('the model has no graph', { details: { field: 'graph' } });
  return model.graph as GraphProto;
}

/** An editable copy of an existing model: same `op`/`initializer`/`output` calls as the graph builder, typed by Vlit's shape rules. */
export interface ModelEditor {
  /** Default-domain opset of the model. */
  readonly opset: number;
  /** Handle on an existing value; dims are [] when even the rank is unknown (see `typeOf`). */
  value(name: string): Value;
  /** True when a value of this name exists (input, initializer or node output). */
  has(name: string): boolean;
  /** What is known about a value (dims null when the rank is unknown), or undefined. */
  typeOf(name: string): TypeInfo | undefined;
  /** Add any node; outputs are typed by the shape rules (or options.outputTypes). */
  op(opType: string, inputs: (ValueRef | null)[], attributes?: Attributes, options?: OpOptions & { outputs?: undefined }): Value;
  op(opType: string, inputs: (ValueRef | null)[], attributes: Attributes | undefined, options: OpOptions & { outputs: number | string[] }): Value[];
  /** Add a weight; the name must be free. */
  initializer(name: string, tensor: Tensor): Value;
  /** A name that no value or node uses yet, built from `hint`. */
  freshName(hint: string): string;
  /** Mark a value as a graph output, renaming it through an Identity node when `name` differs. */
  output(value: ValueRef, name?: string): Value;
  /** The edited model (a snapshot; the editor stays usable). */
  toModel(): OnnxModel;
}

/** Edit a copy of `model`: add nodes, initializers and outputs with the builder's calls and shape inference. */
export function editModel(model: OnnxModel): ModelEditor {
  const copy = cloneModel(model);
  const graph = graphOf(copy);
  const opset = defaultOpset(copy);
  const types = inferGraphTypes(graph, opset);
  const names = new Set<string>();
  for (const v of graph.input) names.add(v.name);
  for (const t of graph.initializer) names.add(t.name);
  for (const n of graph.node) for (const o of n.output) if (o) names.add(o);
  for (const v of graph.input)
    if (!types.has(v.name)) {
      const t = typeInfoFromValueInfo(v);
      if (t) types.set(v.name, t);
    }
  const nodeNames = new Set(graph.node.map((n) => n.name).filter((n): n is string => !!n));
  const counters = new Map<string, number>();

  const freshName = (hint: string): string => {
    let n = counters.get(hint) ?? 0;
    let name: string;
    do name = `${hint}_${n++}`;
    while (names.has(name) || nodeNames.has(name));
    counters.set(hint, n);
    return name;
  };
  const handle = (name: string): Value => {
    const t = types.get(name);
    return { name, dtype: t?.dtype ?? 'undefined', dims: t?.dims ?? [] };
  };
  const resolve = (ref: ValueRef, node: string, i: number): string => {
    const name = typeof ref === 'string' ? ref : ref.name;
    if (!names.has(name)) {
      throw new NotFoundError(`node '${node}' input ${i} refers to '${name}', which is not in the model`, { details: { field: `${node}.input[${i}]`, name } });
    }
    return name;
  };

  function op(opType: string, ins: (ValueRef | null)[], attributes?: Attributes, options?: OpOptions & { outputs?: undefined }): Value;
  function op(opType: string, ins: (ValueRef | null)[], attributes: Attributes | undefined, options: OpOptions & { outputs: number | string[] }): Value[];
  function op(opType: string, ins: (ValueRef | null)[], attributes: Attributes = {}, options: OpOptions = {}): Value | Value[] {
    const domain = options.domain ?? '';
    if (options.name && nodeNames.has(options.name))
      throw new InvalidArgumentError(`a node named '${options.name}' already exists`, { details: { field: 'name' } });
    const nodeName = options.name ?? freshName(opType);
    const inputNames = ins.map((r, i) => (r === null || r === undefined ? '' : resolve(r, nodeName, i)));
    const count = outputCount(options);
    const outNames = Array.isArray(options.outputs) ? options.outputs : Array.from({ length: count }, () => freshName(`${nodeName}_out`));
    for (const n of outNames) {
      if (names.has(n)) throw new InvalidArgumentError(`a value named '${n}' already exists`, { details: { field: n } });
    }
    const { attrs, outTypes } = prepareOp({ opType, nodeName, inputNames, attributes, options }, { opset, types });
    if (domain && !copy.opsetImport.some((o) => o.domain === domain)) copy.opsetImport.push(onnx.OperatorSetIdProto.create({ domain, version: 1 }));
    graph.node.push(
      onnx.NodeProto.create({ name: nodeName, opType, domain, input: inputNames, output: outNames, attribute: attrs as never }) as unknown as NodeProto,
    );
    nodeNames.add(nodeName);
    outNames.forEach((n, i) => {
      names.add(n);
      const t = outTypes[i];
      if (t) types.set(n, t);
    });
    const values = outNames.map(handle);
    return options.outputs === undefined ? values[0] : values;
  }

  return {
    opset,
    value(name) {
      if (!names.has(name)) throw new NotFoundError(`no value named '${name}' in the model`, { details: { field: name } });
      return handle(name);
    },
    has: (name) => names.has(name),
    typeOf: (name) => types.get(name),
    op,
    initializer(name, tensor) {
      if (names.has(name)) throw new InvalidArgumentError(`a value named '${name}' already exists`, { details: { field: name } });
      graph.initializer.push(tensorToProto(name, tensor));
      names.add(name);
      types.set(name, { dtype: tensor.dtype, dims: [...tensor.dims], value: tensorValue(tensor) });
      return handle(name);
    },
    freshName,
    output(ref, name) {
      let outName = resolve(ref, 'output', 0);
      if (name !== undefined && name !== outName) outName = op('Identity', [outName], {}, { outputs: [name] })[0].name;
      if (graph.output.some((o) => o.name === outName)) {
        throw new InvalidArgumentError(`'${outName}' is already a graph output`, { details: { field: outName } });
      }
      const t = types.get(outName);
      graph.output.push(makeValueInfo(outName, t?.dtype ?? 'undefined', t?.dims ?? null));
      return handle(outName);
    },
    toModel() {
      const declared = new Set([...graph.input, ...graph.output, ...graph.valueInfo].map((v) => v.name));
      const out = cloneModel(copy);
      const g = out.graph as GraphProto;
      // Declare the types of added values, so runtimes and inspectors see them like the builder's.
      for (const n of g.node) {
        for (const o of n.output) {
          const t = types.get(o);
          if (o && t && t.dtype !== 'undefined' && !declared.has(o)) {
            g.valueInfo.push(makeValueInfo(o, t.dtype, t.dims));
            declared.add(o);
          }
        }
      }
      return out;
    },
  };
}

/** Result of promoteInitializers: the model and the tensors now to be fed by name. */
export interface PromotedInitializers {
  model: OnnxModel;
  /** The promoted initializers' current values, keyed by input name. */
  values: Record<string, Tensor>;
}

/**
 * Turn initializers into graph inputs of the same name and type (e.g. the weights a trainer updates
 * and feeds each step). Returns a new model and the initial values; unknown names are a NotFoundError.
 */
export function promoteInitializers(model: OnnxModel, names: readonly string[]): PromotedInitializers {
  const copy = cloneModel(model);
  const g = graphOf(copy);
  const wanted = new Set(names);
  const values: Record<string, Tensor> = {};
  const kept: TensorProto[] = [];
  for (const t of g.initializer) {
    if (!wanted.has(t.name)) {
      kept.push(t);
      continue;
    }
    values[t.name] = protoToTensor(t, { field: `initializer ${t.name}` });
    const tensor = values[t.name];
    // Old exporters list initializers among the inputs too; replace such an entry rather than repeat it.
    g.input = g.input.filter((v) => v.name !== t.name);
    g.input.push(makeValueInfo(t.name, tensor.dtype, [...tensor.dims]));
  }
  for (const n of names) {
    if (!(n in values)) {
      throw new NotFoundError(`no initializer named '${n}' to promote`, {
        details: { field: 'names', name: n, available: g.initializer.map((t) => t.name).slice(0, 10) },
      });
    }
  }
  g.initializer = kept;
  return { model: copy, values };
}

/** Options for pruneModel. */
export interface PruneModelOptions {
  /** Graph outputs to keep (default: all current outputs). */
  outputs?: readonly string[];
  /** Drop graph inputs no kept node reads (default false: the feed signature stays as it was). */
  dropUnusedInputs?: boolean;
}

/**
 * Keep only the named outputs and the nodes, initializers (and optionally inputs) they need; a new
 * model. Nodes with subgraphs count the names their subgraphs read from the outer scope.
 */
export function pruneModel(model: OnnxModel, options: PruneModelOptions = {}): OnnxModel {
  const copy = cloneModel(model);
  const g = graphOf(copy);
  if (options.outputs) {
    const present = new Set(g.output.map((o) => o.name));
    for (const o of options.outputs) {
      if (!present.has(o)) throw new NotFoundError(`'${o}' is not a graph output`, { details: { field: 'outputs', name: o, available: [...present] } });
    }
    const keep = new Set(options.outputs);
    g.output = g.output.filter((o) => keep.has(o.name));
  }
  const needed = new Set(g.output.map((o) => o.name));
  const keptNodes: NodeProto[] = [];
  for (let i = g.node.length - 1; i >= 0; i--) {
    const n = g.node[i];
    if (!n.output.some((o) => o && needed.has(o))) continue;
    keptNodes.push(n);
    for (const x of n.input) if (x) needed.add(x);
    for (const a of n.attribute) for (const sub of [a.g, ...(a.graphs ?? [])]) if (sub) for (const x of outerReads(sub as GraphProto)) needed.add(x);
  }
  keptNodes.reverse();
  g.node = keptNodes;
  g.initializer = g.initializer.filter((t) => needed.has(t.name));
  if (options.dropUnusedInputs) g.input = g.input.filter((v) => needed.has(v.name));
  const produced = new Set(keptNodes.flatMap((n) => n.output));
  g.valueInfo = g.valueInfo.filter((v) => produced.has(v.name));
  return copy;
}

function outerReads(graph: GraphProto): string[] {
  const local = new Set<string>([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name)]);
  const reads: string[] = [];
  for (const n of graph.node) {
    for (const x of n.input) if (x && !local.has(x)) reads.push(x);
    for (const a of n.attribute)
      for (const sub of [a.g, ...(a.graphs ?? [])]) if (sub) reads.push(...outerReads(sub as GraphProto).filter((x) => !local.has(x)));
    for (const o of n.output) local.add(o);
  }
  return reads;
}
