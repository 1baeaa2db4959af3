/**
 * ONNX node attributes in both directions: plain JS values -> AttributeProto for the builder, and
 * AttributeProto -> plain values for shape rules and inspection.
 */
import { InvalidArgumentError, type Tensor } from '@vlit/core';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { onnx, tensorToProto, toNumber, type AttributeProto, type GraphProto, type LongLike, type TensorProto } from './proto.js';

const AT = onnx.AttributeProto.AttributeType;

function mkAttr(props: OnnxTypes.IAttributeProto): AttributeProto {
  return onnx.AttributeProto.create(props) as unknown as AttributeProto;
}

/** An attribute value forced to an exact ONNX attribute type (e.g. a float that happens to be whole). */
export interface TypedAttribute {
  readonly kind: 'float' | 'int' | 'floats' | 'ints' | 'string' | 'strings';
  readonly value: number | number[] | string | string[];
}

/** Values accepted for node attributes; plain numbers are ints when whole unless the name is a known float attribute. */
export type AttributeValue = number | bigint | number[] | string | string[] | Tensor | TypedAttribute | GraphProto;

/** Decoded attribute values as shape rules see them. */
export type DecodedAttribute = number | number[] | string | string[] | TensorProto | TensorProto[] | GraphProto | GraphProto[] | undefined;

/** Mark a number as a FLOAT attribute, since JS cannot tell 1 from 1.0. */
export function floatAttr(value: number): TypedAttribute {
  return { kind: 'float', value };
}
/** Mark a number list as a FLOATS attribute. */
export function floatsAttr(value: number[]): TypedAttribute {
  return { kind: 'floats', value };
}
/** Mark a number as an INT attribute. */
export function intAttr(value: number): TypedAttribute {
  return { kind: 'int', value };
}
/** Mark a number list as an INTS attribute. */
export function intsAttr(value: number[]): TypedAttribute {
  return { kind: 'ints', value };
}

// Attributes the ONNX spec types as float: whole numbers given for these must still be FLOAT.
const FLOAT_ATTRIBUTES = new Set([
  'alpha',
  'beta',
  'gamma',
  'epsilon',
  'momentum',
  'ratio',
  'bias',
  'lambd',
  'min',
  'max',
  'value_float',
  'value_floats',
  'spatial_scale',
  'extrapolation_value',
  'cubic_coeff_a',
  'threshold',
  'scale',
  'scales',
  'seed',
  'mean',
  'high',
  'low',
  'fmod_float',
  'norm_coefficient',
  'decay_factor',
]);

function isTensor(value: unknown): value is Tensor {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'dims' in value && 'data' in value;
}

function isTyped(value: unknown): value is TypedAttribute {
  return typeof value === 'object' && value !== null && 'kind' in value && 'value' in value && !Array.isArray(value);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encode one attribute; `node` only names the culprit in errors. */
export function encodeAttribute(name: string, value: AttributeValue, node: string): AttributeProto {
  const floatish = FLOAT_ATTRIBUTES.has(name);
  if (isTyped(value)) {
    switch (value.kind) {
      case 'float':
        return mkAttr({ name, type: AT.FLOAT, f: value.value as number });
      case 'int':
        return mkAttr({ name, type: AT.INT, i: value.value as number });
      case 'floats':
        return mkAttr({ name, type: AT.FLOATS, floats: value.value as number[] });
      case 'ints':
        return mkAttr({ name, type: AT.INTS, ints: value.value as number[] });
      case 'string':
        return mkAttr({ name, type: AT.STRING, s: encoder.encode(value.value as string) });
      case 'strings':
        return mkAttr({
          name,
          type: AT.STRINGS,
          strings: (value.value as string[]).map((s) => encoder.encode(s)),
        });
    }
  }
  if (typeof value === 'bigint') return mkAttr({ name, type: AT.INT, i: Number(value) });
  if (typeof value === 'number') {
    if (!floatish && Number.isInteger(value)) return mkAttr({ name, type: AT.INT, i: value });
    return mkAttr({ name, type: AT.FLOAT, f: value });
  }
  if (typeof value === 'string') return mkAttr({ name, type: AT.STRING, s: encoder.encode(value) });
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) {
      return mkAttr({ name, type: AT.STRINGS, strings: (value as string[]).map((s) => encoder.encode(s)) });
    }
    if (value.every((v) => typeof v === 'number')) {
      const nums = value as number[];
      if (!floatish && nums.every((v) => Number.isInteger(v))) return mkAttr({ name, type: AT.INTS, ints: nums });
      return mkAttr({ name, type: AT.FLOATS, floats: nums });
    }
  }
  if (isTensor(value)) return mkAttr({ name, type: AT.TENSOR, t: tensorToProto('', value) as OnnxTypes.ITensorProto });
  if (value instanceof onnx.GraphProto) return mkAttr({ name, type: AT.GRAPH, g: value as OnnxTypes.IGraphProto });
  throw new InvalidArgumentError(`attribute '${name}' of node '${node}' has an unsupported value`, {
    details: { field: `${node}.${name}` },
  });
}

/** Decode one AttributeProto to a plain value. */
export function decodeAttribute(attr: AttributeProto): DecodedAttribute {
  switch (attr.type) {
    case AT.FLOAT:
      return attr.f;
    case AT.INT:
      return toNumber(attr.i as LongLike);
    case AT.STRING:
      return decoder.decode(attr.s);
    case AT.TENSOR:
      return (attr.t as TensorProto | null) ?? undefined;
    case AT.GRAPH:
      return (attr.g as GraphProto | null) ?? undefined;
    case AT.FLOATS:
      return [...attr.floats];
    case AT.INTS:
      return attr.ints.map((v) => toNumber(v as LongLike));
    case AT.STRINGS:
      return attr.strings.map((s) => decoder.decode(s));
    case AT.TENSORS:
      return attr.tensors as TensorProto[];
    case AT.GRAPHS:
      return attr.graphs as GraphProto[];
    default:
      return undefined;
  }
}

/** Decode all attributes of a node into a record. */
export function decodeAttributes(attrs: readonly AttributeProto[]): Record<string, DecodedAttribute> {
  const out: Record<string, DecodedAttribute> = {};
  for (const a of attrs) out[a.name] = decodeAttribute(a);
  return out;
}
