/**
 * A graph builder that infers every value's dtype and shape as nodes are added, so shape mistakes
 * surface at build time with the node's name instead of at session creation in a runtime.
 */
import {
  InvalidArgumentError,
  NotFoundError,
  UnsupportedError,
  createTensor,
  float32ToFloat16,
  type DType,
  type Tensor,
} from '@vlit/core';
import { decodeAttributes, encodeAttribute, type AttributeValue } from './attributes.js';
import { elementTypeToOnnx, isCoreDType, onnx, tensorToProto, type Dim, type ElementType, type NodeProto, type OnnxModel, type TensorProto, type ValueInfoProto } from './proto.js';
import { getShapeRule, tensorValue, type TypeInfo } from './shape-rules.js';
import { makeValueInfo } from './value-info.js';

/** A handle on a value in the graph under construction, with its inferred type. */
export interface Value {
  readonly name: string;
  readonly dtype: ElementType;
  /** Sizes, symbolic names (`'batch'`) or null where unknown. */
  readonly dims: readonly Dim[];
}

/** A value given by handle or by name; null (in `op`) marks an omitted optional input. */
export type ValueRef = Value | string;
/** A value, or a number that becomes a scalar constant of the other operand's dtype. */
export type Operand = ValueRef | number;

/** Options for createGraph. */
export interface CreateGraphOptions {
  name: string;
  /** Default-domain opset; helpers emit the form that opset expects. */
  opset?: number;
  irVersion?: number;
  /** Extra operator domains and their versions, e.g. `{ 'com.microsoft': 1 }`. */
  domains?: Record<string, number>;
  producerName?: string;
}

/** Options for a generic node. */
export interface OpOptions {
  /** Number of outputs or their names; giving it makes `op` return an array. */
  outputs?: number | string[];
  domain?: string;
  name?: string;
  /** Declared output types, for ops without a shape rule (custom domains). */
  outputTypes?: { dtype: ElementType; dims: readonly Dim[] }[];
}

/** Naming options shared by every helper. */
export interface NodeNaming {
  /** Node name. */
  name?: string;
  /** Output value name. */
  output?: string;
}

/** Attributes for a generic node. */
export type Attributes = Record<string, AttributeValue | undefined>;

/** The builder returned by createGraph. */
export interface GraphBuilder {
  readonly name: string;
  readonly opset: number;
  /** Declare a graph input; string dims are symbolic. */
  input(name: string, dtype: ElementType, dims: readonly (number | string | null)[]): Value;
  /** Add a weight stored as raw little-endian bytes. */
  initializer(name: string, tensor: Tensor): Value;
  /** Look up a value by name. */
  value(name: string): Value;
  /** Add any node; outputs are typed by Vlit's shape rules (or options.outputTypes). */
  op(opType: string, inputs: (ValueRef | null)[], attributes?: Attributes, options?: OpOptions & { outputs?: undefined }): Value;
  op(opType: string, inputs: (ValueRef | null)[], attributes: Attributes | undefined, options: OpOptions & { outputs: number | string[] }): Value[];
  /** Mark a value as a graph output, renaming it through an Identity node when `name` differs. */
  output(value: ValueRef, name?: string): Value;
  /** Snapshot the graph as an ONNX model; the builder stays usable. */
  toModel(): OnnxModel;

  matMul(a: ValueRef, b: ValueRef, opts?: NodeNaming): Value;
  add(a: Operand, b: Operand, opts?: NodeNaming): Value;
  sub(a: Operand, b: Operand, opts?: NodeNaming): Value;
  mul(a: Operand, b: Operand, opts?: NodeNaming): Value;
  div(a: Operand, b: Operand, opts?: NodeNaming): Value;
  pow(a: Operand, b: Operand, opts?: NodeNaming): Value;
  equal(a: Operand, b: Operand, opts?: NodeNaming): Value;
  where(condition: ValueRef, x: Operand, y: Operand, opts?: NodeNaming): Value;
  gemm(a: ValueRef, b: ValueRef, c?: ValueRef | null, opts?: NodeNaming & { alpha?: number; beta?: number; transA?: boolean; transB?: boolean }): Value;
  gelu(x: ValueRef, opts?: NodeNaming & { approximate?: 'none' | 'tanh' }): Value;
  relu(x: ValueRef, opts?: NodeNaming): Value;
  sigmoid(x: ValueRef, opts?: NodeNaming): Value;
  tanh(x: ValueRef, opts?: NodeNaming): Value;
  erf(x: ValueRef, opts?: NodeNaming): Value;
  sqrt(x: ValueRef, opts?: NodeNaming): Value;
  exp(x: ValueRef, opts?: NodeNaming): Value;
  neg(x: ValueRef, opts?: NodeNaming): Value;
  identity(x: ValueRef, opts?: NodeNaming): Value;
  softmax(x: ValueRef, opts?: NodeNaming & { axis?: number }): Value;
  layerNormalization(x: ValueRef, scale: ValueRef, bias?: ValueRef | null, opts?: NodeNaming & { axis?: number; epsilon?: number }): Value;
  reduceMean(x: ValueRef, axes: number[], opts?: NodeNaming & { keepdims?: boolean }): Value;
  conv(
    x: ValueRef,
    w: ValueRef,
    b?: ValueRef | null,
    opts?: NodeNaming & { strides?: number[]; pads?: number[]; kernelShape?: number[]; group?: number; dilations?: number[] },
  ): Value;
  reshape(x: ValueRef, shape: number[] | ValueRef, opts?: NodeNaming & { allowzero?: boolean }): Value;
  transpose(x: ValueRef, perm?: number[], opts?: NodeNaming): Value;
  concat(values: ValueRef[], axis: number, opts?: NodeNaming): Value;
  split(x: ValueRef, opts: { axis?: number; sizes?: number[]; count?: number; name?: string; outputs?: string[] }): Value[];
  slice(x: ValueRef, opts: NodeNaming & { starts: number[]; ends: number[]; axes?: number[]; steps?: number[] }): Value;
  gather(x: ValueRef, indices: ValueRef | number | number[], opts?: NodeNaming & { axis?: number }): Value;
  unsqueeze(x: ValueRef, axes: number[], opts?: NodeNaming): Value;
  squeeze(x: ValueRef, axes?: number[], opts?: NodeNaming): Value;
  flatten(x: ValueRef, opts?: NodeNaming & { axis?: number }): Value;
  cast(x: ValueRef, to: ElementType, opts?: NodeNaming): Value;
  shape(x: ValueRef, opts?: NodeNaming & { start?: number; end?: number }): Value;
  /** A Constant node (the value travels in the node, not as an initializer). */
  constant(tensor: Tensor, opts?: NodeNaming): Value;
  expand(x: ValueRef, shape: number[] | ValueRef, opts?: NodeNaming): Value;
}

function scalarTensor(dtype: ElementType, v: number): Tensor {
  if (!isCoreDType(dtype)) throw new UnsupportedError(`cannot make a ${dtype} constant`, { details: { field: 'dtype' } });
  const d: DType = dtype;
  if (d === 'int64' || d === 'uint64') return createTensor(d, [], [BigInt(v)]);
  if (d === 'float16') return createTensor(d, [], new Uint16Array([float32ToFloat16(v)]));
  if (d === 'bool') return createTensor(d, [], new Uint8Array([v ? 1 : 0]));
  return createTensor(d, [], [v]);
}

function int64(values: readonly number[]): Tensor {
  return createTensor('int64', [values.length], values.map((v) => BigInt(v)));
}

/** Start building an ONNX graph with on-the-fly dtype and shape inference. */
export function createGraph(options: CreateGraphOptions): GraphBuilder {
  const opset = options.opset ?? 20;
  const irVersion = options.irVersion ?? 9;
  const domains = new Map<string, number>(Object.entries(options.domains ?? {}));
  const types = new Map<string, TypeInfo>();
  const inputs: ValueInfoProto[] = [];
  const outputs: ValueInfoProto[] = [];
  const initializers: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const nodeNames = new Set<string>();
  const counters = new Map<string, number>();

  const handle = (name: string): Value => {
    const t = types.get(name)!;
    return { name, dtype: t.dtype, dims: t.dims ?? [] };
  };

  const claim = (name: string, what: string): void => {
    if (!name) throw new InvalidArgumentError(`${what} needs a non-empty name`, { details: { field: 'name' } });
    if (types.has(name)) throw new InvalidArgumentError(`a value named '${name}' already exists in graph '${options.name}'`, { details: { field: name } });
  };

  const resolve = (ref: ValueRef, node: string, index: number): string => {
    const name = typeof ref === 'string' ? ref : ref.name;
    if (!types.has(name)) {
      throw new NotFoundError(`node '${node}' input ${index} refers to '${name}', which is not in graph '${options.name}'`, {
        details: { field: `${node}.input[${index}]`, name, available: [...types.keys()].slice(0, 10) },
      });
    }
    return name;
  };

  const uniqueNodeName = (opType: string, wanted?: string): string => {
    if (wanted) {
      if (nodeNames.has(wanted)) throw new InvalidArgumentError(`a node named '${wanted}' already exists`, { details: { field: 'name' } });
      return wanted;
    }
    let n = counters.get(opType) ?? 0;
    let name: string;
    do name = `${opType}_${n++}`;
    while (nodeNames.has(name) || types.has(`${name}_output`));
    counters.set(opType, n);
    return name;
  };

  const initializer = (name: string, tensor: Tensor): Value => {
    claim(name, 'initializer');
    const proto = tensorToProto(name, tensor);
    initializers.push(proto);
    types.set(name, { dtype: tensor.dtype, dims: [...tensor.dims], value: tensorValue(tensor) });
    return handle(name);
  };

  function op(opType: string, ins: (ValueRef | null)[], attributes?: Attributes, opOptions?: OpOptions & { outputs?: undefined }): Value;
  function op(opType: string, ins: (ValueRef | null)[], attributes: Attributes | undefined, opOptions: OpOptions & { outputs: number | string[] }): Value[];
  function op(opType: string, ins: (ValueRef | null)[], attributes: Attributes = {}, opOptions: OpOptions = {}): Value | Value[] {
    const domain = opOptions.domain ?? '';
    const nodeName = uniqueNodeName(opType, opOptions.name);
    const inputNames = ins.map((r, i) => (r === null || r === undefined ? '' : resolve(r, nodeName, i)));
    const count = typeof opOptions.outputs === 'number' ? opOptions.outputs : (opOptions.outputs?.length ?? 1);
    const outNames = Array.isArray(opOptions.outputs)
      ? opOptions.outputs
      : Array.from({ length: count }, (_, i) => (count === 1 ? `${nodeName}_output` : `${nodeName}_output_${i}`));
    for (const n of outNames) claim(n, `output of ${nodeName}`);
    if (new Set(outNames).size !== outNames.length) throw new InvalidArgumentError(`node '${nodeName}' repeats an output name`, { details: { field: nodeName } });
    const attrs = Object.entries(attributes)
      .filter((e): e is [string, AttributeValue] => e[1] !== undefined)
      .map(([k, v]) => encodeAttribute(k, v, nodeName));
    let outTypes: (TypeInfo | undefined)[];
    if (opOptions.outputTypes) {
      outTypes = opOptions.outputTypes.map((t) => ({ dtype: t.dtype, dims: [...t.dims] }));
    } else {
      const rule = getShapeRule(opType, domain);
      if (!rule) {
        throw new UnsupportedError(`no shape rule for ${domain ? `${domain}.` : ''}${opType} (node '${nodeName}'); pass options.outputTypes`, {
          details: { field: nodeName, op: opType },
        });
      }
      outTypes = rule({
        opType,
        nodeName,
        opset: domain ? 1 : opset,
        inputs: inputNames.map((n) => (n ? types.get(n) : undefined)),
        attrs: decodeAttributes(attrs),
        outputCount: count,
      });
    }
    outNames.forEach((n, i) => {
      const t = outTypes[i];
      if (!t || !t.dims || t.dtype === 'undefined') {
        throw new UnsupportedError(`cannot infer the ${t ? 'rank' : 'type'} of output ${i} of ${opType} node '${nodeName}'; pass options.outputTypes`, {
          details: { field: `${nodeName}.output[${i}]`, op: opType },
        });
      }
    });
    if (domain && !domains.has(domain)) domains.set(domain, 1);
    nodeNames.add(nodeName);
    nodes.push(onnx.NodeProto.create({ name: nodeName, opType, domain, input: inputNames, output: outNames, attribute: attrs as never }) as unknown as NodeProto);
    outNames.forEach((n, i) => types.set(n, outTypes[i]!));
    const values = outNames.map(handle);
    return opOptions.outputs === undefined ? values[0] : values;
  }

  const single = (opType: string, ins: (ValueRef | null)[], attrs: Attributes, naming?: NodeNaming): Value => {
    const opts: OpOptions & { outputs?: undefined } = { name: naming?.name };
    if (naming?.output) return op(opType, ins, attrs, { name: naming.name, outputs: [naming.output] })[0];
    return op(opType, ins, attrs, opts);
  };

  const typeOf = (ref: ValueRef): ElementType => {
    const name = typeof ref === 'string' ? ref : ref.name;
    const t = types.get(name);
    if (!t) throw new NotFoundError(`no value named '${name}' in graph '${options.name}'`, { details: { field: name } });
    return t.dtype;
  };

  let constCount = 0;
  const constName = (hint: string): string => {
    let name: string;
    do name = `${hint}_const_${constCount++}`;
    while (types.has(name));
    return name;
  };

  const operands = (a: Operand, b: Operand, opType: string): [ValueRef, ValueRef] => {
    if (typeof a === 'number' && typeof b === 'number') {
      throw new InvalidArgumentError(`${opType} needs at least one graph value, got two numbers`, { details: { field: opType } });
    }
    const toRef = (x: Operand, other: Operand): ValueRef => (typeof x === 'number' ? initializer(constName(opType), scalarTensor(typeOf(other as ValueRef), x)) : x);
    return [toRef(a, b), toRef(b, a)];
  };

  const binary = (opType: string) => (a: Operand, b: Operand, naming?: NodeNaming) => single(opType, operands(a, b, opType), {}, naming);
  const unary = (opType: string) => (x: ValueRef, naming?: NodeNaming) => single(opType, [x], {}, naming);
  const axesInput = (hint: string, axes: readonly number[]): Value => initializer(constName(hint), int64(axes));
  const shapeInput = (hint: string, shape: number[] | ValueRef): ValueRef => (Array.isArray(shape) ? initializer(constName(hint), int64(shape)) : shape);

  const builder: GraphBuilder = {
    name: options.name,
    opset,
    input(name, dtype, dims) {
      claim(name, 'input');
      elementTypeToOnnx(dtype);
      const d: Dim[] = dims.map((x) => x);
      inputs.push(makeValueInfo(name, dtype, d));
      types.set(name, { dtype, dims: d });
      return handle(name);
    },
    initializer,
    value(name) {
      if (!types.has(name)) throw new NotFoundError(`no value named '${name}' in graph '${options.name}'`, { details: { field: name } });
      return handle(name);
    },
    op,
    output(ref, name) {
      const source = resolve(ref, 'output', 0);
      let outName = source;
      if (name !== undefined && name !== source) outName = single('Identity', [source], {}, { output: name }).name;
      if (outputs.some((o) => o.name === outName)) {
        throw new InvalidArgumentError(`'${outName}' is already a graph output`, { details: { field: outName } });
      }
      const t = types.get(outName)!;
      outputs.push(makeValueInfo(outName, t.dtype, t.dims));
      return handle(outName);
    },
    toModel() {
      if (outputs.length === 0) {
        throw new InvalidArgumentError(`graph '${options.name}' has no outputs; call output() first`, { details: { field: 'output' } });
      }
      const declared = new Set([...inputs, ...outputs].map((v) => v.name));
      const valueInfo: ValueInfoProto[] = [];
      for (const n of nodes) {
        for (const o of n.output) {
          const t = types.get(o);
          if (t && !declared.has(o)) valueInfo.push(makeValueInfo(o, t.dtype, t.dims));
        }
      }
      const opsetImport = [{ domain: '', version: opset }, ...[...domains].map(([domain, version]) => ({ domain, version }))];
      return onnx.ModelProto.create({
        irVersion,
        producerName: options.producerName ?? 'vlit',
        opsetImport: opsetImport.map((o) => onnx.OperatorSetIdProto.create(o)),
        graph: onnx.GraphProto.create({
          name: options.name,
          node: [...nodes],
          input: [...inputs],
          output: [...outputs],
          initializer: [...initializers],
          valueInfo,
        } as never),
      }) as unknown as OnnxModel;
    },
    matMul: (a, b, naming) => single('MatMul', [a, b], {}, naming),
    add: binary('Add'),
    sub: binary('Sub'),
    mul: binary('Mul'),
    div: binary('Div'),
    pow: (a, b, naming) => {
      // Pow's exponent keeps its own dtype; a numeric exponent takes the base's.
      const [x, y] = operands(a, b, 'Pow');
      return single('Pow', [x, y], {}, naming);
    },
    equal: binary('Equal'),
    where(c, x, y, naming) {
      const [xx, yy] = operands(x, y, 'Where');
      return single('Where', [c, xx, yy], {}, naming);
    },
    gemm(a, b, c, o = {}) {
      const attrs: Attributes = {
        alpha: o.alpha === undefined ? undefined : { kind: 'float', value: o.alpha },
        beta: o.beta === undefined ? undefined : { kind: 'float', value: o.beta },
        transA: o.transA ? 1 : undefined,
        transB: o.transB ? 1 : undefined,
      };
      return single('Gemm', c ? [a, b, c] : [a, b], attrs, o);
    },
    gelu(x, o = {}) {
      if (opset < 20) throw new UnsupportedError(`Gelu needs opset 20, graph '${options.name}' uses ${opset}`, { details: { field: 'opset' } });
      return single('Gelu', [x], { approximate: o.approximate && o.approximate !== 'none' ? o.approximate : undefined }, o);
    },
    relu: unary('Relu'),
    sigmoid: unary('Sigmoid'),
    tanh: unary('Tanh'),
    erf: unary('Erf'),
    sqrt: unary('Sqrt'),
    exp: unary('Exp'),
    neg: unary('Neg'),
    identity: unary('Identity'),
    softmax: (x, o = {}) => single('Softmax', [x], { axis: o.axis ?? -1 }, o),
    layerNormalization(x, scale, bias, o = {}) {
      if (opset < 17) throw new UnsupportedError(`LayerNormalization needs opset 17, graph '${options.name}' uses ${opset}`, { details: { field: 'opset' } });
      const attrs: Attributes = { axis: o.axis ?? -1, epsilon: { kind: 'float', value: o.epsilon ?? 1e-5 } };
      return single('LayerNormalization', bias ? [x, scale, bias] : [x, scale], attrs, o);
    },
    reduceMean(x, axes, o = {}) {
      const keepdims = o.keepdims === false ? 0 : 1;
      if (opset >= 18) return single('ReduceMean', [x, axesInput('axes', axes)], { keepdims }, o);
      return single('ReduceMean', [x], { axes: { kind: 'ints', value: axes }, keepdims }, o);
    },
    conv(x, w, b, o = {}) {
      const attrs: Attributes = {
        strides: o.strides ? { kind: 'ints', value: o.strides } : undefined,
        pads: o.pads ? { kind: 'ints', value: o.pads } : undefined,
        kernel_shape: o.kernelShape ? { kind: 'ints', value: o.kernelShape } : undefined,
        dilations: o.dilations ? { kind: 'ints', value: o.dilations } : undefined,
        group: o.group,
      };
      return single('Conv', b ? [x, w, b] : [x, w], attrs, o);
    },
    reshape: (x, shape, o = {}) => single('Reshape', [x, shapeInput('shape', shape)], { allowzero: o.allowzero ? 1 : undefined }, o),
    transpose: (x, perm, o) => single('Transpose', [x], { perm: perm ? { kind: 'ints', value: perm } : undefined }, o),
    concat: (values, axis, o) => single('Concat', values, { axis }, o),
    split(x, o) {
      const count = o.outputs?.length ?? o.sizes?.length ?? o.count;
      if (!count) throw new InvalidArgumentError('split needs sizes, count or outputs', { details: { field: 'split' } });
      const ins: ValueRef[] = [x];
      const attrs: Attributes = { axis: o.axis ?? 0 };
      if (o.sizes) {
        if (opset >= 13) ins.push(axesInput('split', o.sizes));
        else attrs.split = { kind: 'ints', value: o.sizes };
      } else if (opset >= 18) attrs.num_outputs = count;
      return op('Split', ins, attrs, { name: o.name, outputs: o.outputs ?? count });
    },
    slice(x, o) {
      if (opset < 10) {
        return single('Slice', [x], {
          starts: { kind: 'ints', value: o.starts },
          ends: { kind: 'ints', value: o.ends },
          axes: o.axes ? { kind: 'ints', value: o.axes } : undefined,
        }, o);
      }
      const ins: (ValueRef | null)[] = [x, axesInput('starts', o.starts), axesInput('ends', o.ends)];
      if (o.axes || o.steps) ins.push(o.axes ? axesInput('axes', o.axes) : null);
      if (o.steps) ins.push(axesInput('steps', o.steps));
      return single('Slice', ins, {}, o);
    },
    gather(x, indices, o = {}) {
      let idx: ValueRef;
      if (typeof indices === 'number') idx = initializer(constName('indices'), createTensor('int64', [], [BigInt(indices)]));
      else if (Array.isArray(indices)) idx = axesInput('indices', indices);
      else idx = indices;
      return single('Gather', [x, idx], { axis: o.axis ?? 0 }, o);
    },
    unsqueeze(x, axes, o) {
      if (opset >= 13) return single('Unsqueeze', [x, axesInput('axes', axes)], {}, o);
      return single('Unsqueeze', [x], { axes: { kind: 'ints', value: axes } }, o);
    },
    squeeze(x, axes, o) {
      if (!axes) return single('Squeeze', [x], {}, o);
      if (opset >= 13) return single('Squeeze', [x, axesInput('axes', axes)], {}, o);
      return single('Squeeze', [x], { axes: { kind: 'ints', value: axes } }, o);
    },
    flatten: (x, o = {}) => single('Flatten', [x], { axis: o.axis ?? 1 }, o),
    cast: (x, to, o) => single('Cast', [x], { to: elementTypeToOnnx(to) }, o),
    shape: (x, o = {}) => single('Shape', [x], { start: o.start, end: o.end }, o),
    constant: (tensor, o) => single('Constant', [], { value: tensor }, o),
    expand: (x, shape, o) => single('Expand', [x, shapeInput('shape', shape)], {}, o),
  };
  return builder;
}

