/**
 * Node-only file helpers of the readers and writers: file sources, atomic file writers with
 * backpressure, symlink-aware dataset-root checks, file-to-file conversion with a rejects file.
 */
import { constants as fsConstants, createWriteStream, type ReadStream, type WriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidArgumentError, LimitExceededError, NotFoundError, PathEscapeError, ValidationError, type VlitRecord } from '@vlit/core';
import { assertDistinctPaths, resolveUnderRoot } from '@vlit/core/node';
import type { ImageAnnotations } from '../annotations.js';
import { imagePath, locateError, parseNative } from './codec.js';
import { readImageAnnotations, type ReadImageAnnotationsOptions } from './coco.js';
import { parseDatasetInfo, type DatasetInfo } from './dialects/sharegpt.js';
import { streamJsonValues } from './json-stream.js';
import { convertRecordBatchesInParallel, defaultConvertWorkers, PARALLEL_MIN_BYTES, parallelPlan } from './parallel.js';
import { checkRelativePath } from './paths.js';
import {
  convertRecordBatches,
  readRecordItems,
  toRejectedRecord,
  writeRecords,
  type ConversionStats,
  type ConvertOptions,
  type ReadRecordsOptions,
  type RejectedRecord,
  type WriteRecordsOptions,
  type WriteStats,
} from './records.js';
import { z } from 'zod';

/** The worker count `convertFile` uses by default on this machine (for files of 8 MiB or more). */
export { defaultConvertWorkers } from './parallel.js';

/** Options of `fileSource`. */
export interface FileSourceOptions {
  /** Bytes per chunk (default 1 MiB). */
  chunkSize?: number;
  /** Receives the number of bytes read so far after each chunk. */
  onBytes?: (bytesRead: number) => void;
  /** Refuse files larger than this many bytes (LimitExceededError), checked before reading. Default: no cap. */
  maxBytes?: number;
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/**
 * A file's bytes as an async iterable of chunks. Only regular files are read: the file is opened
 * without blocking and its open handle checked, so a FIFO, device or folder is an InvalidArgumentError
 * (never a hang), a missing file NotFoundError, a file over `maxBytes` LimitExceededError.
 */
export async function* fileSource(file: string, options: FileSourceOptions = {}): AsyncGenerator<Uint8Array> {
  let handle: FileHandle;
  try {
    handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`file not found: ${file}`, { cause: err, details: { file } });
    if (code === 'EISDIR') throw new InvalidArgumentError(`${file} is a directory, not a file`, { cause: err, details: { file } });
    throw err;
  }
  let stream: ReadStream | undefined;
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device or other special file';
      throw new InvalidArgumentError(`${file} is ${kind}; only regular files are read`, { details: { file } });
    }
    if (options.maxBytes !== undefined && st.size > options.maxBytes) {
      throw new LimitExceededError(`${file} is ${st.size} bytes, over the ${options.maxBytes}-byte limit`, {
        details: { file, size: st.size, maxBytes: options.maxBytes },
      });
    }
    stream = handle.createReadStream({ highWaterMark: options.chunkSize ?? 1024 * 1024, autoClose: false });
    let read = 0;
    for await (const chunk of stream) {
      read += (chunk as Buffer).length;
      options.onBytes?.(read);
      yield chunk as Buffer;
    }
  } finally {
    stream?.destroy();
    await handle.close().catch(() => undefined);
  }
}

function writeChunk(stream: WriteStream, chunk: string | Uint8Array): Promise<void> | undefined {
  if (stream.write(chunk)) return undefined;
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      stream.off('error', onError);
      resolve();
    };
    const onError = (err: Error): void => {
      stream.off('drain', onDrain);
      reject(err);
    };
    stream.once('drain', onDrain);
    stream.once('error', onError);
  });
}

function closeStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
  });
}

/** Bytes gathered before each write of `writeTextFile`. */
const WRITE_BUFFER_BYTES = 1 << 20;
/** Bytes the file stream may hold before a write waits for the disk. */
const STREAM_BYTES = 4 * WRITE_BUFFER_BYTES;
/** Handed-over byte chunks this large (a worker's batch of the parallel `convertFile`) are written as they are, not copied. */
const DIRECT_WRITE_BYTES = 64 * 1024;

/**
 * Write text chunks (or arrays of them) to a file atomically (a temporary file renamed into place),
 * encoding small chunks straight into a 1 MiB byte buffer and waiting for the disk when the stream
 * holds 4 MiB (memory stays bounded). Byte chunks are copied before the next chunk is asked for, so a
 * caller may reuse its buffer.
 */
export async function writeTextFile(
  file: string,
  chunks: AsyncIterable<string | Uint8Array | readonly (string | Uint8Array)[]> | Iterable<string | Uint8Array | readonly (string | Uint8Array)[]>,
): Promise<void> {
  await writeChunksToFile(file, chunks, false);
}

/**
 * `writeTextFile`; with `handOver`, byte chunks of 64 KiB or more are written as they are (the caller
 * never touches them again), not copied.
 */
async function writeChunksToFile(
  file: string,
  chunks: AsyncIterable<string | Uint8Array | readonly (string | Uint8Array)[]> | Iterable<string | Uint8Array | readonly (string | Uint8Array)[]>,
  handOver: boolean,
): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const stream = createWriteStream(temp, { highWaterMark: STREAM_BYTES });
  // The stream's first error, thrown at the next write or at the close: most writes do not wait for
  // 'drain', and an 'error' event with no listener would end the process instead of this call.
  let failed: Error | undefined;
  stream.on('error', (err) => {
    failed ??= err;
  });
  const write = (chunk: string | Uint8Array): Promise<void> | undefined => {
    if (failed) throw failed;
    return writeChunk(stream, chunk);
  };
  let buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  let used = 0;
  const flush = (): Promise<void> | undefined => {
    if (used === 0) return undefined;
    const full = buffer.subarray(0, used);
    buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
    used = 0;
    return write(full);
  };
  const add = async (chunk: string): Promise<void> => {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: a chunk within that bound always fits whole.
    if (chunk.length * 3 > WRITE_BUFFER_BYTES - used) {
      const wait = flush();
      if (wait) await wait;
      if (chunk.length * 3 > WRITE_BUFFER_BYTES) {
        const big = write(chunk);
        if (big) await big;
        return;
      }
    }
    used += buffer.write(chunk, used, 'utf8');
  };
  const addBytes = async (bytes: Uint8Array): Promise<void> => {
    const direct = handOver ? bytes.length >= DIRECT_WRITE_BYTES : bytes.length > WRITE_BUFFER_BYTES;
    if (direct || bytes.length > WRITE_BUFFER_BYTES - used) {
      const wait = flush();
      if (wait) await wait;
      if (direct) {
        // the stream keeps the chunk until it is on disk: a caller's buffer is copied first
        const big = write(handOver ? bytes : Buffer.from(bytes));
        if (big) await big;
        return;
      }
    }
    buffer.set(bytes, used);
    used += bytes.length;
  };
  try {
    for await (const chunk of chunks) {
      if (chunk instanceof Uint8Array) {
        await addBytes(chunk);
        continue;
      }
      if (typeof chunk !== 'string' && chunk.some((piece) => piece instanceof Uint8Array)) {
        for (const piece of chunk) await (typeof piece === 'string' ? add(piece) : addBytes(piece));
        continue;
      }
      // one flat string per array: encoding it is one call, where each small piece would be one call and one flattening
      const text = typeof chunk === 'string' ? chunk : (chunk as readonly string[]).join('');
      if (text.length * 3 <= WRITE_BUFFER_BYTES - used) used += buffer.write(text, used, 'utf8');
      else await add(text);
    }
    const wait = flush();
    if (wait) await wait;
    if (failed) throw failed;
    await closeStream(stream);
    if (failed) throw failed;
    await rename(temp, file);
  } catch (err) {
    stream.destroy();
    await rm(temp, { force: true });
    throw err;
  }
}

/** A rejects file (JSON Lines of RejectedRecord) opened lazily, written as rejects come. */
export class RejectsFile {
  private stream: WriteStream | undefined;
  count = 0;
  constructor(readonly file: string) {}

  /** Append one reject. */
  write = (reject: RejectedRecord): void => {
    this.stream ??= createWriteStream(this.file);
    this.count++;
    this.stream.write(`${JSON.stringify(reject)}\n`);
  };

  /** Flush and close (creates an empty file when there were no rejects). */
  async close(): Promise<void> {
    this.stream ??= createWriteStream(this.file);
    await closeStream(this.stream);
  }
}

/**
 * Check that every image of a record resolves under `root`, following symbolic links (core's
 * `resolveUnderRoot`); throws PathEscapeError naming the field `images.<i>`.
 */
export async function checkRecordImages(record: VlitRecord, root: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < record.images.length; i++) {
    const ref = imagePath(record.images[i]);
    try {
      out.push(await resolveUnderRoot(root, ref));
    } catch (err) {
      if (err instanceof PathEscapeError || (err as { code?: string }).code === 'VLIT_PATH_ESCAPE') {
        const e = err as PathEscapeError;
        throw new PathEscapeError(e.message.replace(/ \(file [^)]*\)$/, ''), {
          cause: e,
          details: { ...e.details, path: ref, file: undefined, field: `images.${i}` },
        });
      }
      throw err;
    }
  }
  return out;
}

/** Options of `readRecordsFile`. */
export interface ReadRecordsFileOptions extends Omit<ReadRecordsOptions, 'file'> {
  /** Dataset root: every image must resolve under it, symbolic links followed. */
  root?: string;
}

/** Stream canonical records out of a file in any dialect; with `root`, images are checked against it. */
export async function* readRecordsFile(file: string, options: ReadRecordsFileOptions): AsyncGenerator<VlitRecord> {
  for await (const item of readRecordItems(fileSource(file), { ...options, file })) {
    if (item.kind === 'reject') {
      if (!options.onReject) throw item.error;
      options.onReject(item.reject);
      continue;
    }
    if (options.root) {
      try {
        await checkRecordImages(item.record, options.root);
      } catch (err) {
        const located = locateError(err, { file, index: item.index, line: item.line, id: item.record.id });
        if (!options.onReject) throw located;
        options.onReject(toRejectedRecord(located, item.text));
        continue;
      }
    }
    yield item.record;
  }
}

/** Write canonical records to a file in any dialect, atomically; returns the counts. */
export async function writeRecordsFile(
  file: string,
  records: AsyncIterable<VlitRecord> | Iterable<VlitRecord>,
  options: WriteRecordsOptions,
): Promise<WriteStats> {
  const stats: WriteStats = { written: 0, rejected: 0, warnings: 0 };
  await writeTextFile(file, writeRecords(records, { ...options, file: options.file ?? file }, stats));
  return stats;
}

/** Options of `convertFile`. */
export interface ConvertFileOptions extends Omit<ConvertOptions, 'file' | 'check' | 'onReject'> {
  input: string;
  output: string;
  /**
   * Worker threads that decode, check and encode records while this thread reads and writes (same
   * output, rejects, warnings and counts as 0). Default: one per core besides this thread's, up to 3
   * (none on one core), for files of 8 MiB or more, else 0; at most one per core. Dialects built with
   * code (a custom `RecordDialect`, image-id functions) and a `maxDepth` raised past the default
   * always convert on this thread.
   */
  workers?: number;
  /** JSON Lines file receiving every bad record; without it the first bad record throws. */
  rejects?: string;
  /** Dataset root: every image must resolve under it, symbolic links followed. */
  root?: string;
  onReject?: (reject: RejectedRecord) => void;
}

/**
 * Convert a file from one dialect to another in constant memory; bad records go to the rejects file.
 * Returns counts that add up: read = written + rejected (`conversionVerdict` judges them: 0 of N
 * written is not ok). Input, output and rejects must be three different files (ConflictError).
 * Progress reports bytes read (`convert`).
 */
export async function convertFile(options: ConvertFileOptions): Promise<ConversionStats> {
  // A rejects or output path that is the input (or each other) would truncate it before it is read.
  await assertDistinctPaths({ input: options.input, output: options.output, rejects: options.rejects });
  const stats: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 };
  const rejects = options.rejects ? new RejectsFile(options.rejects) : undefined;
  const onReject =
    rejects || options.onReject
      ? (r: RejectedRecord): void => {
          rejects?.write(r);
          options.onReject?.(r);
        }
      : undefined;
  let total: number | undefined;
  try {
    total = (await stat(options.input)).size;
  } catch (err) {
    throw new NotFoundError(`file not found: ${options.input}`, { cause: err, details: { file: options.input } });
  }
  let lastReport = 0;
  const source = fileSource(options.input, {
    onBytes: (done) => {
      if (options.onProgress && (done - lastReport >= 16 << 20 || done === total)) {
        lastReport = done;
        options.onProgress({ stage: 'convert', done, total, message: `${stats.read} records` });
      }
    },
  });
  const root = options.root;
  const convertOptions = {
    ...options,
    file: options.input,
    onReject,
    onProgress: undefined,
    check: root ? (r: VlitRecord) => checkRecordImages(r, root).then(() => undefined) : undefined,
  };
  const workers = options.workers ?? (total >= PARALLEL_MIN_BYTES ? defaultConvertWorkers() : 0);
  const plan = parallelPlan(options.from, options.to, workers, { maxDepth: options.maxDepth });
  try {
    // the parallel path yields the workers' bytes, which nothing else holds: written without a copy
    await writeChunksToFile(
      options.output,
      plan ? convertRecordBatchesInParallel(source, convertOptions, stats, plan) : convertRecordBatches(source, convertOptions, stats),
      true,
    );
  } finally {
    await rejects?.close();
  }
  return stats;
}

/** Read LLaMA-Factory's `dataset_info.json`. */
export async function readDatasetInfoFile(file: string): Promise<DatasetInfo> {
  let info: unknown;
  for await (const item of streamJsonValues(fileSource(file), [], { file })) {
    if (item.kind === 'error') throw item.error;
    info = item.value;
  }
  try {
    return parseDatasetInfo(info);
  } catch (err) {
    throw locateError(err, { file, index: 0 });
  }
}

/** Write LLaMA-Factory's `dataset_info.json`. */
export async function writeDatasetInfoFile(file: string, info: DatasetInfo): Promise<void> {
  await writeTextFile(file, [`${JSON.stringify(info, null, 2)}\n`]);
}

/** Paths of annotation files to join (each optional). */
export interface CocoFiles {
  captions?: string;
  instances?: string;
  vqaQuestions?: string;
  vqaAnnotations?: string;
}

/** `readImageAnnotations` over files; with `root`, every image must resolve under it (symlinks followed). */
export async function* readImageAnnotationsFiles(
  files: CocoFiles,
  options: Omit<ReadImageAnnotationsOptions, 'files'> & { root?: string } = {},
): AsyncGenerator<ImageAnnotations> {
  const src = (f: string | undefined) => (f ? fileSource(f) : undefined);
  for await (const image of readImageAnnotations(
    { captions: src(files.captions), instances: src(files.instances), vqaQuestions: src(files.vqaQuestions), vqaAnnotations: src(files.vqaAnnotations) },
    { ...options, files: { ...files } },
  )) {
    if (options.root) {
      try {
        await resolveUnderRoot(options.root, image.file);
      } catch (err) {
        const located = locateError(err, { file: files.captions ?? files.instances ?? files.vqaQuestions, index: -1, id: image.imageId });
        if (!options.onReject) throw located;
        options.onReject(toRejectedRecord(located, JSON.stringify(image)));
        continue;
      }
    }
    yield image;
  }
}

/** Options of `extractMimicItImages`. */
export interface ExtractMimicItImagesOptions {
  /** Path under `outDir` for an image id (default `${id}.jpg`, as the MIMIC-IT dialect expects). */
  imagePath?: (id: string) => string;
  onReject?: (reject: RejectedRecord) => void;
}

const base64Schema = z
  .string()
  .regex(/^[A-Za-z0-9+/=\s]*$/, 'not base64')
  .min(1);

/**
 * Unpack a MIMIC-IT images JSON (`{image id: base64}`) into files under `outDir`, one image in
 * memory at a time. An id whose path would leave `outDir`, or a value that is not base64, is a
 * typed error (or a reject). Returns the counts: read = written + rejected.
 */
export async function extractMimicItImages(
  imagesJson: string,
  outDir: string,
  options: ExtractMimicItImagesOptions = {},
): Promise<{ read: number; written: number; rejected: number }> {
  const toPath = options.imagePath ?? ((id: string) => `${id}.jpg`);
  const counts = { read: 0, written: 0, rejected: 0 };
  await mkdir(outDir, { recursive: true });
  let index = 0;
  for await (const item of streamJsonValues(fileSource(imagesJson), [['*']], { file: imagesJson })) {
    const id = String(item.path[0]);
    const at = index++;
    counts.read++;
    try {
      if (item.kind === 'error') throw item.error;
      const b64 = parseNative(base64Schema, item.value, 'MIMIC-IT image');
      const rel = checkRelativePath(toPath(id), { field: id });
      const target = await resolveUnderRoot(outDir, rel);
      const bytes = Buffer.from(b64, 'base64');
      if (bytes.length === 0) throw new ValidationError('image decodes to zero bytes', { details: { field: id } });
      await writeTextFileBytes(target, bytes);
      counts.written++;
    } catch (err) {
      const located = locateError(err, { file: imagesJson, index: at, id });
      if (!options.onReject) throw located;
      counts.rejected++;
      options.onReject(toRejectedRecord(located, item.text.length > 256 ? `${item.text.slice(0, 256)}...` : item.text));
    }
  }
  return counts;
}

async function writeTextFileBytes(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const stream = createWriteStream(file);
  const wait = stream.write(bytes) ? undefined : new Promise<void>((resolve) => stream.once('drain', () => resolve()));
  if (wait) await wait;
  await closeStream(stream);
}
