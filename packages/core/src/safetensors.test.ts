import { describe, expect, it } from 'vitest';
import { FormatError, InvalidArgumentError, NotFoundError, TensorShapeError, UnsupportedError, isVlitError } from './errors.js';
import {
  SAFETENSORS_DTYPES,
  bf16Tensor,
  encodeSafetensorsTensor,
  parseSafetensors,
  safetensorsDTypeBits,
  serializeSafetensors,
  type SafetensorsDType,
  type SafetensorsInput,
} from './safetensors.js';
import { float4E2M1ToFloat32, float8E4M3ToFloat32, float8E5M2ToFloat32, float8E8M0ToFloat32 } from './minifloat.js';
import { createTensor, type Tensor } from './tensor.js';

// ------------------------------------------------------------------------------------------------
// An independent writer straight from the format description (no library code): an 8-byte
// little-endian u64 header length N, N bytes of UTF-8 JSON padded with spaces, then the buffer.

interface HandTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

function handWrite(
  tensors: HandTensor[],
  opts: { metadata?: Record<string, string>; pad?: boolean; overrideOffsets?: Record<string, [number, number]> } = {},
): Uint8Array {
  let offset = 0;
  const fields: string[] = [];
  if (opts.metadata) fields.push(`"__metadata__":${JSON.stringify(opts.metadata)}`);
  for (const t of tensors) {
    const offs = opts.overrideOffsets?.[t.name] ?? [offset, offset + t.bytes.length];
    fields.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offs[0]},${offs[1]}]}`);
    offset += t.bytes.length;
  }
  let json = `{${fields.join(',')}}`;
  if (opts.pad !== false) while (json.length % 8 !== 0) json += ' ';
  const header = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + header.length + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, header.length, true);
  dv.setUint32(4, 0, true);
  out.set(header, 8);
  let cursor = 8 + header.length;
  for (const t of tensors) {
    out.set(t.bytes, cursor);
    cursor += t.bytes.length;
  }
  return out;
}

/** Little-endian bytes of numbers, written with DataView setters. */
function le(kind: 'f64' | 'f32' | 'i32' | 'u32' | 'i16' | 'u16' | 'i8' | 'u8', values: number[]): Uint8Array {
  const size = { f64: 8, f32: 4, i32: 4, u32: 4, i16: 2, u16: 2, i8: 1, u8: 1 }[kind];
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    const o = i * size;
    if (kind === 'f64') dv.setFloat64(o, v, true);
    else if (kind === 'f32') dv.setFloat32(o, v, true);
    else if (kind === 'i32') dv.setInt32(o, v, true);
    else if (kind === 'u32') dv.setUint32(o, v, true);
    else if (kind === 'i16') dv.setInt16(o, v, true);
    else if (kind === 'u16') dv.setUint16(o, v, true);
    else if (kind === 'i8') dv.setInt8(o, v);
    else dv.setUint8(o, v);
  });
  return out;
}

function le64(values: bigint[], signed: boolean): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => (signed ? dv.setBigInt64(i * 8, v, true) : dv.setBigUint64(i * 8, v, true)));
  return out;
}

function rawBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

// ------------------------------------------------------------------------------------------------

describe('dtype table', () => {
  it('matches the reference list and bit widths', () => {
    // The reference implementation's dtypes, grouped by bits per element.
    const byBits: Record<number, string[]> = {
      4: ['F4'],
      6: ['F6_E2M3', 'F6_E3M2'],
      8: ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0'],
      16: ['I16', 'U16', 'F16', 'BF16'],
      32: ['I32', 'U32', 'F32'],
      64: ['C64', 'F64', 'I64', 'U64'],
    };
    expect([...SAFETENSORS_DTYPES].sort()).toEqual(Object.values(byBits).flat().sort());
    for (const [bits, names] of Object.entries(byBits)) {
      for (const name of names) expect(safetensorsDTypeBits(name as SafetensorsDType)).toBe(Number(bits));
    }
    expect(safetensorsDTypeBits('F4')).toBe(4);
    expect(safetensorsDTypeBits('F6_E3M2')).toBe(6);
    expect(safetensorsDTypeBits('C64')).toBe(64);
    expect(safetensorsDTypeBits('BF16')).toBe(16);
  });
});

describe('round trip of every dtype', () => {
  const nativeCases: Record<string, Tensor> = {
    f64: createTensor('float64', [7], [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_VALUE, 5e-324]),
    f32: createTensor('float32', [2, 3], new Float32Array([1.5, -0, Number.NaN, Number.POSITIVE_INFINITY, -Number.MAX_VALUE / 2 ** 970, 1e-45])),
    f16: createTensor('float16', [3, 3], new Uint16Array([0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e01])),
    i64: createTensor('int64', [4], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n])),
    u64: createTensor('uint64', [3], new BigUint64Array([0n, 2n ** 64n - 1n, 2n ** 53n + 1n])),
    i32: createTensor('int32', [3], new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0])),
    u32: createTensor('uint32', [2], new Uint32Array([0, 2 ** 32 - 1])),
    i16: createTensor('int16', [2], new Int16Array([-32768, 32767])),
    u16: createTensor('uint16', [2], new Uint16Array([0, 65535])),
    i8: createTensor('int8', [3], new Int8Array([-128, 127, 0])),
    u8: createTensor('uint8', [3], new Uint8Array([0, 255, 7])),
    bool: createTensor('bool', [4], new Uint8Array([1, 0, 0, 1])),
    scalar: createTensor('float32', [], new Float32Array([42])),
    empty: createTensor('int32', [0, 5], new Int32Array(0)),
  };
  const stDType: Record<string, SafetensorsDType> = {
    f64: 'F64',
    f32: 'F32',
    f16: 'F16',
    i64: 'I64',
    u64: 'U64',
    i32: 'I32',
    u32: 'U32',
    i16: 'I16',
    u16: 'U16',
    i8: 'I8',
    u8: 'U8',
    bool: 'BOOL',
    scalar: 'F32',
    empty: 'I32',
  };

  const all256 = new Uint8Array(256).map((_, i) => i);
  const rawCases: Record<string, { dtype: SafetensorsDType; shape: number[]; bytes: Uint8Array }> = {
    bf16: { dtype: 'BF16', shape: [6], bytes: le('u16', [0x3f80, 0x7fc0, 0x7f80, 0x8000, 0x0001, 0xff81]) },
    e4m3: { dtype: 'F8_E4M3', shape: [16, 16], bytes: all256 },
    e5m2: { dtype: 'F8_E5M2', shape: [256], bytes: all256 },
    e8m0: { dtype: 'F8_E8M0', shape: [2, 128], bytes: all256 },
    f4: { dtype: 'F4', shape: [2, 2], bytes: new Uint8Array([0x21, 0xf7]) },
    f6a: { dtype: 'F6_E2M3', shape: [4], bytes: new Uint8Array([0xab, 0xcd, 0xef]) },
    f6b: { dtype: 'F6_E3M2', shape: [8], bytes: new Uint8Array([1, 2, 3, 4, 5, 6]) },
    c64: { dtype: 'C64', shape: [2], bytes: le('f32', [1, -2, Number.NaN, Number.POSITIVE_INFINITY]) },
  };

  const input: Record<string, SafetensorsInput> = { ...nativeCases, ...rawCases };
  const bytes = serializeSafetensors(input, { format: 'pt', note: 'ünïcode ✓' });
  const file = parseSafetensors(bytes);

  it('keeps every name and the metadata', () => {
    expect(new Set(file.tensors.keys())).toEqual(new Set(Object.keys(input)));
    expect(file.metadata).toEqual({ format: 'pt', note: 'ünïcode ✓' });
  });

  it.each(Object.keys(nativeCases))('native %s: dtype, dims and bit-exact data', (name) => {
    const entry = file.get(name);
    const original = nativeCases[name];
    expect(entry.dtype).toBe(stDType[name]);
    expect(entry.shape).toEqual(original.dims);
    const back = entry.toTensor();
    expect(back.dtype).toBe(original.dtype);
    expect(back.dims).toEqual(original.dims);
    expect(back.data.constructor).toBe(original.data.constructor);
    expect(Array.from(rawBytes(back))).toEqual(Array.from(rawBytes(original)));
    expect(Array.from(entry.bytes)).toEqual(Array.from(rawBytes(original)));
  });

  it('int64 extremes come back as exact BigInts', () => {
    expect(Array.from(file.get('i64').toTensor().data as BigInt64Array)).toEqual([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n]);
    expect(Array.from(file.get('u64').toTensor().data as BigUint64Array)).toEqual([0n, 2n ** 64n - 1n, 2n ** 53n + 1n]);
  });

  it('NaN and infinities survive in float tensors', () => {
    const f64 = file.get('f64').toTensor().data as Float64Array;
    expect(Number.isNaN(f64[2])).toBe(true);
    expect(f64[3]).toBe(Number.POSITIVE_INFINITY);
    expect(Object.is(f64[1], -0)).toBe(true);
    expect(f64[6]).toBe(5e-324);
  });

  it.each(Object.keys(rawCases))('raw %s: dtype, shape and bytes preserved', (name) => {
    const entry = file.get(name);
    expect(entry.dtype).toBe(rawCases[name].dtype);
    expect(entry.shape).toEqual(rawCases[name].shape);
    expect(Array.from(entry.bytes)).toEqual(Array.from(rawCases[name].bytes));
  });

  it('re-serializing parsed entries reproduces the file byte for byte', () => {
    const again = serializeSafetensors(file.tensors, file.metadata);
    expect(Array.from(again)).toEqual(Array.from(bytes));
  });

  it('C64 becomes float32 with a trailing dimension of 2', () => {
    const t = file.get('c64').toTensor();
    expect(t.dtype).toBe('float32');
    expect(t.dims).toEqual([2, 2]);
    const d = t.data as Float32Array;
    expect([d[0], d[1], d[3]]).toEqual([1, -2, Number.POSITIVE_INFINITY]);
    expect(Number.isNaN(d[2])).toBe(true);
    expect(catchError(() => file.get('c64').toFloat32())).toBeInstanceOf(UnsupportedError);
  });

  it('F6 is kept as raw bytes; decoding is refused with UnsupportedError', () => {
    const err = catchError(() => file.get('f6a').toFloat32());
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as UnsupportedError).message).toContain("'f6a'");
    expect(catchError(() => file.get('f6b').toTensor())).toBeInstanceOf(UnsupportedError);
  });
});

describe('independent hand-written files', () => {
  it('reads the reference implementation doc example (unpadded header, unaligned I32 data)', () => {
    const json = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
    expect(json.length).toBe(0x3c);
    const bytes = new Uint8Array(8 + json.length + 16);
    bytes[0] = 0x3c;
    bytes.set(new TextEncoder().encode(json), 8);
    bytes.set(le('i32', [1, -2, 3, 2147483647]), 8 + json.length);
    const file = parseSafetensors(bytes);
    const t = file.get('test').toTensor();
    expect(t.dtype).toBe('int32');
    expect(t.dims).toEqual([2, 2]);
    expect(Array.from(t.data as Int32Array)).toEqual([1, -2, 3, 2147483647]);
    expect(file.metadata).toEqual({});
  });

  it('parses a multi-dtype file written in non-sorted order with metadata', () => {
    const f32 = [0.5, -1.25, 3.4028234663852886e38, Number.NEGATIVE_INFINITY];
    const tensors: HandTensor[] = [
      { name: 'z.bool', dtype: 'BOOL', shape: [3], bytes: new Uint8Array([0, 1, 1]) },
      { name: 'a.f32', dtype: 'F32', shape: [2, 2], bytes: le('f32', f32) },
      { name: 'm.i16', dtype: 'I16', shape: [3], bytes: le('i16', [-32768, 0, 32767]) },
      { name: 'b.f64', dtype: 'F64', shape: [1], bytes: le('f64', [Math.PI]) },
      { name: 'c.i64', dtype: 'I64', shape: [2], bytes: le64([-(2n ** 63n), 123456789012345678n], true) },
      { name: 'd.u32', dtype: 'U32', shape: [1], bytes: le('u32', [4294967295]) },
    ];
    const bytes = handWrite(tensors, { metadata: { format: 'pt', step: '12' } });
    const file = parseSafetensors(bytes);
    expect(file.metadata).toEqual({ format: 'pt', step: '12' });
    expect([...file.tensors.keys()]).toEqual(tensors.map((t) => t.name)); // byte-buffer order
    expect(Array.from(file.get('z.bool').toTensor().data as Uint8Array)).toEqual([0, 1, 1]);
    expect(file.get('z.bool').toTensor().dtype).toBe('bool');
    expect(Array.from(file.get('a.f32').toTensor().data as Float32Array)).toEqual(f32);
    expect(Array.from(file.get('m.i16').toTensor().data as Int16Array)).toEqual([-32768, 0, 32767]);
    expect((file.get('b.f64').toTensor().data as Float64Array)[0]).toBe(Math.PI);
    expect(Array.from(file.get('c.i64').toTensor().data as BigInt64Array)).toEqual([-(2n ** 63n), 123456789012345678n]);
    expect(Array.from(file.get('d.u32').toTensor().data as Uint32Array)).toEqual([4294967295]);
    expect(Array.from(file.get('a.f32').toFloat32())).toEqual(f32.map(Math.fround));
    expect(Array.from(file.get('c.i64').toFloat32())).toEqual([Math.fround(-(2 ** 63)), Math.fround(1.2345678901234568e17)]);
    expect(Array.from(file.get('z.bool').toFloat32())).toEqual([0, 1, 1]);
  });

  it('the library writer produces exactly the layout the spec describes', () => {
    const bytes = serializeSafetensors(
      {
        w: createTensor('float32', [2], new Float32Array([1, -2])),
        ids: createTensor('int64', [1], new BigInt64Array([-5n])),
        mask: createTensor('bool', [3], new Uint8Array([1, 0, 1])),
        h: createTensor('float16', [1], new Uint16Array([0x3c00])),
        b: createTensor('float32', [1], new Float32Array([0.25])),
      },
      { k: 'v' },
    );
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = dv.getUint32(0, true);
    expect(dv.getUint32(4, true)).toBe(0);
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    const header = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    expect(header.__metadata__).toEqual({ k: 'v' });
    // Layout order: descending dtype alignment (I64, F32, F16, BOOL), then name.
    const order = Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])
      .map(([k]) => k);
    expect(order).toEqual(['ids', 'b', 'w', 'h', 'mask']);
    expect(header.ids).toEqual({ dtype: 'I64', shape: [1], data_offsets: [0, 8] });
    expect(header.b).toEqual({ dtype: 'F32', shape: [1], data_offsets: [8, 12] });
    expect(header.w).toEqual({ dtype: 'F32', shape: [2], data_offsets: [12, 20] });
    expect(header.h).toEqual({ dtype: 'F16', shape: [1], data_offsets: [20, 22] });
    expect(header.mask).toEqual({ dtype: 'BOOL', shape: [3], data_offsets: [22, 25] });
    const base = 8 + n;
    expect(bytes.length).toBe(base + 25);
    expect(dv.getBigInt64(base, true)).toBe(-5n);
    expect(dv.getFloat32(base + 8, true)).toBe(0.25);
    expect(dv.getFloat32(base + 12, true)).toBe(1);
    expect(dv.getFloat32(base + 16, true)).toBe(-2);
    expect(dv.getUint16(base + 20, true)).toBe(0x3c00);
    expect(Array.from(bytes.subarray(base + 22))).toEqual([1, 0, 1]);
  });

  it('is deterministic regardless of insertion order', () => {
    const a = createTensor('float32', [1], new Float32Array([1]));
    const b = createTensor('int8', [2], new Int8Array([1, 2]));
    const one = serializeSafetensors({ a, b, c: a });
    const two = serializeSafetensors({ c: a, b, a });
    expect(Array.from(one)).toEqual(Array.from(two));
  });

  it('handles views at odd offsets: aligned data is zero-copy, unaligned data is copied', () => {
    const bytes = handWrite([{ name: 'x', dtype: 'F32', shape: [3], bytes: le('f32', [1, 2, 3]) }]);
    const aligned = parseSafetensors(bytes);
    const view = aligned.get('x').toTensor().data as Float32Array;
    expect(view.buffer).toBe(bytes.buffer); // shares the file's memory
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const unaligned = parseSafetensors(shifted.subarray(1));
    const copy = unaligned.get('x').toTensor().data as Float32Array;
    expect(Array.from(copy)).toEqual([1, 2, 3]);
    expect(unaligned.get('x').bytes.buffer).toBe(shifted.buffer);
  });

  it('treats names like "__proto__" and integer-like keys as plain tensor names', () => {
    const t = createTensor('uint8', [1], new Uint8Array([9]));
    const bytes = serializeSafetensors(
      { __proto__: t, '1': t, b: t } as unknown as Record<string, Tensor>,
      { __proto__: 'x' } as unknown as Record<string, string>,
    );
    const file = parseSafetensors(bytes);
    // Object literal `__proto__:` sets the prototype, so build the inputs with a Map instead.
    const m = new Map<string, Tensor>([
      ['__proto__', t],
      ['1', t],
      ['b', t],
    ]);
    const file2 = parseSafetensors(serializeSafetensors(m, Object.fromEntries([['__proto__', 'x']])));
    expect([...file2.tensors.keys()].sort()).toEqual(['1', '__proto__', 'b']);
    expect(Object.keys(file2.metadata)).toEqual(['__proto__']);
    expect(file2.metadata.__proto__).toBe('x');
    expect([...file.tensors.keys()].sort()).toEqual(['1', 'b']);
  });
});

describe('float conversions against hand-worked bit patterns', () => {
  const f16Cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14],
    [0x3555, 0.333251953125],
    [0x8000, -0],
    [0x7c00, Number.POSITIVE_INFINITY],
    [0xfc00, Number.NEGATIVE_INFINITY],
  ];
  const bf16Cases: [number, number][] = [
    [0x3f80, 1],
    [0x4049, 3.140625],
    [0xc000, -2],
    [0x7f7f, 3.3895313892515355e38],
    [0x0001, 2 ** -133],
    [0x8000, -0],
    [0x7f80, Number.POSITIVE_INFINITY],
    [0xff80, Number.NEGATIVE_INFINITY],
  ];

  function fileOf(dtype: string, bits: number[]): Uint8Array {
    return handWrite([{ name: 't', dtype, shape: [bits.length], bytes: le('u16', bits) }]);
  }

  it('F16 → float32', () => {
    const entry = parseSafetensors(fileOf('F16', [...f16Cases.map((c) => c[0]), 0x7e00])).get('t');
    const out = entry.toFloat32();
    f16Cases.forEach(([, want], i) => expect(Object.is(out[i], want)).toBe(true));
    expect(Number.isNaN(out[f16Cases.length])).toBe(true);
    // toTensor keeps the raw half bits
    expect(Array.from(entry.toTensor().data as Uint16Array).slice(0, 3)).toEqual([0x3c00, 0xc000, 0x7bff]);
  });

  it('BF16 → float32 (toFloat32 and toTensor)', () => {
    const entry = parseSafetensors(fileOf('BF16', [...bf16Cases.map((c) => c[0]), 0x7fc1])).get('t');
    const out = entry.toFloat32();
    bf16Cases.forEach(([, want], i) => expect(Object.is(out[i], want)).toBe(true));
    expect(Number.isNaN(out[bf16Cases.length])).toBe(true);
    const t = entry.toTensor();
    expect(t.dtype).toBe('float32');
    expect(Array.from(t.data as Float32Array).slice(0, 4)).toEqual([1, 3.140625, -2, 3.3895313892515355e38]);
  });

  it('F8 E4M3 / E5M2 / E8M0 and F4 decode as the OCP formats define', () => {
    expect(float8E4M3ToFloat32(0x38)).toBe(1);
    expect(float8E4M3ToFloat32(0x7e)).toBe(448);
    expect(float8E4M3ToFloat32(0xfe)).toBe(-448);
    expect(float8E4M3ToFloat32(0x01)).toBe(2 ** -9);
    expect(float8E4M3ToFloat32(0x08)).toBe(2 ** -6);
    expect(Number.isNaN(float8E4M3ToFloat32(0x7f))).toBe(true);
    expect(Number.isNaN(float8E4M3ToFloat32(0xff))).toBe(true);
    expect(float8E5M2ToFloat32(0x3c)).toBe(1);
    expect(float8E5M2ToFloat32(0x7b)).toBe(57344);
    expect(float8E5M2ToFloat32(0x01)).toBe(2 ** -16);
    expect(float8E5M2ToFloat32(0x7c)).toBe(Number.POSITIVE_INFINITY);
    expect(float8E5M2ToFloat32(0xfc)).toBe(Number.NEGATIVE_INFINITY);
    expect(Number.isNaN(float8E5M2ToFloat32(0x7d))).toBe(true);
    expect(float8E8M0ToFloat32(127)).toBe(1);
    expect(float8E8M0ToFloat32(128)).toBe(2);
    expect(float8E8M0ToFloat32(0)).toBe(2 ** -127);
    expect(Number.isNaN(float8E8M0ToFloat32(255))).toBe(true);
    expect(Array.from({ length: 8 }, (_, i) => float4E2M1ToFloat32(i))).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6]);
    expect(float4E2M1ToFloat32(0xf)).toBe(-6);
  });

  it('F8 and F4 tensors decode through toFloat32 / toTensor', () => {
    const bytes = handWrite([
      { name: 'e4m3', dtype: 'F8_E4M3', shape: [3], bytes: new Uint8Array([0x38, 0xfe, 0x01]) },
      { name: 'e5m2', dtype: 'F8_E5M2', shape: [2], bytes: new Uint8Array([0x3c, 0x7c]) },
      { name: 'e8m0', dtype: 'F8_E8M0', shape: [2], bytes: new Uint8Array([127, 130]) },
      // F4: two elements per byte, first element in the low nibble.
      { name: 'f4', dtype: 'F4', shape: [4], bytes: new Uint8Array([0x21, 0xf7]) },
    ]);
    const file = parseSafetensors(bytes);
    expect(Array.from(file.get('e4m3').toFloat32())).toEqual([1, -448, 2 ** -9]);
    expect(Array.from(file.get('e5m2').toFloat32())).toEqual([1, Number.POSITIVE_INFINITY]);
    expect(Array.from(file.get('e8m0').toFloat32())).toEqual([1, 8]);
    expect(Array.from(file.get('f4').toFloat32())).toEqual([0.5, 1, 6, -6]);
    const t = file.get('e4m3').toTensor();
    expect(t.dtype).toBe('float32');
    expect(t.dims).toEqual([3]);
  });

  it('BF16 writers round to nearest even and read back', () => {
    const raw = bf16Tensor([2, 2], [1, 3.14159, Number.NEGATIVE_INFINITY, 1 + 2 ** -8]);
    expect(Array.from(new Uint16Array(raw.bytes.slice().buffer))).toEqual([0x3f80, 0x4049, 0xff80, 0x3f80]);
    const enc = encodeSafetensorsTensor(createTensor('float32', [3], new Float32Array([1, 65504, -2])), 'F16');
    expect(enc.dtype).toBe('F16');
    expect(Array.from(new Uint16Array(enc.bytes.slice().buffer))).toEqual([0x3c00, 0x7bff, 0xc000]);
    const file = parseSafetensors(serializeSafetensors({ w: raw, h: enc }));
    expect(Array.from(file.get('w').toFloat32())).toEqual([1, 3.140625, Number.NEGATIVE_INFINITY, 1]);
    expect(Array.from(file.get('h').toFloat32())).toEqual([1, 65504, -2]);
    expect(catchError(() => bf16Tensor([3], [1, 2]))).toBeInstanceOf(TensorShapeError);
  });
});

describe('lying headers', () => {
  const good = (): HandTensor[] => [
    { name: 'alpha', dtype: 'F32', shape: [2], bytes: le('f32', [1, 2]) },
    { name: 'beta', dtype: 'I16', shape: [2], bytes: le('i16', [3, 4]) },
  ];

  function expectFormat(bytes: Uint8Array, tensorName?: string, fragment?: string): FormatError {
    const err = catchError(() => parseSafetensors(bytes, { file: 'model.safetensors' }));
    expect(err).toBeInstanceOf(FormatError);
    const e = err as FormatError;
    expect(e.code).toBe('VLIT_FORMAT');
    expect(e.details.file).toBe('model.safetensors');
    expect(e.message).toContain('model.safetensors');
    if (tensorName !== undefined) {
      expect(e.message).toContain(`'${tensorName}'`);
      expect(e.details.field).toBe(tensorName);
    }
    if (fragment !== undefined) expect(e.message).toContain(fragment);
    return e;
  }

  it('accepts the untouched file', () => {
    expect(parseSafetensors(handWrite(good())).tensors.size).toBe(2);
  });

  it('file shorter than 8 bytes', () => {
    expectFormat(new Uint8Array(5), undefined, 'too short');
  });

  it('header length beyond the file', () => {
    const bytes = handWrite(good());
    new DataView(bytes.buffer).setUint32(0, bytes.length, true);
    expectFormat(bytes, undefined, 'beyond the end');
    const huge = handWrite(good());
    new DataView(huge.buffer).setUint32(4, 1, true); // N >= 2^32
    expectFormat(huge, undefined, 'beyond the end');
  });

  it('header that is not JSON, not UTF-8, or not an object', () => {
    const notJson = new Uint8Array(16 + 8);
    notJson[0] = 16;
    notJson.set(new TextEncoder().encode('{"a": [1, 2,}   '), 8);
    expectFormat(notJson, undefined, 'not valid JSON');
    const badUtf8 = new Uint8Array(8 + 8);
    badUtf8[0] = 8;
    badUtf8.set([0x7b, 0xff, 0xfe, 0x7d, 0x20, 0x20, 0x20, 0x20], 8);
    expectFormat(badUtf8, undefined, 'UTF-8');
    const arr = new Uint8Array(8 + 8);
    arr[0] = 8;
    arr.set(new TextEncoder().encode('[1,2]   '), 8);
    expectFormat(arr, undefined, 'not an object');
  });

  it('end offset beyond the buffer', () => {
    expectFormat(handWrite(good(), { overrideOffsets: { beta: [8, 16] } }), 'beta', 'beyond the byte buffer');
  });

  it('begin after end', () => {
    expectFormat(handWrite(good(), { overrideOffsets: { beta: [12, 8] } }), 'beta', 'after end');
  });

  it('byte length that disagrees with shape × dtype size', () => {
    const t = good();
    t[0].shape = [3];
    expectFormat(handWrite(t), 'alpha', 'needs 12');
    const s = good();
    s[1].dtype = 'I32';
    expectFormat(handWrite(s), 'beta', 'needs 8');
  });

  it('overlapping tensors', () => {
    const t = good();
    t[1] = { name: 'beta', dtype: 'I16', shape: [2], bytes: le('i16', [3, 4]) };
    t.push({ name: 'gamma', dtype: 'U8', shape: [4], bytes: new Uint8Array(4) });
    // gamma claims bytes [10, 14) while beta holds [8, 12); total buffer is 16 bytes.
    const e = expectFormat(handWrite(t, { overrideOffsets: { gamma: [10, 14] } }), 'gamma', 'overlap');
    expect(e.message).toContain("'beta'");
  });

  it('holes: a gap between tensors, a gap at the start, trailing bytes', () => {
    const t = good();
    t.push({ name: 'gamma', dtype: 'U8', shape: [2], bytes: new Uint8Array(2) });
    // 14-byte buffer: alpha [0,8), gamma [9,11), beta [10,14): byte 8 belongs to no tensor.
    expectFormat(handWrite(t, { overrideOffsets: { gamma: [9, 11], beta: [10, 14] } }), 'gamma', 'hole');
    const shiftedStart = handWrite(good(), { overrideOffsets: { alpha: [4, 12], beta: [12, 16] } });
    const withRoom = new Uint8Array(shiftedStart.length + 4);
    withRoom.set(shiftedStart);
    expectFormat(withRoom, 'alpha', 'hole');
    const trailing = handWrite(good());
    const longer = new Uint8Array(trailing.length + 4);
    longer.set(trailing);
    expectFormat(longer, 'beta', 'trailing bytes');
  });

  it('sub-byte tensors must fill whole bytes', () => {
    expectFormat(handWrite([{ name: 'q', dtype: 'F4', shape: [3], bytes: new Uint8Array(2) }]), 'q', 'whole number of bytes');
  });

  it('malformed shapes, offsets, entries and metadata', () => {
    const bad = (json: string): Uint8Array => {
      let text = json;
      while (text.length % 8) text += ' ';
      const out = new Uint8Array(8 + text.length);
      out[0] = text.length;
      out.set(new TextEncoder().encode(text), 8);
      return out;
    };
    expectFormat(bad('{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'), 'x', 'shape');
    expectFormat(bad('{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}}'), 'x', 'shape');
    expectFormat(bad('{"x":{"dtype":"F32","shape":[0],"data_offsets":[0]}}'), 'x', 'data_offsets');
    expectFormat(bad('{"x":{"shape":[0],"data_offsets":[0,0]}}'), 'x', 'dtype');
    expectFormat(bad('{"x":3}'), 'x', 'not an object');
    expectFormat(bad('{"__metadata__":{"a":1}}'), '__metadata__', 'not a string');
  });

  it('unknown dtype gives UnsupportedError naming the tensor', () => {
    const t = good();
    t[1].dtype = 'Q4_K';
    const err = catchError(() => parseSafetensors(handWrite(t), { file: 'm.st' }));
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as UnsupportedError).message).toContain("'beta'");
    expect((err as UnsupportedError).details).toMatchObject({ file: 'm.st', field: 'beta', dtype: 'Q4_K' });
  });

  it('get() of a missing tensor is NotFoundError', () => {
    const err = catchError(() => parseSafetensors(handWrite(good()), { file: 'f' }).get('nope'));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
  });
});

describe('serializeSafetensors input checks', () => {
  it('rejects raw bytes that disagree with shape, reserved names and non-string metadata', () => {
    expect(catchError(() => serializeSafetensors({ x: { dtype: 'F32', shape: [2], bytes: new Uint8Array(4) } }))).toBeInstanceOf(TensorShapeError);
    expect(catchError(() => serializeSafetensors({ x: { dtype: 'F6_E2M3', shape: [3], bytes: new Uint8Array(3) } }))).toBeInstanceOf(TensorShapeError);
    expect(catchError(() => serializeSafetensors({ x: { dtype: 'Q8' as SafetensorsDType, shape: [1], bytes: new Uint8Array(1) } }))).toBeInstanceOf(
      UnsupportedError,
    );
    const t = createTensor('uint8', [1], new Uint8Array([1]));
    expect(catchError(() => serializeSafetensors({ __metadata__: t }))).toBeInstanceOf(InvalidArgumentError);
    expect(catchError(() => serializeSafetensors({ t }, { a: 1 as unknown as string }))).toBeInstanceOf(InvalidArgumentError);
    const lying = { dtype: 'float32', dims: [3], data: new Float32Array(2) } as Tensor;
    const err = catchError(() => serializeSafetensors({ lying }));
    expect(err).toBeInstanceOf(TensorShapeError);
    expect((err as TensorShapeError).message).toContain('lying');
  });

  it('writes an empty file that parses back', () => {
    const bytes = serializeSafetensors({});
    const file = parseSafetensors(bytes);
    expect(file.tensors.size).toBe(0);
    expect(file.headerLength % 8).toBe(0);
  });
});
