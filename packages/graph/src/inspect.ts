/**
 * Reading and light editing of models: signatures, nodes, initializers, and exposing an inner tensor
 * as an extra output (how feature extractors tap real exported networks).
 */
import { InvalidArgumentError, NotFoundError, UnsupportedError, type Tensor } from '@vlit/core';
import { decodeAttributes, type DecodedAttribute } from './attributes.js';
import { inferGraphTypes } from './infer.js';
import { elementTypeFromOnnx, protoDims, protoToTensor, type Dim, type ElementType, type GraphProto, type OnnxModel, type TensorProto } from './proto.js';
import { getShapeRule, type TypeInfo } from './shape-rules/index.js';
import { defaultOpset, makeValueInfo, typeInfoFromValueInfo } from './value-info.js';

/** A named value in a model's signature. dims null means the rank is unknown. */
export interface ValueSignature {
  name: string;
  dtype: ElementType;
  dims: Dim[] | null;
}

/** A node as plain data. */
export interface NodeSummary {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, DecodedAttribute>;
}

/** An initializer's name, type and dims, without its data. */
export interface InitializerSummary {
  name: string;
  dtype: ElementType;
  dims: number[];
  /** True when its bytes live in an external data file. */
  external: boolean;
}

function graphOf(model: OnnxModel): GraphProto {
  if (!model.graph) throw new InvalidArgumentError('the model has no graph', { details: { field: 'graph' } });
  return model.graph as GraphProto;
}

function signature(vi: { name: string; type?: unknown }): ValueSignature {
  const t = typeInfoFromValueInfo(vi as never);
  return { name: vi.name, dtype: t?.dtype ?? 'undefined', dims: t ? t.dims : null };
}

/** Graph inputs that callers must feed (initializers listed as inputs by old exporters are left out). */
export function listInputs(model: OnnxModel): ValueSignature[] {
  const g = graphOf(model);
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  return (g.input ?? []).filter((v) => !inits.has(v.name)).map(signature);
}

/** Graph outputs with their declared types. */
export function listOutputs(model: OnnxModel): ValueSignature[] {
  return (graphOf(model).output ?? []).map(signature);
}

/** Every top-level node with decoded attributes. */
export function listNodes(model: OnnxModel): NodeSummary[] {
  return (graphOf(model).node ?? []).map((n) => ({
    name: n.name ?? '',
    opType: n.opType,
    domain: n.domain ?? '',
    inputs: [...n.input],
    outputs: [...n.output],
    attributes: decodeAttributes(n.attribute ?? []),
  }));
}

/** Every initializer's name, type and dims. */
export function listInitializers(model: OnnxModel): InitializerSummary[] {
  return (graphOf(model).initializer ?? []).map((t) => ({
    name: t.name,
    dtype: elementTypeFromOnnx(t.dataType),
    dims: protoDims(t),
    external: t.dataLocation === 1,
  }));
}

function suggest(names: Iterable<string>, wanted: string, count = 8): string[] {
  const all = [...names];
  const key = wanted.toLowerCase();
  const close = all.filter((n) => n.toLowerCase().includes(key) || key.includes(n.toLowerCase()));
  return [...new Set([...close, ...all])].slice(0, count);
}

/**
 * Read an initializer as a core tensor. Exporters such as paddle2onnx keep weights in Constant
 * nodes instead, so a Constant node's output of that name is accepted too.
 */
export function getInitializer(model: OnnxModel, name: string): Tensor {
  const g = graphOf(model);
  const init = (g.initializer ?? []).find((t) => t.name === name);
  if (init) return protoToTensor(init, { field: `initializer ${name}` });
  for (const n of g.node ?? []) {
    if (n.opType === 'Constant' && n.output[0] === name) {
      const value = (n.attribute ?? []).find((a) => a.name === 'value');
      if (value?.t) return protoToTensor(value.t as TensorProto, { field: `Constant ${name}` });
    }
  }
  throw new NotFoundError(`no initializer named '${name}'`, {
    details: {
      field: 'initializer',
      name,
      available: suggest(
        (g.initializer ?? []).map((t) => t.name),
        name,
      ),
    },
  });
}

/** Options for exposeOutput: the type to declare when it cannot be found or inferred. */
export interface ExposeOutputOptions {
  dtype?: ElementType;
  dims?: Dim[] | null;
}

// Ops whose output element type differs from their first input's; the fallback walk must not guess for them.
const TYPE_CHANGING = new Set([
  'Cast',
  'CastLike',
  'Shape',
  'Size',
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'And',
  'Or',
  'Xor',
  'Not',
  'IsNaN',
  'IsInf',
  'ArgMax',
  'ArgMin',
  'NonZero',
  'TopK',
  'ConstantOfShape',
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'Constant',
]);

function fallbackElementType(graph: GraphProto, name: string, known: Map<string, TypeInfo>): ElementType | undefined {
  // When no rule applies (custom or unsupported ops), most ops keep their first input's element type.
  const producers = new Map<string, (typeof graph.node)[number]>();
  for (const n of graph.node ?? []) for (const o of n.output) producers.set(o, n);
  const seen = new Set<string>();
  let current = name;
  while (!seen.has(current)) {
    seen.add(current);
    const t = known.get(current);
    if (t && t.dtype !== 'undefined') return t.dtype;
    const node = producers.get(current);
    if (!node || TYPE_CHANGING.has(node.opType)) return undefined;
    if (node.opType === 'Where') current = node.input[1];
    else current = node.input.find((i) => i) ?? '';
    if (!current) return undefined;
  }
  return undefined;
}

/**
 * Add an inner tensor as a new graph output, typed from options, existing value_info, shape
 * inference, or (at least) the element type of its producers. Mutates and returns the model.
 */
export function exposeOutput(model: OnnxModel, tensorName: string, options: ExposeOutputOptions = {}): OnnxModel {
  const g = graphOf(model);
  if ((g.output ?? []).some((o) => o.name === tensorName)) return model;
  const produced = new Set<string>();
  for (const n of g.node ?? []) for (const o of n.output) if (o) produced.add(o);
  for (const v of g.input ?? []) produced.add(v.name);
  for (const t of g.initializer ?? []) produced.add(t.name);
  if (!produced.has(tensorName)) {
    throw new NotFoundError(`no tensor named '${tensorName}' in the graph`, {
      details: { field: 'tensorName', name: tensorName, available: suggest(produced, tensorName) },
    });
  }
  let dtype = options.dtype;
  let dims: Dim[] | null | undefined = options.dims;
  if (!dtype || dims === undefined) {
    const declared = [...(g.valueInfo ?? []), ...(g.input ?? [])].find((v) => v.name === tensorName);
    const fromDeclared = declared ? typeInfoFromValueInfo(declared) : undefined;
    let inferred: TypeInfo | undefined;
    let known: Map<string, TypeInfo> | undefined;
    if (!fromDeclared?.dims || !fromDeclared.dims.every((d) => d !== null)) {
      known = inferGraphTypes(g, defaultOpset(model));
      inferred = known.get(tensorName);
    }
    const best = inferred && (inferred.dims || !fromDeclared) ? inferred : fromDeclared;
    dtype ??= best?.dtype !== 'undefined' ? best?.dtype : undefined;
    if (dims === undefined) dims = best?.dims ?? null;
    dtype ??= fallbackElementType(g, tensorName, known ?? inferGraphTypes(g, defaultOpset(model)));
  }
  if (!dtype) {
    const producer = (g.node ?? []).find((n) => n.output.includes(tensorName));
    throw new UnsupportedError(
      `cannot tell the element type of '${tensorName}'${producer ? ` (produced by ${producer.opType}${getShapeRule(producer.opType, producer.domain ?? '') ? '' : ', which has no shape rule'})` : ''}; pass options.dtype`,
      { details: { field: 'dtype', name: tensorName } },
    );
  }
  g.output.push(makeValueInfo(tensorName, dtype, dims ?? null));
  return model;
}
