/**
 * The state of a graph under construction (its values and their inferred types, nodes, inputs, outputs,
 * initializers) and the primitives every op helper is built from. `createGraph` puts the builder
 * together from this and the op families in op-helpers.ts.
 */
import { InvalidArgumentError, NotFoundError, UnsupportedError, createTensor, float32ToFloat16, type DType, type Tensor } from '@vlit/core';
import type { Attributes, CreateGraphOptions, GraphBuilder, NodeNaming, Operand, OpOptions, Value, ValueRef } from './builder.js';
import {
  elementTypeToOnnx,
  isCoreDType,
  onnx,
  tensorToProto,
  type Dim,
  type ElementType,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';
import { outputCount, prepareOp } from './prepare-op.js';
import { tensorValue, type TypeInfo } from './shape-rules/index.js';
import { makeValueInfo } from './value-info.js';

/** The builder's own members, and the primitives the op helpers share. */
export interface GraphState {
  /** The graph's name (for messages) and opset (helpers emit the form it expects). */
  readonly name: string;
  readonly opset: number;
  /** input, initializer, value, op, output and toModel of the builder. */
  readonly base: Pick<GraphBuilder, 'name' | 'opset' | 'input' | 'initializer' | 'value' | 'op' | 'output' | 'toModel'>;
  /** One node with one output, named by `naming`. */
  single(opType: string, ins: (ValueRef | null)[], attrs: Attributes, naming?: NodeNaming): Value;
  /** Two operands as values, a number becoming a scalar constant of the other's dtype. */
  operands(a: Operand, b: Operand, opType: string): [ValueRef, ValueRef];
  /** A helper for an elementwise op of two operands. */
  binary(opType: string): (a: Operand, b: Operand, naming?: NodeNaming) => Value;
  /** A helper for an op of one input and no attributes. */
  unary(opType: string): (x: ValueRef, naming?: NodeNaming) => Value;
  /** An int64 initializer holding `values` (axes, starts, sizes), named after `hint`. */
  axesInput(hint: string, values: readonly number[]): Value;
  /** A shape given as numbers becomes an int64 initializer; a value passes through. */
  shapeInput(hint: string, shape: number[] | ValueRef): ValueRef;
  /** A fresh constant name starting with `hint`. */
  constName(hint: string): string;
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
  return createTensor(
    'int64',
    [values.length],
    values.map((v) => BigInt(v)),
  );
}

/** Start the state of a graph: everything but the op helpers. */
export function createGraphState(options: CreateGraphOptions): GraphState {
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
    const count = outputCount(opOptions);
    const outNames = Array.isArray(opOptions.outputs)
      ? opOptions.outputs
      : Array.from({ length: count }, (_, i) => (count === 1 ? `${nodeName}_output` : `${nodeName}_output_${i}`));
    for (const n of outNames) claim(n, `output of ${nodeName}`);
    if (new Set(outNames).size !== outNames.length)
      throw new InvalidArgumentError(`node '${nodeName}' repeats an output name`, { details: { field: nodeName } });
    const { attrs, outTypes } = prepareOp({ opType, nodeName, inputNames, attributes, options: opOptions }, { opset, types });
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
    nodes.push(
      onnx.NodeProto.create({ name: nodeName, opType, domain, input: inputNames, output: outNames, attribute: attrs as never }) as unknown as NodeProto,
    );
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
    const toRef = (x: Operand, other: Operand): ValueRef =>
      typeof x === 'number' ? initializer(constName(opType), scalarTensor(typeOf(other as ValueRef), x)) : x;
    return [toRef(a, b), toRef(b, a)];
  };

  const binary = (opType: string) => (a: Operand, b: Operand, naming?: NodeNaming) => single(opType, operands(a, b, opType), {}, naming);
  const unary = (opType: string) => (x: ValueRef, naming?: NodeNaming) => single(opType, [x], {}, naming);
  const axesInput = (hint: string, axes: readonly number[]): Value => initializer(constName(hint), int64(axes));
  const shapeInput = (hint: string, shape: number[] | ValueRef): ValueRef => (Array.isArray(shape) ? initializer(constName(hint), int64(shape)) : shape);

  const base: GraphState['base'] = {
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
  };
  return { name: options.name, opset, base, single, operands, binary, unary, axesInput, shapeInput, constName };
}
