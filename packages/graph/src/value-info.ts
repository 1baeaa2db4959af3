/**
 * ValueInfoProto <-> TypeInfo, and opset lookup: the small glue between onnx-proto's nested type
 * messages and the flat `{ dtype, dims }` shape rules use.
 */
import {
  elementTypeFromOnnx,
  elementTypeToOnnx,
  onnx,
  toNumber,
  type Dim,
  type ElementType,
  type LongLike,
  type OnnxModel,
  type ValueInfoProto,
} from './proto.js';
import type { TypeInfo } from './shape-rules/index.js';

/** Type of a ValueInfoProto as `{ dtype, dims }`; undefined when it is not a tensor type. */
export function typeInfoFromValueInfo(vi: ValueInfoProto): TypeInfo | undefined {
  const t = vi.type?.tensorType;
  if (!t) return undefined;
  const dtype = elementTypeFromOnnx(t.elemType);
  const shape = t.shape;
  if (!shape) return { dtype, dims: null };
  const dims: Dim[] = (shape.dim ?? []).map((d) => {
    if (d.dimParam) return d.dimParam;
    // protobufjs leaves an unset oneof member null, so null/undefined means 'unknown'.
    if (d.dimValue !== null && d.dimValue !== undefined) return toNumber(d.dimValue as LongLike);
    return null;
  });
  return { dtype, dims };
}

/** Build a ValueInfoProto; dims null leaves the shape out (elem_type alone is valid ONNX). */
export function makeValueInfo(name: string, dtype: ElementType, dims: readonly Dim[] | null): ValueInfoProto {
  const tensorType: { elemType: number; shape?: { dim: object[] } } = { elemType: elementTypeToOnnx(dtype) };
  if (dims) {
    tensorType.shape = {
      dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return onnx.ValueInfoProto.create({ name, type: onnx.TypeProto.create({ tensorType: tensorType as never }) });
}

/** Opset version of the default domain ('' or 'ai.onnx'). */
export function defaultOpset(model: OnnxModel): number {
  for (const o of model.opsetImport ?? []) {
    if (!o.domain || o.domain === 'ai.onnx') return toNumber(o.version as LongLike);
  }
  return 1;
}
