/**
 * Hugging Face checkpoint folders (config.json + model.safetensors, or shards listed by
 * model.safetensors.index.json), read lazily through file handles and written as transformers writes them.
 */
import { readSync } from 'node:fs';
import { open, readFile, readdir, mkdir, rm, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { FormatError, InvalidArgumentError, NotFoundError, TensorShapeError } from './errors.js';
import { writeFileAtomic } from './node-files.js';
import {
  encodeSafetensorsTensor,
  parseSafetensorsHeader,
  safetensorsBytesToFloat32,
  safetensorsHeaderLength,
  serializeSafetensors,
  type SafetensorsDType,
  type SafetensorsRawTensor,
  coreToSafetensorsDType,
} from './safetensors.js';
import { assertTensor, typedArrayToBytes, type Tensor } from './tensor.js';

/** Where one tensor of a checkpoint folder lives and what it holds. */
export interface CheckpointTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** The safetensors file (relative to the folder) that holds it. */
  file: string;
  /** Where its bytes start in that file (header included), and how many there are: for readers that map the file themselves. */
  fileOffset: number;
  byteLength: number;
}

/** An open checkpoint folder: its config, the index of its tensors, and lazy reads of each tensor. */
export interface CheckpointFolder {
  readonly dir: string;
  /** config.json, parsed. */
  readonly config: Record<string, unknown>;
  /** Every tensor name, in the order the files list them. */
  tensorNames(): string[];
  /** Where a tensor lives, or undefined when the folder has none by that name. */
  info(name: string): CheckpointTensorInfo | undefined;
  /** Values as float32 (F32/F16/BF16/F64 converted); with expectShape, a mismatch is a TensorShapeError naming the tensor and both shapes; a missing tensor is NotFoundError naming it and the folder. */
  readFloat32(name: string, expectShape?: readonly number[]): Promise<Float32Array>;
  /** readFloat32 done synchronously (for graph builders that pull weights one at a time, so only one is in memory at once). */
  readFloat32Sync(name: string, expectShape?: readonly number[]): Float32Array;
  /** The tensor's raw little-endian bytes in its stored dtype (for copying a tensor unchanged). */
  readRaw(name: string): Promise<SafetensorsRawTensor>;
  /** Another JSON file of the folder (tokenizer_config.json, preprocessor_config.json, generation_config.json); undefined when absent. */
  readJson(file: string): Promise<Record<string, unknown> | undefined>;
  /** Close the open file handles. */
  close(): Promise<void>;
}

/** The single-file weights name transformers writes. */
export const SAFE_WEIGHTS_NAME = 'model.safetensors';
/** The shard index name transformers writes. */
export const SAFE_WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readJsonFile(file: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      if (!required) return undefined;
      throw new NotFoundError(`${path.basename(file)} not found in ${path.dirname(file)}`, { cause: err, details: { file } });
    }
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new FormatError(`${file} is not valid JSON`, { cause, details: { file } });
  }
  if (!isPlainObject(value)) throw new FormatError(`${file} does not hold a JSON object`, { details: { file } });
  return value;
}

interface Shard {
  file: string;
  handle: FileHandle;
  bufferStart: number;
}

interface Located extends Omit<CheckpointTensorInfo, 'fileOffset' | 'byteLength'> {
  begin: number;
  end: number;
  shard: Shard;
}

async function openShard(dir: string, file: string): Promise<{ shard: Shard; tensors: Located[] }> {
  const full = path.join(dir, file);
  let handle: FileHandle;
  try {
    handle = await open(full, 'r');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new NotFoundError(`safetensors file ${file} is missing from ${dir}`, { cause: err, details: { file: full, shard: file } });
    }
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new InvalidArgumentError(`${full} is not a regular file`, { details: { file: full } });
    const first8 = new Uint8Array(8);
    await handle.read(first8, 0, Math.min(8, st.size), 0);
    const n = safetensorsHeaderLength(first8, st.size, { file: full });
    const headerBytes = new Uint8Array(n);
    await handle.read(headerBytes, 0, n, 8);
    const header = parseSafetensorsHeader(headerBytes, st.size, { file: full });
    const shard: Shard = { file, handle, bufferStart: header.bufferStart };
    const tensors = header.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      file,
      begin: t.begin,
      end: t.end,
      shard,
    }));
    return { shard, tensors };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Open a checkpoint folder: config.json plus model.safetensors, or the shards model.safetensors.index.json
 * lists. Only the headers are read here; each tensor's bytes are read on demand. A missing config or shard
 * is a NotFoundError naming the file.
 */
export async function openCheckpointFolder(dir: string): Promise<CheckpointFolder> {
  const root = path.resolve(dir);
  const config = (await readJsonFile(path.join(root, 'config.json'), true)) as Record<string, unknown>;
  const index = await readJsonFile(path.join(root, SAFE_WEIGHTS_INDEX_NAME), false);
  const shards: Shard[] = [];
  const byName = new Map<string, Located>();
  try {
    if (index) {
      const weightMap = index.weight_map;
      if (!isPlainObject(weightMap)) {
        throw new FormatError(`${SAFE_WEIGHTS_INDEX_NAME} has no weight_map object`, {
          details: { file: path.join(root, SAFE_WEIGHTS_INDEX_NAME), field: 'weight_map' },
        });
      }
      const files: string[] = [];
      for (const [name, file] of Object.entries(weightMap)) {
        if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file === '..') {
          throw new FormatError(`${SAFE_WEIGHTS_INDEX_NAME}: weight_map entry for '${name}' is not a file name in the folder`, {
            details: { file: path.join(root, SAFE_WEIGHTS_INDEX_NAME), field: `weight_map.${name}` },
          });
        }
        if (!files.includes(file)) files.push(file);
      }
      for (const file of files) {
        const { shard, tensors } = await openShard(root, file);
        shards.push(shard);
        for (const t of tensors) if (weightMap[t.name] === file) byName.set(t.name, t);
      }
      for (const [name, file] of Object.entries(weightMap)) {
        if (!byName.has(name)) {
          throw new FormatError(`${SAFE_WEIGHTS_INDEX_NAME} places tensor '${name}' in ${String(file)}, which does not hold it`, {
            details: { file: path.join(root, String(file)), field: name },
          });
        }
      }
    } else {
      let opened: Awaited<ReturnType<typeof openShard>>;
      try {
        opened = await openShard(root, SAFE_WEIGHTS_NAME);
      } catch (err) {
        if (err instanceof NotFoundError) {
          throw new NotFoundError(`${root} holds neither ${SAFE_WEIGHTS_NAME} nor ${SAFE_WEIGHTS_INDEX_NAME}`, {
            cause: err,
            details: { file: path.join(root, SAFE_WEIGHTS_NAME) },
          });
        }
        throw err;
      }
      shards.push(opened.shard);
      for (const t of opened.tensors) byName.set(t.name, t);
    }
  } catch (err) {
    await Promise.all(shards.map((s) => s.handle.close()));
    throw err;
  }

  const locate = (name: string, expectShape?: readonly number[]): Located => {
    const t = byName.get(name);
    if (!t) {
      throw new NotFoundError(`checkpoint ${root} has no tensor '${name}'`, { details: { file: root, field: name } });
    }
    if (expectShape && (expectShape.length !== t.shape.length || expectShape.some((d, i) => d !== t.shape[i]))) {
      throw new TensorShapeError(`tensor '${name}' in ${t.file} has shape [${t.shape.join(', ')}] but the config implies [${expectShape.join(', ')}]`, {
        details: { file: path.join(root, t.file), field: name, shape: t.shape, expected: [...expectShape] },
      });
    }
    return t;
  };
  const readBytes = async (t: Located): Promise<Uint8Array> => {
    // A fresh buffer starts at offset 0, so float32 views of it need no copy.
    const out = new Uint8Array(t.end - t.begin);
    let done = 0;
    while (done < out.byteLength) {
      const { bytesRead } = await t.shard.handle.read(out, done, out.byteLength - done, t.shard.bufferStart + t.begin + done);
      if (bytesRead === 0) {
        throw new FormatError(`${t.file} ended while reading tensor '${t.name}'`, { details: { file: path.join(root, t.file), field: t.name } });
      }
      done += bytesRead;
    }
    return out;
  };

  const readBytesSync = (t: Located): Uint8Array => {
    const out = new Uint8Array(t.end - t.begin);
    let done = 0;
    while (done < out.byteLength) {
      const n = readSync(t.shard.handle.fd, out, done, out.byteLength - done, t.shard.bufferStart + t.begin + done);
      if (n === 0) {
        throw new FormatError(`${t.file} ended while reading tensor '${t.name}'`, { details: { file: path.join(root, t.file), field: t.name } });
      }
      done += n;
    }
    return out;
  };

  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new InvalidArgumentError(`checkpoint ${root} was closed`, { details: { file: root } });
  };
  return {
    dir: root,
    config,
    tensorNames: () => [...byName.keys()],
    info(name) {
      const t = byName.get(name);
      return t
        ? { name: t.name, dtype: t.dtype, shape: [...t.shape], file: t.file, fileOffset: t.shard.bufferStart + t.begin, byteLength: t.end - t.begin }
        : undefined;
    },
    async readFloat32(name, expectShape) {
      assertOpen();
      const t = locate(name, expectShape);
      return safetensorsBytesToFloat32(t.dtype, t.shape, await readBytes(t), { file: path.join(root, t.file), name });
    },
    readFloat32Sync(name, expectShape) {
      assertOpen();
      const t = locate(name, expectShape);
      return safetensorsBytesToFloat32(t.dtype, t.shape, readBytesSync(t), { file: path.join(root, t.file), name });
    },
    async readRaw(name) {
      assertOpen();
      const t = locate(name);
      return { dtype: t.dtype, shape: [...t.shape], bytes: await readBytes(t) };
    },
    async readJson(file) {
      if (path.isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
        throw new InvalidArgumentError(`'${file}' is not a file name inside the checkpoint folder`, { details: { file } });
      }
      return readJsonFile(path.join(root, file), false);
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(shards.map((s) => s.handle.close()));
    },
  };
}

/** Options of writeCheckpointFolder. */
export interface WriteCheckpointFolderOptions {
  /** config.json content; its `dtype` is set to the dtype the floats are written in. */
  config: Record<string, unknown>;
  /** Tensors by Hugging Face name. */
  tensors: Map<string, Tensor> | Record<string, Tensor>;
  /** Split into shards of at most this many bytes (a larger tensor gets a shard of its own), as transformers' max_shard_size. */
  maxShardBytes?: number;
  /** Dtype float tensors are written in. Default F32. Integer tensors keep their own dtype. */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Other files of the folder (tokenizer.json, tokenizer_config.json, generation_config.json, ...), by name. */
  files?: Record<string, string | Uint8Array>;
}

const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

function checkFileName(name: string): void {
  if (name === '' || name.includes('/') || name.includes('\\') || name === '.' || name === '..') {
    throw new InvalidArgumentError(`'${name}' is not a plain file name for the checkpoint folder`, { details: { file: name, field: 'files' } });
  }
}

/** Write config + tensors as model.safetensors, or sharded (model-0000i-of-0000n.safetensors + model.safetensors.index.json as transformers writes it) when maxShardBytes is given; atomic per file; dtype F32 default, F16/BF16 optional. */
export async function writeCheckpointFolder(dir: string, options: WriteCheckpointFolderOptions): Promise<void> {
  const dtype = options.dtype ?? 'F32';
  if (!(dtype in TORCH_DTYPE)) {
    throw new InvalidArgumentError(`dtype must be F32, F16 or BF16, got '${String(dtype)}'`, { details: { field: 'dtype' } });
  }
  if (options.maxShardBytes !== undefined && !(Number.isSafeInteger(options.maxShardBytes) && options.maxShardBytes > 0)) {
    throw new InvalidArgumentError(`maxShardBytes must be a positive integer, got ${String(options.maxShardBytes)}`, {
      details: { field: 'maxShardBytes' },
    });
  }
  if (!isPlainObject(options.config)) throw new InvalidArgumentError('config must be an object', { details: { field: 'config' } });
  for (const name of Object.keys(options.files ?? {})) checkFileName(name);

  const entries = options.tensors instanceof Map ? [...options.tensors.entries()] : Object.entries(options.tensors);
  const isFloat = (t: Tensor) => t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16';
  const sizeOf = (t: Tensor) => t.data.length * (isFloat(t) ? (dtype === 'F32' ? 4 : 2) : t.data.BYTES_PER_ELEMENT);
  // Encoded one shard at a time, so at most one shard's bytes exist besides the caller's tensors.
  const encode = (name: string, t: Tensor): SafetensorsRawTensor => {
    assertTensor(t, name);
    if (isFloat(t)) return encodeSafetensorsTensor(t, dtype);
    return { dtype: coreToSafetensorsDType(t.dtype), shape: [...t.dims], bytes: typedArrayToBytes(t.data) };
  };

  // Shards fill in order; a tensor that does not fit starts the next shard (huggingface_hub's rule).
  const groups: Array<Array<[string, Tensor]>> = [[]];
  let current = 0;
  const max = options.maxShardBytes ?? Number.POSITIVE_INFINITY;
  for (const item of entries) {
    const size = sizeOf(item[1]);
    const last = groups[groups.length - 1];
    if (last.length > 0 && current + size > max) {
      groups.push([item]);
      current = size;
    } else {
      last.push(item);
      current += size;
    }
  }
  const serialize = (group: Array<[string, Tensor]>) => serializeSafetensors(new Map(group.map(([name, t]) => [name, encode(name, t)])), { format: 'pt' });

  await mkdir(dir, { recursive: true });
  const written = new Set<string>();
  if (groups.length === 1) {
    await writeFileAtomic(path.join(dir, SAFE_WEIGHTS_NAME), serialize(groups[0]));
    written.add(SAFE_WEIGHTS_NAME);
  } else {
    const n = groups.length;
    const pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    let totalParameters = 0;
    for (let i = 0; i < n; i++) {
      const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
      for (const [name, t] of groups[i]) {
        weightMap[name] = file;
        totalSize += sizeOf(t);
        totalParameters += t.data.length;
      }
      await writeFileAtomic(path.join(dir, file), serialize(groups[i]));
      written.add(file);
    }
    const sorted = Object.fromEntries(
      Object.keys(weightMap)
        .sort()
        .map((k) => [k, weightMap[k]]),
    );
    const index = { metadata: { total_parameters: totalParameters, total_size: totalSize }, weight_map: sorted };
    await writeFileAtomic(path.join(dir, SAFE_WEIGHTS_INDEX_NAME), `${JSON.stringify(index, null, 2)}\n`);
    written.add(SAFE_WEIGHTS_INDEX_NAME);
  }
  // Weights of an earlier save under the other layout would be read instead of (or mixed with) these.
  for (const name of await readdir(dir)) {
    const stale = name === SAFE_WEIGHTS_NAME || name === SAFE_WEIGHTS_INDEX_NAME || /^model-\d{5}-of-\d{5}\.safetensors$/.test(name);
    if (stale && !written.has(name)) await rm(path.join(dir, name), { force: true });
  }

  const config: Record<string, unknown> = { ...options.config, dtype: TORCH_DTYPE[dtype] };
  delete config.torch_dtype;
  await writeFileAtomic(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  for (const [name, content] of Object.entries(options.files ?? {})) {
    await writeFileAtomic(path.join(dir, name), content);
  }
}
