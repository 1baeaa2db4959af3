/**
 * Graph-level shape inference: walks nodes in order, applying the per-operator rules, seeded by
 * graph inputs, initializers and any value_info already present.
 */
import { isVlitError, type VlitWarning } from '@vlit/core';
import { decodeAttributes } from './attributes.js';
import { type Dim, type GraphProto, type OnnxModel } from './proto.js';
import { getShapeRule, infoFromTensorProto, type TypeInfo } from './shape-rules/index.js';
import { defaultOpset, makeValueInfo, typeInfoFromValueInfo } from './value-info.js';

/** Options for shape inference. */
export interface InferShapesOptions {
  /** Throw on the first node whose rule finds a mismatch, instead of reporting a warning. */
  strict?: boolean;
  /** Receives a warning for each node that could not be inferred because its rule found a problem. */
  onWarning?: (warning: VlitWarning) => void;
}

function mergeInfo(inferred: TypeInfo | undefined, declared: TypeInfo | undefined): TypeInfo | undefined {
  if (!inferred) return declared;
  if (!declared) return inferred;
  if (!inferred.dims) return { ...inferred, dims: declared.dims };
  if (!declared.dims || declared.dims.length !== inferred.dims.length) return inferred;
  const dims: Dim[] = inferred.dims.map((d, i) => (d === null ? declared.dims![i] : d));
  return { ...inferred, dims };
}

/** Compute what is known about every value of a graph (top level; subgraphs are not entered). */
export function inferGraphTypes(graph: GraphProto, opset: number, options: InferShapesOptions = {}): Map<string, TypeInfo> {
  const known = new Map<string, TypeInfo>();
  const declared = new Map<string, TypeInfo>();
  for (const vi of [...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
    const t = typeInfoFromValueInfo(vi);
    if (t) declared.set(vi.name, t);
  }
  for (const init of graph.initializer ?? []) known.set(init.name, infoFromTensorProto(init));
  for (const vi of graph.input ?? []) {
    // Initializers listed as inputs (old IR) keep their constant contents.
    if (known.has(vi.name)) continue;
    const t = typeInfoFromValueInfo(vi);
    if (t) known.set(vi.name, t);
  }
  for (const node of graph.node ?? []) {
    const rule = getShapeRule(node.opType, node.domain ?? '');
    let outs: (TypeInfo | undefined)[] = [];
    if (rule) {
      try {
        outs = rule({
          opType: node.opType,
          nodeName: node.name || node.output[0] || node.opType,
          opset,
          inputs: node.input.map((n) => (n ? known.get(n) : undefined)),
          attrs: decodeAttributes(node.attribute ?? []),
          outputCount: node.output.length,
        });
      } catch (err) {
        if (options.strict || !isVlitError(err)) throw err;
        options.onWarning?.({
          code: 'VLIT_W_SHAPE_INFERENCE',
          message: err.message,
          details: { ...err.details, node: node.name, op: node.opType },
        });
        outs = [];
      }
    }
    node.output.forEach((name, i) => {
      if (!name) return;
      const t = mergeInfo(outs[i], declared.get(name));
      if (t) known.set(name, t);
    });
  }
  return known;
}

/**
 * Fill graph.value_info with the inferred type of every node output that is not a graph output,
 * so tools (and exposeOutput) see intermediate shapes. Mutates and returns the model.
 */
export function inferShapes(model: OnnxModel, options: InferShapesOptions = {}): OnnxModel {
  const graph = model.graph;
  if (!graph) return model;
  const known = inferGraphTypes(graph as GraphProto, defaultOpset(model), options);
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  const inputs = new Set((graph.input ?? []).map((o) => o.name));
  const infos = [];
  for (const node of graph.node ?? []) {
    for (const name of node.output) {
      if (!name || outputs.has(name) || inputs.has(name)) continue;
      const t = known.get(name);
      if (!t || t.dtype === 'undefined') continue;
      infos.push(makeValueInfo(name, t.dtype, t.dims));
    }
  }
  graph.valueInfo = infos;
  return model;
}
