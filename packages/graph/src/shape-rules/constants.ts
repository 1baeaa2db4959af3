/** Constants: the contents of small integer tensors for value propagation, and the Constant and ConstantOfShape rules. */
import { type Tensor } from '@vlit/core';
import { elementTypeFromOnnx, protoDims, protoToTensor, type Dim, type TensorProto } from '../proto.js';
import { MAX_TRACKED, isIntType, type TypeInfo, type RuleContext } from './common.js';

/** Read a small integer tensor's contents for value propagation. */
export function tensorValue(t: Tensor): Dim[] | undefined {
  if (t.dims.length > 1 || t.data.length > MAX_TRACKED) return undefined;
  if (!isIntType(t.dtype)) return undefined;
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** Type and small-int contents of a constant tensor proto. */
export function infoFromTensorProto(proto: TensorProto): TypeInfo {
  const dtype = elementTypeFromOnnx(proto.dataType);
  const dims = protoDims(proto);
  let value: Dim[] | undefined;
  if (isIntType(dtype) && dims.length <= 1 && (dims[0] ?? 1) <= MAX_TRACKED) {
    try {
      value = tensorValue(protoToTensor(proto));
    } catch {
      // External or malformed data: the type is still known, only the contents are not.
      value = undefined;
    }
  }
  return { dtype, dims, value };
}

export function constantRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const a = ctx.attrs;
  if (a.value && typeof a.value === 'object' && !Array.isArray(a.value) && 'dataType' in a.value) {
    return [infoFromTensorProto(a.value as TensorProto)];
  }
  if (typeof a.value_float === 'number') return [{ dtype: 'float32', dims: [] }];
  if (Array.isArray(a.value_floats)) return [{ dtype: 'float32', dims: [a.value_floats.length] }];
  if (typeof a.value_int === 'number') return [{ dtype: 'int64', dims: [], value: [a.value_int] }];
  if (Array.isArray(a.value_ints)) return [{ dtype: 'int64', dims: [a.value_ints.length], value: [...(a.value_ints as number[])] }];
  if (typeof a.value_string === 'string') return [{ dtype: 'string', dims: [] }];
  if (Array.isArray(a.value_strings)) return [{ dtype: 'string', dims: [a.value_strings.length] }];
  return [undefined];
}

export function constantOfShapeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const shape = ctx.inputs[0];
  const v = ctx.attrs.value;
  const dtype = v && typeof v === 'object' && 'dataType' in v ? elementTypeFromOnnx((v as TensorProto).dataType) : 'float32';
  const dims = shape?.value ? [...shape.value] : typeof shape?.dims?.[0] === 'number' ? new Array(shape.dims[0] as number).fill(null) : null;
  return [{ dtype, dims }];
}
