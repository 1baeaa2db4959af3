/**
 * safetensors read/write (https://github.com/huggingface/safetensors).
 *
 * Layout: 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`
 * (padded with spaces so the byte buffer starts 8-byte aligned), then the byte buffer. Offsets are
 * relative to the buffer start; tensors must cover the buffer exactly, with no holes or overlaps.
 * Element data is little-endian and row-major.
 *
 * Reading is zero-copy where it can be: entries expose a `bytes` view into the file, and typed
 * arrays share the file's memory when the view is aligned for them (they are copied otherwise).
 */
import { FormatError, InvalidArgumentError, NotFoundError, TensorShapeError, UnsupportedError } from './errors.js';
import {
  assertTensor,
  createTensor,
  elementCount,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  sameDims,
  shapeMismatchError,
  typedArrayFromBytes,
  typedArrayToBytes,
  type DType,
  type Tensor,
  type TensorData,
} from './tensor.js';
import { float4E2M1ToFloat32, float8E4M3ToFloat32, float8E5M2ToFloat32, float8E8M0ToFloat32 } from './minifloat.js';

/**
 * Every dtype the safetensors format defines, in the reference implementation's "alignment" order
 * (smallest first). F4 and F6_* are sub-byte types packed into the buffer; C64 is complex64
 * (two float32 parts per element).
 */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;

/** A safetensors dtype string as written in the header. */
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

const BITS: Record<SafetensorsDType, number> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

const ORDER: Record<string, number> = Object.fromEntries(SAFETENSORS_DTYPES.map((d, i) => [d, i]));

/** safetensors dtype → core dtype, for the dtypes core can hold natively. */
const TO_CORE: Partial<Record<SafetensorsDType, DType>> = {
  BOOL: 'bool',
  U8: 'uint8',
  I8: 'int8',
  I16: 'int16',
  U16: 'uint16',
  F16: 'float16',
  I32: 'int32',
  U32: 'uint32',
  F32: 'float32',
  F64: 'float64',
  I64: 'int64',
  U64: 'uint64',
};

/** core dtype → safetensors dtype. */
const FROM_CORE: Record<DType, SafetensorsDType> = {
  bool: 'BOOL',
  uint8: 'U8',
  int8: 'I8',
  int16: 'I16',
  uint16: 'U16',
  float16: 'F16',
  int32: 'I32',
  uint32: 'U32',
  float32: 'F32',
  float64: 'F64',
  int64: 'I64',
  uint64: 'U64',
};

/** Reference implementation's limit on the JSON header size (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** True when `value` names a dtype the safetensors format defines. */
export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(BITS, value);
}

/** Bits per element of a safetensors dtype (4 for F4, 6 for F6_*, 64 for C64, ...). */
export function safetensorsDTypeBits(dtype: SafetensorsDType): number {
  const bits = BITS[dtype];
  if (bits === undefined) {
    throw new UnsupportedError(`unknown safetensors dtype '${String(dtype)}'`, { details: { field: 'dtype' } });
  }
  return bits;
}

/** The core dtype a safetensors dtype maps to natively, or null when core has none (BF16, F8_*, F4, F6_*, C64). */
export function safetensorsToCoreDType(dtype: SafetensorsDType): DType | null {
  return TO_CORE[dtype] ?? null;
}

/** The safetensors dtype a core dtype is written as. */
export function coreToSafetensorsDType(dtype: DType): SafetensorsDType {
  const st = FROM_CORE[dtype];
  if (!st) throw new InvalidArgumentError(`unknown dtype '${String(dtype)}'`, { details: { field: 'dtype' } });
  return st;
}

/** Bytes a tensor of `dtype` and `shape` occupies, or null when the bit count is not a whole number of bytes. */
function byteSizeOf(dtype: SafetensorsDType, count: number): number | null {
  const bits = count * BITS[dtype];
  if (bits % 8 !== 0) return null;
  return bits / 8;
}

// ---------------------------------------------------------------------------------------------
// Element conversions for the dtypes core has no native type for.

function table(size: number, decode: (bits: number) => number): () => Float32Array {
  let cached: Float32Array | undefined;
  return () => {
    if (!cached) {
      cached = new Float32Array(size);
      for (let i = 0; i < size; i++) cached[i] = decode(i);
    }
    return cached;
  };
}

const F16_TABLE = table(65536, float16ToFloat32);
const E4M3_TABLE = table(256, float8E4M3ToFloat32);
const E5M2_TABLE = table(256, float8E5M2ToFloat32);
const E8M0_TABLE = table(256, float8E8M0ToFloat32);
const E2M1_TABLE = table(16, float4E2M1ToFloat32);

// ---------------------------------------------------------------------------------------------
// Reading

/** One tensor of a parsed safetensors file. */
export interface SafetensorsEntry {
  /** Tensor name (the header key). */
  readonly name: string;
  /** dtype string as written in the header. */
  readonly dtype: SafetensorsDType;
  /** Shape as written in the header (element counts; F4/F6 count sub-byte elements). */
  readonly shape: readonly number[];
  /** `[begin, end]` byte offsets relative to the start of the byte buffer. */
  readonly dataOffsets: readonly [number, number];
  /** The tensor's raw little-endian bytes: a zero-copy view into the parsed file. */
  readonly bytes: Uint8Array;
  /**
   * The tensor as a core `Tensor`. dtypes core holds natively keep their dtype (F16 → float16 bits,
   * I64 → int64 BigInt64Array, BOOL → bool, ...) and share the file's memory when aligned.
   * BF16, F8_* and F4 have no core dtype and are widened exactly to float32; C64 becomes float32
   * with a trailing dimension of 2 (real, imaginary). F6_* throws UnsupportedError.
   */
  toTensor(): Tensor;
  /**
   * Element values as a Float32Array (decoding F16, BF16, F8_*, F4; narrowing F64 and integers;
   * BOOL → 0/1). For F32 this may share the file's memory. C64 and F6_* throw UnsupportedError.
   */
  toFloat32(): Float32Array;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  /** The `__metadata__` string map ({} when absent). */
  readonly metadata: Record<string, string>;
  /** Tensors by name, in byte-buffer order. */
  readonly tensors: Map<string, SafetensorsEntry>;
  /** Size of the JSON header in bytes (N, padding included). */
  readonly headerLength: number;
  /** Return the named tensor; throws NotFoundError naming the file when absent. */
  get(name: string): SafetensorsEntry;
}

/** Options of parseSafetensors. */
export interface ParseSafetensorsOptions {
  /** File name used in error details and messages. */
  file?: string;
}

/**
 * A checkpoint tensor as a float32 copy with the shape a component needs (F16, BF16 and F8 widen; a copy because
 * the entry may view the file's memory). Another shape is a CompatibilityError naming the tensor, both shapes
 * and who needs it (`neededBy`: "the configuration", "the mlp connector").
 */
export function float32TensorOfShape(
  entry: SafetensorsEntry,
  dims: readonly number[],
  context: { neededBy: string; file?: string; field?: string },
): Tensor<'float32'> {
  if (!sameDims(entry.shape, dims)) {
    const { neededBy, file } = context;
    throw shapeMismatchError({
      label: `tensor '${entry.name}'`,
      name: entry.name,
      has: entry.shape,
      neededBy,
      needs: dims,
      file,
      field: context.field ?? entry.name,
    });
  }
  return createTensor('float32', [...dims], new Float32Array(entry.toFloat32()));
}

/**
 * Decode a tensor's raw little-endian bytes to float32 values (F16, BF16, F8_*, F4 decoded; F64 and
 * integers narrowed; BOOL → 0/1). F32 may share `bytes`' memory when aligned. C64 and F6_* throw
 * UnsupportedError naming the tensor.
 */
export function safetensorsBytesToFloat32(
  dtype: SafetensorsDType,
  shape: readonly number[],
  b: Uint8Array,
  where: { file?: string; name?: string } = {},
): Float32Array {
  const unsupported = (what: string): UnsupportedError =>
    new UnsupportedError(`tensor '${where.name ?? '?'}': ${what}`, { details: { file: where.file, field: where.name, dtype } });
  const count = elementCount(shape);
  switch (dtype) {
    case 'F32':
      return typedArrayFromBytes('float32', b);
    case 'BF16': {
      const bits = typedArrayFromBytes('uint16', b);
      const out = new Float32Array(count);
      const out32 = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) out32[i] = bits[i] << 16;
      return out;
    }
    case 'F16': {
      const bits = typedArrayFromBytes('uint16', b);
      const lut = F16_TABLE();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = lut[bits[i]];
      return out;
    }
    case 'F8_E4M3':
    case 'F8_E5M2':
    case 'F8_E8M0': {
      const lut = dtype === 'F8_E4M3' ? E4M3_TABLE() : dtype === 'F8_E5M2' ? E5M2_TABLE() : E8M0_TABLE();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = lut[b[i]];
      return out;
    }
    case 'F4': {
      // Two elements per byte, the first in the low nibble (OCP MX / PyTorch float4_e2m1fn_x2 order).
      const lut = E2M1_TABLE();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = lut[(b[i >> 1] >> ((i & 1) * 4)) & 0xf];
      return out;
    }
    case 'F6_E2M3':
    case 'F6_E3M2':
      throw unsupported(`${dtype} elements are packed in an order the safetensors format does not define; read .bytes`);
    case 'C64':
      throw unsupported('C64 is complex; use toTensor() (float32 with a trailing dimension of 2)');
    default: {
      const core = TO_CORE[dtype] as DType;
      const data = typedArrayFromBytes(core, b) as ArrayLike<number | bigint>;
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(data[i]);
      return out;
    }
  }
}

class Entry implements SafetensorsEntry {
  constructor(
    readonly name: string,
    readonly dtype: SafetensorsDType,
    readonly shape: readonly number[],
    readonly dataOffsets: readonly [number, number],
    readonly bytes: Uint8Array,
    private readonly file: string | undefined,
  ) {}

  toTensor(): Tensor {
    const core = TO_CORE[this.dtype];
    if (core) return createTensor(core, this.shape, typedArrayFromBytes(core, this.bytes));
    if (this.dtype === 'C64') {
      return createTensor('float32', [...this.shape, 2], typedArrayFromBytes('float32', this.bytes));
    }
    return createTensor('float32', this.shape, this.toFloat32());
  }

  toFloat32(): Float32Array {
    return safetensorsBytesToFloat32(this.dtype, this.shape, this.bytes, { file: this.file, name: this.name });
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** One tensor's place in a safetensors file, as validated from its header. */
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Byte offsets relative to the start of the byte buffer (which begins at `8 + headerLength`). */
  readonly begin: number;
  readonly end: number;
}

/** A validated safetensors header. */
export interface SafetensorsHeader {
  /** The `__metadata__` string map ({} when absent). */
  readonly metadata: Record<string, string>;
  /** Tensors in byte-buffer order. */
  readonly tensors: SafetensorsTensorInfo[];
  /** Size of the JSON header in bytes (N, padding included). */
  readonly headerLength: number;
  /** Offset of the byte buffer from the start of the file (8 + N). */
  readonly bufferStart: number;
}

function headerFailure(file: string | undefined) {
  const where = file !== undefined ? file : 'safetensors';
  return (message: string, field?: string, extra: Record<string, unknown> = {}): FormatError =>
    new FormatError(field !== undefined ? `${where}: tensor '${field}': ${message}` : `${where}: ${message}`, {
      details: { file, field, ...extra },
    });
}

/**
 * Read the header length N from a file's first 8 bytes and check it against the file size (so a caller
 * reading through a file handle knows how many header bytes to read before reading them).
 */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, options: ParseSafetensorsOptions = {}): number {
  const fail = headerFailure(options.file);
  if (fileSize < 8 || first8.byteLength < 8) throw fail(`file is ${fileSize} bytes, too short for the 8-byte header length`);
  const n64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(fileSize - 8)) {
    throw fail(`header length ${n64} reaches beyond the end of the file (${fileSize} bytes)`, undefined, {
      headerLength: n64.toString(),
    });
  }
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) throw fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  return n;
}

/**
 * Validate a safetensors header (the N JSON bytes after the length) against the size of the whole file:
 * dtypes, shapes, offsets that match each shape, and tensors that cover the byte buffer with no holes
 * or overlaps. FormatError / UnsupportedError name the file and the tensor.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, options: ParseSafetensorsOptions = {}): SafetensorsHeader {
  const file = options.file;
  const where = file !== undefined ? file : 'safetensors';
  const fail = headerFailure(file);
  const n = headerBytes.byteLength;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch (cause) {
    throw new FormatError(`${where}: header is not valid UTF-8`, { cause, details: { file } });
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (cause) {
    throw new FormatError(`${where}: header is not valid JSON`, { cause, details: { file } });
  }
  if (!isPlainObject(header)) throw fail('header JSON is not an object');

  let metadata: Record<string, string> = {};
  const rawMeta = Object.prototype.hasOwnProperty.call(header, '__metadata__') ? header.__metadata__ : undefined;
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!isPlainObject(rawMeta)) throw fail('__metadata__ is not an object of strings', '__metadata__');
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') throw fail(`__metadata__ value for '${k}' is not a string`, '__metadata__');
    }
    // fromEntries defines own properties, so a key like "__proto__" stays plain data.
    metadata = Object.fromEntries(Object.entries(rawMeta)) as Record<string, string>;
  }

  const bufferStart = 8 + n;
  const bufferLength = fileSize - bufferStart;
  type Info = { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number };
  const infos: Info[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!isPlainObject(raw)) throw fail('entry is not an object', name);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (typeof dtype !== 'string') throw fail('dtype is missing or not a string', name);
    if (!isSafetensorsDType(dtype)) {
      throw new UnsupportedError(`${where}: tensor '${name}': unknown dtype '${dtype}'`, {
        details: { file, field: name, dtype },
      });
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) throw fail('shape is not an array of non-negative integers', name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw fail('data_offsets is not a pair of non-negative integers', name);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw fail(`data_offsets begin ${begin} is after end ${end}`, name);
    if (end > bufferLength) {
      throw fail(`data_offsets end ${end} is beyond the byte buffer (${bufferLength} bytes)`, name);
    }
    let count = 1;
    for (const d of shape as number[]) count *= d;
    if (!Number.isSafeInteger(count)) throw fail(`shape [${shape.join(', ')}] overflows`, name);
    const expected = byteSizeOf(dtype, count);
    if (expected === null) {
      throw fail(`${count} elements of ${dtype} (${BITS[dtype]} bits) do not fill a whole number of bytes`, name);
    }
    if (end - begin !== expected) {
      throw fail(`data_offsets span ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${expected}`, name);
    }
    infos.push({ name, dtype, shape: shape as number[], begin, end });
  }

  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: string | undefined;
  for (const info of infos) {
    if (info.begin < cursor) {
      throw fail(`bytes [${info.begin}, ${info.end}) overlap tensor '${previous}' (which ends at ${cursor})`, info.name, {
        other: previous,
      });
    }
    if (info.begin > cursor) {
      throw fail(`hole in the byte buffer: bytes [${cursor}, ${info.begin}) before this tensor belong to no tensor`, info.name);
    }
    cursor = info.end;
    previous = info.name;
  }
  if (cursor !== bufferLength) {
    throw fail(
      `tensors cover ${cursor} bytes but the byte buffer holds ${bufferLength}` +
        (previous !== undefined ? ` (trailing bytes after tensor '${previous}')` : ''),
      previous,
    );
  }

  return { metadata, tensors: infos, headerLength: n, bufferStart };
}

/** Parse a safetensors file held in memory; entries are zero-copy views into `bytes`. */
export function parseSafetensors(bytes: Uint8Array, options: ParseSafetensorsOptions = {}): SafetensorsFile {
  const file = options.file;
  const where = file !== undefined ? file : 'safetensors';
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError('parseSafetensors needs a Uint8Array', { details: { file, field: 'bytes' } });
  }
  const n = safetensorsHeaderLength(bytes, bytes.byteLength, options);
  const { metadata, tensors: infos, bufferStart } = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength, options);
  const tensors = new Map<string, SafetensorsEntry>();
  for (const info of infos) {
    const view = bytes.subarray(bufferStart + info.begin, bufferStart + info.end);
    tensors.set(info.name, new Entry(info.name, info.dtype, info.shape, [info.begin, info.end], view, file));
  }
  return {
    metadata,
    tensors,
    headerLength: n,
    get(name: string): SafetensorsEntry {
      const entry = tensors.get(name);
      if (!entry) {
        throw new NotFoundError(`${where}: no tensor named '${name}'`, { details: { file, field: name } });
      }
      return entry;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A tensor given as raw little-endian bytes in any safetensors dtype (a parsed entry qualifies). */
export interface SafetensorsRawTensor {
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** What serializeSafetensors accepts per name: a core Tensor (written in its own dtype) or raw bytes. */
export type SafetensorsInput = Tensor | SafetensorsRawTensor;

/** Float dtypes encodeSafetensorsTensor can convert numbers into. */
export type SafetensorsFloatDType = 'F64' | 'F32' | 'F16' | 'BF16';

function isRaw(value: SafetensorsInput): value is SafetensorsRawTensor {
  return typeof value === 'object' && value !== null && 'bytes' in value && 'shape' in value;
}

/**
 * Encode a numeric core tensor as raw safetensors bytes in a float dtype (F64, F32, F16, BF16),
 * rounding to nearest even; float16 input is decoded from its bits first.
 */
export function encodeSafetensorsTensor(tensor: Tensor, as: SafetensorsFloatDType): SafetensorsRawTensor {
  assertTensor(tensor);
  if (tensor.dtype === 'bool') {
    throw new InvalidArgumentError(`cannot encode a bool tensor as ${as}`, { details: { field: 'dtype' } });
  }
  const count = tensor.data.length;
  const src: ArrayLike<number | bigint> = tensor.data as ArrayLike<number | bigint>;
  const value = tensor.dtype === 'float16' ? (i: number) => float16ToFloat32(src[i] as number) : (i: number) => Number(src[i]);
  let data: TensorData;
  switch (as) {
    case 'F64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = value(i);
      data = out;
      break;
    }
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = value(i);
      data = out;
      break;
    }
    case 'F16': {
      const out = new Uint16Array(count);
      if (tensor.dtype === 'float16') out.set(tensor.data as Uint16Array);
      else for (let i = 0; i < count; i++) out[i] = float32ToFloat16(value(i));
      data = out;
      break;
    }
    case 'BF16': {
      const out = new Uint16Array(count);
      for (let i = 0; i < count; i++) out[i] = float32ToBfloat16(value(i));
      data = out;
      break;
    }
    default:
      throw new InvalidArgumentError(`cannot encode numbers as '${String(as)}'`, { details: { field: 'as' } });
  }
  return { dtype: as, shape: [...tensor.dims], bytes: typedArrayToBytes(data) };
}

/** Build a BF16 tensor (raw safetensors bytes) from float values, rounding each to nearest even. */
export function bf16Tensor(shape: readonly number[], values: ArrayLike<number>): SafetensorsRawTensor {
  const count = elementCount(shape);
  if (values.length !== count) {
    throw new TensorShapeError(`BF16 tensor of shape [${shape.join(', ')}] needs ${count} values, got ${values.length}`, {
      details: { field: 'values', expected: count, length: values.length },
    });
  }
  const bits = new Uint16Array(count);
  for (let i = 0; i < count; i++) bits[i] = float32ToBfloat16(values[i]);
  return { dtype: 'BF16', shape: [...shape], bytes: typedArrayToBytes(bits) };
}

function compareUtf8(a: string, b: string): number {
  // Compare by Unicode code point, which orders strings like their UTF-8 bytes (as Rust does).
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const cx = x.value.codePointAt(0) as number;
    const cy = y.value.codePointAt(0) as number;
    if (cx !== cy) return cx - cy;
  }
}

/**
 * Serialize tensors (and optional string metadata) to safetensors bytes. Layout order follows the
 * reference implementation: by dtype in descending alignment order (U64, I64, F64, C64, F32, ...,
 * BOOL; see SAFETENSORS_DTYPES), then by name in UTF-8 byte order. The header lists `__metadata__`
 * first (omitted when there is none), then tensors in layout order, padded with spaces to 8 bytes.
 */
export function serializeSafetensors(tensors: Record<string, SafetensorsInput> | Map<string, SafetensorsInput>, metadata?: Record<string, string>): Uint8Array {
  const items: { name: string; dtype: SafetensorsDType; shape: number[]; bytes: Uint8Array }[] = [];
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, value] of entries) {
    if (name === '__metadata__') {
      throw new InvalidArgumentError("'__metadata__' is reserved and cannot name a tensor", { details: { field: name } });
    }
    if (typeof value !== 'object' || value === null) {
      throw new InvalidArgumentError(`tensor '${name}' is not a tensor`, { details: { field: name } });
    }
    if (isRaw(value)) {
      if (!isSafetensorsDType(value.dtype)) {
        throw new UnsupportedError(`tensor '${name}': unknown safetensors dtype '${String(value.dtype)}'`, {
          details: { field: name, dtype: value.dtype },
        });
      }
      if (!(value.bytes instanceof Uint8Array)) {
        throw new InvalidArgumentError(`tensor '${name}': bytes must be a Uint8Array`, { details: { field: name } });
      }
      let count: number;
      try {
        count = elementCount(value.shape);
      } catch (cause) {
        throw new TensorShapeError(`tensor '${name}': invalid shape [${value.shape.join(', ')}]`, {
          cause,
          details: { field: name },
        });
      }
      const expected = byteSizeOf(value.dtype, count);
      if (expected === null || expected !== value.bytes.byteLength) {
        throw new TensorShapeError(
          `tensor '${name}': ${value.bytes.byteLength} bytes do not match shape [${value.shape.join(', ')}] of ${value.dtype}` +
            (expected === null ? ' (not a whole number of bytes)' : ` (needs ${expected})`),
          { details: { field: name, dtype: value.dtype, length: value.bytes.byteLength, expected } },
        );
      }
      items.push({ name, dtype: value.dtype, shape: [...value.shape], bytes: value.bytes });
    } else {
      assertTensor(value, name);
      const dtype = coreToSafetensorsDType(value.dtype);
      items.push({ name, dtype, shape: [...value.dims], bytes: typedArrayToBytes(value.data) });
    }
  }
  items.sort((a, b) => ORDER[b.dtype] - ORDER[a.dtype] || compareUtf8(a.name, b.name));

  // The header JSON is assembled by hand so keys keep layout order (a plain object would hoist
  // integer-like names) and names such as "__proto__" stay ordinary keys.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const meta: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new InvalidArgumentError(`metadata value for '${k}' must be a string`, { details: { field: `__metadata__.${k}` } });
      }
      meta.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    if (meta.length > 0) parts.push(`"__metadata__":{${meta.join(',')}}`);
  }
  let offset = 0;
  for (const item of items) {
    const end = offset + item.bytes.byteLength;
    parts.push(`${JSON.stringify(item.name)}:${JSON.stringify({ dtype: item.dtype, shape: item.shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + padded);
  let cursor = 8 + padded;
  for (const item of items) {
    out.set(item.bytes, cursor);
    cursor += item.bytes.byteLength;
  }
  return out;
}
