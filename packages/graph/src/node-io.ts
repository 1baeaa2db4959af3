/**
 * The `@vlit/graph/node` entry, Node-only model files: load/save with the ONNX external-data layout
 * (large initializers in a side file next to the model), refusing external locations that point
 * outside the model's folder.
 */
import { open, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import { FormatError, InvalidArgumentError, NotFoundError, PathEscapeError } from '@vlit/core';
import { checkTensorPayload, decodeModel, encodeModel } from './model.js';
import { expectedRawLength, onnx, type GraphProto, type OnnxModel, type TensorProto } from './proto.js';

/** Where and when initializers go to an external data file. */
export interface ExternalDataOptions {
  /** File name relative to the model's folder (default `<model file name>.data`). */
  location?: string;
  /** Initializers of at least this many bytes go external (default 1024). */
  sizeThreshold?: number;
  /** Byte alignment of each tensor's offset (default 4096, the page size runtimes mmap with). */
  alignment?: number;
}

/** Options for saveModel. */
export interface SaveModelOptions {
  /** Write large initializers to an external data file instead of inside the protobuf. */
  externalData?: ExternalDataOptions;
}

/** Options for loadModel. */
export interface LoadModelOptions {
  /** Read external tensor data into raw_data (default true); false leaves the references in place. */
  loadExternalData?: boolean;
}

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

function checkLocation(location: string, modelFile: string, tensor: string): string {
  const field = `initializer ${tensor}`;
  // Reject both POSIX and Windows absolute forms whatever the host, since model files travel.
  if (!location || isAbsolute(location) || /^[a-zA-Z]:/.test(location) || location.startsWith('/') || location.startsWith('\\')) {
    throw new PathEscapeError(`external data location '${location}' must be a relative path inside the model's folder`, {
      details: { file: modelFile, field, location },
    });
  }
  const norm = normalize(location.replace(/\\/g, '/'));
  if (norm === '..' || norm.startsWith(`..${sep}`) || norm.split(/[\\/]/).includes('..')) {
    throw new PathEscapeError(`external data location '${location}' escapes the model's folder`, {
      details: { file: modelFile, field, location },
    });
  }
  return norm;
}

function allTensors(graph: GraphProto, out: TensorProto[] = []): TensorProto[] {
  for (const t of graph.initializer ?? []) out.push(t as TensorProto);
  for (const n of graph.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.t) out.push(a.t as TensorProto);
      if (a.g) allTensors(a.g as GraphProto, out);
      for (const g of a.graphs ?? []) allTensors(g as GraphProto, out);
    }
  }
  return out;
}

function entries(t: TensorProto): Map<string, string> {
  return new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
}

/** Read an ONNX model file, pulling external tensor data in from files beside it. */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<OnnxModel> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') throw new NotFoundError(`model file '${path}' does not exist`, { cause: err, details: { file: path } });
    throw err;
  }
  const model = decodeModel(bytes, { file: path });
  const external = allTensors(model.graph as GraphProto).filter((t) => t.dataLocation === EXTERNAL);
  if (external.length === 0) return model;
  const dir = dirname(path);
  for (const t of external) checkLocation(entries(t).get('location') ?? '', path, t.name);
  if (options.loadExternalData === false) return model;
  const realDir = await realpath(dir);
  const handles = new Map<string, { fh: Awaited<ReturnType<typeof open>>; size: number; file: string }>();
  try {
    for (const t of external) {
      const e = entries(t);
      const location = checkLocation(e.get('location') ?? '', path, t.name);
      let h = handles.get(location);
      if (!h) {
        const file = join(dir, location);
        let real: string;
        try {
          real = await realpath(file);
        } catch (err) {
          throw new FormatError(`external data file '${location}' of tensor '${t.name}' cannot be read`, {
            cause: err,
            details: { file: path, field: `initializer ${t.name}`, location },
          });
        }
        const rel = relative(realDir, real);
        if (rel.startsWith('..') || isAbsolute(rel)) {
          throw new PathEscapeError(`external data location '${location}' resolves outside the model's folder (through a link)`, {
            details: { file: path, field: `initializer ${t.name}`, location },
          });
        }
        const fh = await open(real, 'r');
        h = { fh, size: (await stat(real)).size, file };
        handles.set(location, h);
      }
      const offset = Number(e.get('offset') ?? 0);
      const expected = expectedRawLength(t);
      const length = e.has('length') ? Number(e.get('length')) : (expected ?? h.size - offset);
      if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(length) || length < 0 || offset + length > h.size) {
        throw new FormatError(`tensor '${t.name}' wants bytes ${offset}..${offset + length} of '${location}', which holds ${h.size}`, {
          details: { file: h.file, field: `initializer ${t.name}`, model: path },
        });
      }
      const buf = new Uint8Array(length);
      await h.fh.read(buf, 0, length, offset);
      t.rawData = buf;
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      t.externalData = [];
      checkTensorPayload(t, path, `initializer ${t.name}`);
    }
  } finally {
    for (const h of handles.values()) await h.fh.close();
  }
  return model;
}

function rawBytes(t: TensorProto): Uint8Array | undefined {
  if (t.rawData && t.rawData.length > 0) return t.rawData;
  // Typed-field tensors are re-encoded through the wire format into raw bytes only when large.
  return undefined;
}

/** Write a model file, optionally moving large initializers to an external data file beside it. */
export async function saveModel(model: OnnxModel, path: string, options: SaveModelOptions = {}): Promise<void> {
  if (!options.externalData) {
    await writeFile(path, encodeModel(model));
    return;
  }
  const ext = options.externalData;
  const location = ext.location ?? `${basename(path)}.data`;
  checkLocation(location, path, '(save)');
  const threshold = ext.sizeThreshold ?? 1024;
  const alignment = ext.alignment ?? 4096;
  if (!Number.isInteger(alignment) || alignment < 1) {
    throw new InvalidArgumentError(`alignment must be a positive integer, got ${alignment}`, { details: { field: 'externalData.alignment' } });
  }
  const graph = model.graph as GraphProto | null;
  if (!graph) throw new InvalidArgumentError('the model has no graph', { details: { field: 'graph', file: path } });
  const chunks: Uint8Array[] = [];
  let offset = 0;
  // Shallow copies: the caller's model keeps its inline data.
  const initializer = graph.initializer.map((t) => {
    const raw = rawBytes(t as TensorProto);
    if (!raw || raw.length < threshold || t.dataLocation === EXTERNAL) return t;
    const pad = (alignment - (offset % alignment)) % alignment;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    chunks.push(raw);
    const copy = onnx.TensorProto.create({ ...t, rawData: new Uint8Array(0) } as never) as unknown as TensorProto;
    copy.dataLocation = EXTERNAL;
    copy.externalData = [
      onnx.StringStringEntryProto.create({ key: 'location', value: location }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.length) }),
    ];
    offset += raw.length;
    return copy;
  });
  const out = onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, initializer } as never) } as never) as unknown as OnnxModel;
  await writeFile(join(dirname(path), location), Buffer.concat(chunks));
  await writeFile(path, encodeModel(out));
}

/** A tensor's external_data key/value entries as a record (location, offset, length, checksum). */
export function externalDataEntries(tensor: TensorProto): Record<string, string> {
  return Object.fromEntries(entries(tensor));
}
