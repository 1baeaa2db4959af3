/**
 * Checkpoint folders held in memory: a map of file name -> bytes (files a user picked, or fetched by URL),
 * opened as the same CheckpointFolder that `openCheckpointFolder` gives in Node. Browser-safe: no file system.
 */
import type { CheckpointFolder, CheckpointTensorInfo } from './checkpoint-node.js';

export type { CheckpointFolder, CheckpointTensorInfo } from './checkpoint-node.js';
import { FormatError, InvalidArgumentError, NotFoundError, TensorShapeError } from './errors.js';
import { parseSafetensorsHeader, safetensorsBytesToFloat32, safetensorsHeaderLength } from './safetensors.js';

/** Options of openCheckpointFiles. */
export interface OpenCheckpointFilesOptions {
  /** What errors and `dir` call the folder (a URL or the picked folder's name). Default `<memory>`. */
  name?: string;
}

interface Located extends Omit<CheckpointTensorInfo, 'fileOffset' | 'byteLength'> {
  bufferStart: number;
  begin: number;
  end: number;
}

const INDEX = 'model.safetensors.index.json';
const SINGLE = 'model.safetensors';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPlainName(file: string): boolean {
  return file !== '' && file !== '.' && file !== '..' && !file.includes('/') && !file.includes('\\');
}

/**
 * Open a checkpoint folder from its files in memory: config.json plus model.safetensors, or the shards
 * model.safetensors.index.json lists. Same errors as openCheckpointFolder: a missing config or shard is a
 * NotFoundError naming the file, a bad index a FormatError naming the entry.
 */
export async function openCheckpointFiles(
  files: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>,
  options: OpenCheckpointFilesOptions = {},
): Promise<CheckpointFolder> {
  const dir = options.name ?? '<memory>';
  const byFile = files instanceof Map ? new Map(files) : new Map(Object.entries(files as Record<string, Uint8Array>));
  for (const [file, bytes] of byFile) {
    if (!isPlainName(file))
      throw new InvalidArgumentError(`'${file}' is not a plain file name of the checkpoint folder`, { details: { file, field: 'files' } });
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`file ${file} is not a Uint8Array`, { details: { file, field: 'files' } });
  }
  const where = (file: string): string => `${dir}/${file}`;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const readJson = (file: string, required: boolean): Record<string, unknown> | undefined => {
    const bytes = byFile.get(file);
    if (!bytes) {
      if (required) throw new NotFoundError(`${file} not found in ${dir}`, { details: { file: where(file) } });
      return undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(bytes));
    } catch (cause) {
      throw new FormatError(`${where(file)} is not valid JSON`, { cause, details: { file: where(file) } });
    }
    if (!isPlainObject(value)) throw new FormatError(`${where(file)} does not hold a JSON object`, { details: { file: where(file) } });
    return value;
  };
  const shard = (file: string): Located[] => {
    const bytes = byFile.get(file);
    if (!bytes) throw new NotFoundError(`safetensors file ${file} is missing from ${dir}`, { details: { file: where(file), shard: file } });
    const n = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.byteLength, { file: where(file) });
    const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength, { file: where(file) });
    return header.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      file,
      bufferStart: header.bufferStart,
      begin: t.begin,
      end: t.end,
    }));
  };

  const config = readJson('config.json', true) as Record<string, unknown>;
  const index = readJson(INDEX, false);
  const byName = new Map<string, Located>();
  if (index) {
    const weightMap = index.weight_map;
    if (!isPlainObject(weightMap)) throw new FormatError(`${INDEX} has no weight_map object`, { details: { file: where(INDEX), field: 'weight_map' } });
    const shards: string[] = [];
    for (const [name, file] of Object.entries(weightMap)) {
      if (typeof file !== 'string' || !isPlainName(file)) {
        throw new FormatError(`${INDEX}: weight_map entry for '${name}' is not a file name in the folder`, {
          details: { file: where(INDEX), field: `weight_map.${name}` },
        });
      }
      if (!shards.includes(file)) shards.push(file);
    }
    for (const file of shards) for (const t of shard(file)) if (weightMap[t.name] === file) byName.set(t.name, t);
    for (const [name, file] of Object.entries(weightMap)) {
      if (!byName.has(name)) {
        throw new FormatError(`${INDEX} places tensor '${name}' in ${String(file)}, which does not hold it`, {
          details: { file: where(String(file)), field: name },
        });
      }
    }
  } else {
    if (!byFile.has(SINGLE)) throw new NotFoundError(`${dir} holds neither ${SINGLE} nor ${INDEX}`, { details: { file: where(SINGLE) } });
    for (const t of shard(SINGLE)) byName.set(t.name, t);
  }

  let closed = false;
  const locate = (name: string, expectShape?: readonly number[]): Located => {
    if (closed) throw new InvalidArgumentError(`checkpoint ${dir} was closed`, { details: { file: dir } });
    const t = byName.get(name);
    if (!t) throw new NotFoundError(`checkpoint ${dir} has no tensor '${name}'`, { details: { file: dir, field: name } });
    if (expectShape && (expectShape.length !== t.shape.length || expectShape.some((d, i) => d !== t.shape[i]))) {
      throw new TensorShapeError(`tensor '${name}' in ${t.file} has shape [${t.shape.join(', ')}] but the config implies [${expectShape.join(', ')}]`, {
        details: { file: where(t.file), field: name, shape: t.shape, expected: [...expectShape] },
      });
    }
    return t;
  };
  // A copy starting at offset 0, so float32 views of it are aligned and the caller may keep or change it.
  const bytesOf = (t: Located): Uint8Array => (byFile.get(t.file) as Uint8Array).slice(t.bufferStart + t.begin, t.bufferStart + t.end);
  const float32 = (name: string, expectShape?: readonly number[]): Float32Array => {
    const t = locate(name, expectShape);
    return safetensorsBytesToFloat32(t.dtype, t.shape, bytesOf(t), { file: where(t.file), name });
  };
  return {
    dir,
    config,
    tensorNames: () => [...byName.keys()],
    info(name) {
      const t = byName.get(name);
      return t
        ? { name: t.name, dtype: t.dtype, shape: [...t.shape], file: t.file, fileOffset: t.bufferStart + t.begin, byteLength: t.end - t.begin }
        : undefined;
    },
    async readFloat32(name, expectShape) {
      return float32(name, expectShape);
    },
    readFloat32Sync: float32,
    async readRaw(name) {
      const t = locate(name);
      return { dtype: t.dtype, shape: [...t.shape], bytes: bytesOf(t) };
    },
    async readJson(file) {
      if (!isPlainName(file)) throw new InvalidArgumentError(`'${file}' is not a file name inside the checkpoint folder`, { details: { file } });
      return readJson(file, false);
    },
    async close() {
      closed = true;
    },
  };
}
