import { CompatibilityError, InvalidArgumentError, TensorShapeError } from './errors.js';

/** Element types a Vlit tensor can hold. float16 data is stored as raw IEEE half bits in a Uint16Array. */
export type DType = 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool';

/** The typed array that stores each dtype. */
export interface DTypeArrayMap {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
}

/** Typed array storage for a dtype. */
export type TensorData<D extends DType = DType> = DTypeArrayMap[D];

/** A dense, row-major tensor: dtype, dims and typed-array data. Backends convert at their edge. */
export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly dims: readonly number[];
  readonly data: TensorData<D>;
}

/** The typed-array constructor of each dtype (both the length and the buffer-view forms). */
interface TypedArrayConstructor<K extends DType> {
  new (length: number): DTypeArrayMap[K];
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): DTypeArrayMap[K];
  BYTES_PER_ELEMENT: number;
  readonly name: string;
}

const CONSTRUCTORS: { [K in DType]: TypedArrayConstructor<K> } = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytes(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) {
    for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  }
  return out;
}

/**
 * View little-endian bytes (the layout of safetensors and ONNX raw_data) as the typed array of a dtype:
 * zero-copy when aligned on a little-endian host, otherwise copied (and byte-swapped on big-endian hosts).
 * The byte length must be a whole number of elements.
 */
export function typedArrayFromBytes<D extends DType>(dtype: D, bytes: Uint8Array): TensorData<D> {
  const ctor = CONSTRUCTORS[dtype] as TypedArrayConstructor<D>;
  const width = ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength % width !== 0) {
    throw new TensorShapeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`, { details: { field: 'data', dtype } });
  }
  let src = bytes;
  if (!HOST_LITTLE_ENDIAN && width > 1) src = swapBytes(bytes, width);
  // new Uint8Array(...) copies even for a Node Buffer, whose slice() would return another unaligned view.
  else if (src.byteOffset % width !== 0) src = new Uint8Array(src);
  return new ctor(src.buffer, src.byteOffset, src.byteLength / width);
}

/** Little-endian bytes of a typed array, as a fresh copy that never aliases the caller's data. */
export function typedArrayToBytes(data: TensorData): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!HOST_LITTLE_ENDIAN && data.BYTES_PER_ELEMENT > 1) return swapBytes(view, data.BYTES_PER_ELEMENT);
  return view.slice();
}

/** All dtypes, in a stable order. */
export const DTYPES = Object.keys(CONSTRUCTORS) as DType[];

/** Bytes per element of a dtype. */
export function dtypeByteSize(dtype: DType): number {
  const ctor = CONSTRUCTORS[dtype];
  if (!ctor) throw new InvalidArgumentError(`unknown dtype '${String(dtype)}'`, { details: { field: 'dtype' } });
  return ctor.BYTES_PER_ELEMENT;
}

/** Number of elements implied by dims (1 for a scalar). Throws on negative or fractional dims. */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i];
    if (!Number.isInteger(d) || d < 0) {
      throw new TensorShapeError(`dimension ${i} is ${String(d)}; dims must be non-negative integers`, {
        details: { field: `dims[${i}]`, dims: [...dims] },
      });
    }
    n *= d;
  }
  return n;
}

function expectedArray(dtype: DType): string {
  return CONSTRUCTORS[dtype].name;
}

/**
 * Create a tensor, checking that `data` is the right typed array for `dtype` and holds exactly
 * as many elements as `dims` implies. Plain number arrays are copied into the right typed array.
 */
export function createTensor<D extends DType>(dtype: D, dims: readonly number[], data?: TensorData<D> | readonly number[] | readonly bigint[]): Tensor<D> {
  const ctor = CONSTRUCTORS[dtype];
  if (!ctor) throw new InvalidArgumentError(`unknown dtype '${String(dtype)}'`, { details: { field: 'dtype' } });
  const count = elementCount(dims);
  let typed: TensorData<D>;
  if (data === undefined) {
    typed = new ctor(count) as TensorData<D>;
  } else if (Array.isArray(data)) {
    typed = new ctor(data.length) as TensorData<D>;
    const big = dtype === 'int64' || dtype === 'uint64';
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      (typed as unknown as Array<number | bigint>)[i] = big ? BigInt(v) : Number(v);
    }
  } else {
    const arr = data as TensorData<D>;
    if (!(arr instanceof ctor) || (dtype !== 'bool' && dtype !== 'uint8' && arr.constructor !== ctor)) {
      throw new TensorShapeError(`dtype ${dtype} needs a ${expectedArray(dtype)}, got ${(arr as object).constructor?.name ?? typeof arr}`, {
        details: { field: 'data', dtype },
      });
    }
    typed = arr;
  }
  if (typed.length !== count) {
    throw new TensorShapeError(`data holds ${typed.length} elements but dims [${dims.join(', ')}] need ${count}`, {
      details: { field: 'data', dtype, dims: [...dims], length: typed.length, expected: count },
    });
  }
  return { dtype, dims: [...dims], data: typed };
}

/** Check an existing tensor-shaped object and return it typed; throws TensorShapeError on mismatch. */
export function assertTensor(value: Tensor, name = 'tensor'): Tensor {
  try {
    createTensor(value.dtype, value.dims, value.data as TensorData);
  } catch (err) {
    if (err instanceof TensorShapeError || err instanceof InvalidArgumentError) {
      throw new TensorShapeError(`${name}: ${err.message}`, { cause: err, details: { ...err.details, field: name } });
    }
    throw err;
  }
  return value;
}

/** Return a view of the tensor with new dims (same element count). */
export function reshapeTensor<D extends DType>(tensor: Tensor<D>, dims: readonly number[]): Tensor<D> {
  const count = elementCount(dims);
  if (count !== tensor.data.length) {
    throw new TensorShapeError(`cannot reshape [${tensor.dims.join(', ')}] (${tensor.data.length} elements) to [${dims.join(', ')}] (${count})`, {
      details: { field: 'dims' },
    });
  }
  return { dtype: tensor.dtype, dims: [...dims], data: tensor.data };
}

/** Convert IEEE 754 half-precision bits to a number. */
export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Convert a number to IEEE 754 half-precision bits, rounding to nearest even. */
export function float32ToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Convert bfloat16 bits (the top 16 bits of a float32) to a number. */
export function bfloat16ToFloat32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** Convert a number to bfloat16 bits, rounding to nearest even. */
export function float32ToBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** Read any numeric tensor as a Float32Array (float16 bits are decoded). */
export function toFloat32(tensor: Tensor): Float32Array {
  const { dtype, data } = tensor;
  if (dtype === 'float32') return data as Float32Array;
  const out = new Float32Array(data.length);
  if (dtype === 'float16') {
    const bits = data as Uint16Array;
    for (let i = 0; i < bits.length; i++) out[i] = float16ToFloat32(bits[i]);
  } else {
    for (let i = 0; i < data.length; i++) out[i] = Number((data as ArrayLike<number | bigint>)[i]);
  }
  return out;
}

/** True when two shapes have the same rank and the same size on every axis. */
export function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Check that a weight is float32 with the shape a component needs: TensorShapeError for another dtype,
 * CompatibilityError naming both shapes and who needs them for another shape.
 */
export function assertFloat32Weight(
  t: Tensor,
  dims: readonly number[],
  context: { label: string; neededBy: string; field: string; file?: string },
): asserts t is Tensor<'float32'> {
  const { label, neededBy, field, file } = context;
  if (t.dtype !== 'float32') throw new TensorShapeError(`${label} must be float32, got ${t.dtype}`, { details: { file, field } });
  if (!sameDims(t.dims, dims)) throw shapeMismatchError({ label, name: field, has: t.dims, neededBy, needs: dims, file, field });
}

/**
 * The CompatibilityError of a weight whose shape is not the one a component needs: the message names both
 * shapes and who needs it; `left`/`right` carry the two sides. Shared by the weight and checkpoint checks.
 */
export function shapeMismatchError(m: {
  label: string;
  name: string;
  has: readonly number[];
  neededBy: string;
  needs: readonly number[];
  file?: string;
  field: string;
}): CompatibilityError {
  const has = `[${m.has.join(', ')}]`;
  const needs = `[${m.needs.join(', ')}]`;
  return new CompatibilityError(`${m.label} has shape ${has}, ${m.neededBy} needs ${needs}`, {
    details: { file: m.file, field: m.field, left: `${m.name} ${has}`, right: `${m.neededBy} ${needs}` },
  });
}
