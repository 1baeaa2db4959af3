/**
 * The single doorway to onnx-proto (a CommonJS protobufjs 6 module), plus the conversions every
 * other file needs: ONNX element types <-> core dtypes, protobuf int64 (Long) -> number, and
 * Tensor <-> TensorProto.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import {
  FormatError,
  InvalidArgumentError,
  UnsupportedError,
  createTensor,
  dtypeByteSize,
  elementCount,
  typedArrayFromBytes,
  typedArrayToBytes,
  type DType,
  type Tensor,
  type TensorData,
} from '@vlit/core';

/** The protobufjs classes generated from onnx.proto (ModelProto, GraphProto, NodeProto, ...). */
export const onnx: typeof OnnxTypes = onnxProto.onnx;

/**
 * onnx-proto's message classes type nested messages as loose `I*` interfaces (every field optional
 * and nullable), although decoded and created messages always carry arrays and strings. These
 * aliases state what Vlit relies on: the same objects, with nested messages typed as messages.
 */
export type TensorProto = Omit<OnnxTypes.TensorProto, 'externalData'> & { externalData: OnnxTypes.StringStringEntryProto[] };
/** onnx-proto's ValueInfoProto. */
export type ValueInfoProto = OnnxTypes.ValueInfoProto;
/** onnx-proto's AttributeProto with nested tensors and graphs typed as messages. */
export type AttributeProto = Omit<OnnxTypes.AttributeProto, 't' | 'g' | 'graphs' | 'tensors'> & {
  t?: TensorProto | null;
  g?: GraphProto | null;
  graphs: GraphProto[];
  tensors: TensorProto[];
};
/** onnx-proto's NodeProto with typed attributes. */
export type NodeProto = Omit<OnnxTypes.NodeProto, 'attribute'> & { attribute: AttributeProto[] };
/** onnx-proto's GraphProto with typed nodes, initializers and value infos. */
export type GraphProto = Omit<OnnxTypes.GraphProto, 'node' | 'initializer' | 'input' | 'output' | 'valueInfo'> & {
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
};
/** A decoded or built ONNX model: onnx-proto's `ModelProto` (editable in place; encode with encodeModel). */
export type OnnxModel = Omit<OnnxTypes.ModelProto, 'graph' | 'opsetImport'> & {
  graph?: GraphProto | null;
  opsetImport: OnnxTypes.OperatorSetIdProto[];
};

/** ONNX element types that core's Tensor cannot hold; they still appear in model signatures. */
export type ExtraElementType =
  | 'string'
  | 'complex64'
  | 'complex128'
  | 'bfloat16'
  | 'float8e4m3fn'
  | 'float8e4m3fnuz'
  | 'float8e5m2'
  | 'float8e5m2fnuz'
  | 'uint4'
  | 'int4'
  | 'float4e2m1'
  | 'undefined';

/** Element type of an ONNX value: a core dtype when core can hold it, else ONNX's own name. */
export type ElementType = DType | ExtraElementType;

/** One dimension: a size, a symbolic name (`'batch'`) or null when nothing is known. */
export type Dim = number | string | null;

const CODE_TO_TYPE: Record<number, ElementType> = {
  0: 'undefined',
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
};

const TYPE_TO_CODE = new Map<string, number>(Object.entries(CODE_TO_TYPE).map(([k, v]) => [v, Number(k)]));

const CORE_DTYPES = new Set<string>(['float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']);

/** Map an ONNX TensorProto.DataType code to an element type name (`'onnx:<code>'`-free: unknown codes give 'undefined'). */
export function elementTypeFromOnnx(code: number | null | undefined): ElementType {
  return CODE_TO_TYPE[code ?? 0] ?? 'undefined';
}

/** Map an element type name to its ONNX TensorProto.DataType code. */
export function elementTypeToOnnx(type: ElementType): number {
  const code = TYPE_TO_CODE.get(type);
  if (code === undefined || code === 0) {
    throw new InvalidArgumentError(`unknown element type '${String(type)}'`, { details: { field: 'dtype' } });
  }
  return code;
}

/** True when core's Tensor can hold this element type. */
export function isCoreDType(type: ElementType | string): type is DType {
  return CORE_DTYPES.has(type);
}

/** Bytes per element for fixed-size ONNX types (4-bit types give 0.5); undefined for strings. */
export function elementByteSize(type: ElementType): number | undefined {
  if (isCoreDType(type)) return dtypeByteSize(type);
  switch (type) {
    case 'bfloat16':
      return 2;
    case 'complex64':
      return 8;
    case 'complex128':
      return 16;
    case 'float8e4m3fn':
    case 'float8e4m3fnuz':
    case 'float8e5m2':
    case 'float8e5m2fnuz':
      return 1;
    case 'uint4':
    case 'int4':
    case 'float4e2m1':
      return 0.5;
    default:
      return undefined;
  }
}

/** protobufjs gives int64 fields as Long objects when the `long` package is present. */
export type LongLike = number | { low: number; high: number; unsigned?: boolean; toString(): string };

/** Read a protobuf int64 as a JS number (exact below 2^53, which covers every dim and offset). */
export function toNumber(value: LongLike | null | undefined): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  return Number(value.toString());
}

/** Read a protobuf int64 as a bigint, exact for every value. */
export function toBigInt(value: LongLike): bigint {
  return typeof value === 'number' ? BigInt(value) : BigInt(value.toString());
}

/** Encode a core tensor as an ONNX TensorProto holding raw little-endian bytes. */
export function tensorToProto(name: string, tensor: Tensor): TensorProto {
  return onnx.TensorProto.create({
    name,
    dims: tensor.dims.map((d) => d),
    dataType: elementTypeToOnnx(tensor.dtype),
    // A copy, so later edits to the caller's array never leak into the model.
    rawData: typedArrayToBytes(tensor.data),
  }) as unknown as TensorProto;
}

/** Dims of a TensorProto as numbers. */
export function protoDims(proto: OnnxTypes.ITensorProto): number[] {
  return (proto.dims ?? []).map((d) => toNumber(d as LongLike));
}

/** Expected raw byte length of a tensor proto's data, or undefined for variable-size types. */
export function expectedRawLength(proto: OnnxTypes.ITensorProto): number | undefined {
  const size = elementByteSize(elementTypeFromOnnx(proto.dataType));
  if (size === undefined) return undefined;
  let count = 1;
  for (const d of protoDims(proto)) count *= d;
  return Math.ceil(count * size);
}

/** Decode a TensorProto (raw_data or the typed repeated fields) into a core tensor. */
export function protoToTensor(proto: OnnxTypes.ITensorProto, where: { file?: string; field?: string } = {}): Tensor {
  const type = elementTypeFromOnnx(proto.dataType);
  const field = where.field ?? `initializer ${proto.name ?? ''}`;
  if (!isCoreDType(type)) {
    throw new UnsupportedError(`tensor '${proto.name ?? ''}' has element type ${type}, which core tensors cannot hold`, {
      details: { file: where.file, field, dtype: type },
    });
  }
  if (proto.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new UnsupportedError(`tensor '${proto.name ?? ''}' keeps its data in an external file that was not loaded; use loadModel from @vlit/graph/node`, {
      details: { file: where.file, field },
    });
  }
  const dims = protoDims(proto);
  const count = elementCount(dims);
  const raw = proto.rawData;
  if (raw && raw.length > 0) {
    const expected = count * dtypeByteSize(type);
    if (raw.length !== expected) {
      throw new FormatError(`tensor '${proto.name ?? ''}' raw_data holds ${raw.length} bytes but dims [${dims.join(', ')}] of ${type} need ${expected}`, {
        details: { file: where.file, field },
      });
    }
    // Copy: raw_data is a view into the decoded file, and the tensor must not keep the whole file alive.
    return createTensor(type, dims, typedArrayFromBytes(type, new Uint8Array(raw)));
  }
  const out = createTensor(type, dims);
  const data = out.data as unknown as Array<number | bigint>;
  let source: ArrayLike<LongLike> | undefined;
  switch (type) {
    case 'float32':
      source = proto.floatData ?? undefined;
      break;
    case 'float64':
      source = proto.doubleData ?? undefined;
      break;
    case 'int64':
      source = (proto.int64Data ?? undefined) as ArrayLike<LongLike> | undefined;
      break;
    case 'uint32':
    case 'uint64':
      source = (proto.uint64Data ?? undefined) as ArrayLike<LongLike> | undefined;
      break;
    default:
      source = proto.int32Data ?? undefined;
  }
  const length = source?.length ?? 0;
  if (length !== count) {
    throw new FormatError(`tensor '${proto.name ?? ''}' holds ${length} values but dims [${dims.join(', ')}] need ${count}`, {
      details: { file: where.file, field },
    });
  }
  const big = type === 'int64' || type === 'uint64';
  for (let i = 0; i < count; i++) {
    const v = source![i];
    data[i] = big ? (type === 'uint64' ? BigInt.asUintN(64, toBigInt(v)) : toBigInt(v)) : toNumber(v);
  }
  return out;
}
