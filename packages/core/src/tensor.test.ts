import { describe, expect, it } from 'vitest';
import {
  bfloat16ToFloat32,
  createTensor,
  dtypeByteSize,
  elementCount,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  reshapeTensor,
  toFloat32,
  typedArrayFromBytes,
  typedArrayToBytes,
} from './tensor.js';
import { isVlitError } from './errors.js';

describe('createTensor', () => {
  it('accepts data whose length matches dims', () => {
    const t = createTensor('float32', [2, 3], new Float32Array(6));
    expect(t.dims).toEqual([2, 3]);
    expect(createTensor('int64', [2], [1, 2]).data).toEqual(new BigInt64Array([1n, 2n]));
    expect(createTensor('float32', []).data.length).toBe(1);
  });

  it('rejects data whose length does not match dims, naming both', () => {
    let caught: unknown;
    try {
      createTensor('float32', [2, 3], new Float32Array(5));
    } catch (err) {
      caught = err;
    }
    expect(isVlitError(caught, 'VLIT_TENSOR_SHAPE')).toBe(true);
    expect((caught as Error).message).toContain('data holds 5 elements but dims [2, 3] need 6');
  });

  it('rejects the wrong typed array, negative and fractional dims', () => {
    expect(() => createTensor('float32', [2], new Float64Array(2) as never)).toThrow(/needs a Float32Array/);
    expect(() => createTensor('int32', [-1])).toThrow(/non-negative integers/);
    expect(() => createTensor('int32', [1.5])).toThrow(/non-negative integers/);
    expect(() => elementCount([2, Number.NaN])).toThrow(/dims\[1\]|dimension 1/);
  });

  it('reshapes only to the same element count', () => {
    const t = createTensor('int32', [2, 3], [1, 2, 3, 4, 5, 6]);
    expect(reshapeTensor(t, [3, 2]).dims).toEqual([3, 2]);
    expect(() => reshapeTensor(t, [4, 2])).toThrow(/cannot reshape/);
  });

  it('knows element sizes', () => {
    expect(dtypeByteSize('float16')).toBe(2);
    expect(dtypeByteSize('int64')).toBe(8);
    expect(dtypeByteSize('bool')).toBe(1);
  });
});

describe('half-precision conversions (hand-worked IEEE 754 bit patterns)', () => {
  it('decodes float16', () => {
    expect(float16ToFloat32(0x3c00)).toBe(1);
    expect(float16ToFloat32(0xc000)).toBe(-2);
    expect(float16ToFloat32(0x7bff)).toBe(65504);
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16ToFloat32(0x0400)).toBe(2 ** -14);
    expect(float16ToFloat32(0x7c00)).toBe(Infinity);
    expect(float16ToFloat32(0xfc00)).toBe(-Infinity);
    expect(Number.isNaN(float16ToFloat32(0x7e00))).toBe(true);
    expect(float16ToFloat32(0x3555)).toBeCloseTo(0.333251953125, 12);
  });

  it('encodes float16 with round-to-nearest-even', () => {
    expect(float32ToFloat16(1)).toBe(0x3c00);
    expect(float32ToFloat16(-2)).toBe(0xc000);
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(65520)).toBe(0x7c00); // rounds up to infinity
    expect(float32ToFloat16(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16(2 ** -26)).toBe(0x0000); // below half the smallest subnormal
    // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    expect(float32ToFloat16(1 + 2 ** -11)).toBe(0x3c00);
    expect(float32ToFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });

  it('decodes and encodes bfloat16', () => {
    expect(bfloat16ToFloat32(0x3f80)).toBe(1);
    expect(bfloat16ToFloat32(0x4049)).toBe(3.140625);
    expect(bfloat16ToFloat32(0xc000)).toBe(-2);
    expect(float32ToBfloat16(1)).toBe(0x3f80);
    expect(float32ToBfloat16(Math.PI)).toBe(0x4049);
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1).
    expect(float32ToBfloat16(1 + 2 ** -8)).toBe(0x3f80);
  });

  it('reads float16 tensors as float32', () => {
    const t = createTensor('float16', [3], new Uint16Array([0x3c00, 0xc000, 0x0000]));
    expect(Array.from(toFloat32(t))).toEqual([1, -2, 0]);
  });
});

describe('typedArrayFromBytes / typedArrayToBytes', () => {
  it('reads little-endian bytes at any offset, including unaligned Node Buffer views', () => {
    // 1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0 (IEEE 754, little-endian), placed at offset 1.
    const backing = Buffer.from([0xee, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    const view = backing.subarray(1);
    expect(view.byteOffset % 4).not.toBe(0);
    expect(Array.from(typedArrayFromBytes('float32', view))).toEqual([1, -2]);
    // int64 -2 = fe ff ff ff ff ff ff ff
    expect(typedArrayFromBytes('int64', new Uint8Array([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))[0]).toBe(-2n);
    expect(() => typedArrayFromBytes('float32', new Uint8Array(6))).toThrow(/whole number of float32/);
  });

  it('writes a copy that does not alias the source', () => {
    const data = new Float32Array([1, -2]);
    const bytes = typedArrayToBytes(data);
    expect(Array.from(bytes)).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    data[0] = 5;
    expect(bytes[3]).toBe(0x3f);
  });
});
