/**
 * A graph builder that infers every value's dtype and shape as nodes are added, so shape mistakes
 * surface at build time with the node's name instead of at session creation in a runtime.
 */
import type { Tensor } from '@vlit/core';
import type { AttributeValue } from './attributes.js';
import { createGraphState } from './graph-state.js';
import { arithmeticOps, neuralOps, shapeOps } from './op-helpers.js';
import type { Dim, ElementType, OnnxModel } from './proto.js';

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

/** Start building an ONNX graph with on-the-fly dtype and shape inference. */
export function createGraph(options: CreateGraphOptions): GraphBuilder {
  const g = createGraphState(options);
  return { ...g.base, ...arithmeticOps(g), ...neuralOps(g), ...shapeOps(g) };
}
