/**
 * Model bytes in and out, with the checks protobufjs does not make: a truncated or garbage buffer can
 * decode "successfully" into a half-empty message, so decodeModel verifies the structure it got.
 */
import { FormatError } from '@vlit/core';
import {
  elementTypeFromOnnx,
  expectedRawLength,
  onnx,
  protoDims,
  toNumber,
  type GraphProto,
  type LongLike,
  type OnnxModel,
  type TensorProto,
} from './proto.js';

/** Deep copy through the wire format, so edits never reach the caller's model. */
export function cloneModel(model: OnnxModel): OnnxModel {
  return onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish()) as unknown as OnnxModel;
}

/** Options for decoding model bytes. */
export interface DecodeModelOptions {
  /** File name used in error messages. */
  file?: string;
}

/** Serialize a model to ONNX protobuf bytes. */
export function encodeModel(model: OnnxModel): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

function check(condition: unknown, message: string, file: string, field?: string): asserts condition {
  if (!condition) throw new FormatError(`not a valid ONNX model: ${message}`, { details: { file, field } });
}

const TYPED_FIELDS = ['floatData', 'int32Data', 'int64Data', 'doubleData', 'uint64Data', 'stringData'] as const;

/** Check one tensor's payload length against its dims and type. */
export function checkTensorPayload(t: TensorProto, file: string, field: string): void {
  const type = elementTypeFromOnnx(t.dataType);
  check(type !== 'undefined', `tensor '${t.name}' has unknown data type ${t.dataType}`, file, field);
  const dims = protoDims(t);
  check(
    dims.every((d) => Number.isInteger(d) && d >= 0),
    `tensor '${t.name}' has invalid dims [${dims.join(', ')}]`,
    file,
    field,
  );
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const keys = new Set((t.externalData ?? []).map((e) => e.key));
    check(keys.has('location'), `external tensor '${t.name}' has no location`, file, field);
    return;
  }
  let count = 1;
  for (const d of dims) count *= d;
  if (t.rawData && t.rawData.length > 0) {
    const expected = expectedRawLength(t);
    if (expected !== undefined) {
      check(
        t.rawData.length === expected,
        `tensor '${t.name}' raw_data holds ${t.rawData.length} bytes but dims [${dims.join(', ')}] of ${type} need ${expected}`,
        file,
        field,
      );
    }
    return;
  }
  const lengths = TYPED_FIELDS.map((f) => (t[f] as unknown[] | null | undefined)?.length ?? 0);
  const total = lengths.reduce((a, b) => a + b, 0);
  // complex types store two numbers per element; 4-bit types pack two per int32.
  const perElement = type === 'complex64' || type === 'complex128' ? 2 : 1;
  const packed = type === 'int4' || type === 'uint4' || type === 'float4e2m1';
  const expected = packed ? Math.ceil(count / 2) : count * perElement;
  check(total === expected, `tensor '${t.name}' holds ${total} values but dims [${dims.join(', ')}] need ${expected}`, file, field);
}

function checkGraph(graph: GraphProto, file: string, path: string, outer: Set<string>): void {
  const defined = new Set(outer);
  (graph.initializer ?? []).forEach((t, i) => {
    check(t.name, `${path}.initializer[${i}] has no name`, file, `${path}.initializer[${i}]`);
    checkTensorPayload(t as TensorProto, file, `${path}.initializer[${t.name}]`);
    defined.add(t.name);
  });
  (graph.input ?? []).forEach((v, i) => {
    check(v.name, `${path}.input[${i}] has no name`, file, `${path}.input[${i}]`);
    defined.add(v.name);
  });
  (graph.node ?? []).forEach((n, i) => {
    const where = `${path}.node[${i}]${n.name ? ` (${n.name})` : ''}`;
    check(n.opType, `${where} has no op_type`, file, where);
    for (const input of n.input) {
      // Nodes with subgraphs may legally see names from enclosing scopes only inside those subgraphs.
      check(!input || defined.has(input), `${where} (${n.opType}) reads '${input}', which nothing defines before it`, file, where);
    }
    for (const a of n.attribute ?? []) {
      if (a.t) checkTensorPayload(a.t as TensorProto, file, `${where}.${a.name}`);
      if (a.g) checkGraph(a.g as GraphProto, file, `${where}.${a.name}`, defined);
      (a.graphs ?? []).forEach((g, j) => checkGraph(g as GraphProto, file, `${where}.${a.name}[${j}]`, defined));
    }
    for (const o of n.output) if (o) defined.add(o);
  });
  (graph.output ?? []).forEach((v, i) => {
    check(v.name, `${path}.output[${i}] has no name`, file, `${path}.output[${i}]`);
    check(defined.has(v.name), `${path}.output '${v.name}' is not produced by any node, input or initializer`, file, `${path}.output[${i}]`);
  });
}

/** Structural checks on a model (graph present, opsets declared, nodes typed, tensor payloads sized). */
export function validateModel(model: OnnxModel, file = '<model>'): void {
  check(toNumber(model.irVersion as LongLike) > 0, 'ir_version is missing', file, 'ir_version');
  check(model.graph, 'the model has no graph', file, 'graph');
  check((model.opsetImport ?? []).length > 0, 'the model declares no opset_import', file, 'opset_import');
  const graph = model.graph as GraphProto;
  check((graph.output ?? []).length > 0, 'the graph has no outputs', file, 'graph.output');
  checkGraph(graph, file, 'graph', new Set());
}

/** Parse ONNX protobuf bytes, failing with a FormatError naming the file for truncated or garbage input. */
export function decodeModel(bytes: Uint8Array, options: DecodeModelOptions = {}): OnnxModel {
  const file = options.file ?? '<bytes>';
  let model: OnnxModel;
  try {
    model = onnx.ModelProto.decode(bytes) as unknown as OnnxModel;
  } catch (err) {
    throw new FormatError(`not a valid ONNX model: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  validateModel(model, file);
  return model;
}
