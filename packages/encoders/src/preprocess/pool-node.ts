/**
 * Batch preprocessing on every core (Node only): the codec decodes on its own threads, and the fused
 * resample + crop + normalise kernel runs on the calling thread (`workers: 0`, the default on up to 4
 * cores) or on worker threads while the main thread only moves bytes. The workers run the very same
 * kernel source as the main thread (the kernel is shipped as text, see fusedKernelSource), so the
 * pool's output is identical to preprocessBatch's.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BackendError, InvalidArgumentError, createTensor, type ImageCodec, type RawImage, type Tensor } from '@vlit/core';
import { readUserFile } from '@vlit/core/node';
import type { ImageProcessorSettings } from './config.js';
import { convertToRgb } from './ops.js';
import { fusedSpec, normalizeTables, preprocessImage, runFused } from './pipeline.js';
import { type FusedSpec, fusedKernelSource } from './kernel.js';

/** Options of createPreprocessPool. */
export interface PreprocessPoolOptions {
  /** Decodes images (e.g. `createNodeRuntime().images`). */
  codec: ImageCodec;
  /**
   * Worker threads for the resampling kernel. 0 runs it on the calling thread while the codec decodes
   * the next images on its own threads. Default: 0 on up to 4 cores (decoding costs about four times the
   * SIMD kernel, so the calling thread keeps up, and handing images to workers only adds copies), else a
   * quarter of the cores.
   */
  workers?: number;
  /** Images decoded ahead of the resampling (files are read up to 4 times as far ahead); default 2 per worker + 2, at least 4. */
  readAhead?: number;
  /** Refuse image files larger than this many bytes; default 256 MiB. */
  maxFileBytes?: number;
}

/** A set of worker threads that turn encoded images into one batched tensor. */
export interface PreprocessPool {
  /** Number of worker threads (0: the kernel runs on the calling thread). */
  readonly workers: number;
  /** Decode (files by path, or bytes) and preprocess into [N, 3, height, width]; every image must give the same size. */
  preprocess(sources: readonly (string | Uint8Array)[], settings: ImageProcessorSettings): Promise<Tensor<'float32'>>;
  /** Stop the worker threads. */
  close(): Promise<void>;
}

/**
 * Shared memory one job uses: the decoded RGB bytes in, the float32 image out. Slots are reused from
 * job to job (a fresh multi-megabyte buffer per image costs more in page faults than the kernel saves
 * by running on another core), and shared, so nothing is cloned or transferred per image.
 */
interface Slot {
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
}

interface Job {
  /** The worker running it. */
  worker: number;
  slot: Slot;
  resolve: (slot: Slot) => void;
  reject: (err: Error) => void;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const kernel = ${fusedKernelSource()};
let tables;
parentPort.on('message', (m) => {
  try {
    if (m.tables) tables = m.tables;
    const n = 3 * m.spec.width * m.spec.height;
    kernel.run(m.spec, new Uint8Array(m.input, 0, m.length), tables, new Float32Array(m.output, 0, n), 0);
    parentPort.postMessage({ id: m.id });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e) });
  }
});
`;

/** The default number of kernel workers for this machine (see PreprocessPoolOptions.workers). */
function defaultWorkers(): number {
  const cores = availableParallelism();
  return cores <= 4 ? 0 : Math.ceil(cores / 4);
}

/** Round a byte size up so that slightly larger images reuse a slot instead of growing it. */
const slotBytes = (n: number): number => Math.ceil(n / (1 << 20)) * (1 << 20);

/** Start a pool of preprocessing worker threads (close it when done). */
export function createPreprocessPool(options: PreprocessPoolOptions): PreprocessPool {
  const n = Math.max(0, Math.floor(options.workers ?? defaultWorkers()));
  const readAhead = Math.max(1, options.readAhead ?? Math.max(4, 2 * n + 2));
  const maxBytes = options.maxFileBytes ?? 256 * 1024 * 1024;
  const jobs = new Map<number, Job>();
  const load = new Array<number>(n).fill(0);
  // The normalisation tables each worker holds (sent again only when the settings change).
  const workerTables = new Array<Float32Array | undefined>(n);
  // Slots not in use, kept for the next jobs (as many as can be in flight at once; more are dropped).
  const freeSlots: Slot[] = [];
  const giveBack = (slot: Slot): void => {
    if (freeSlots.length < readAhead + n) freeSlots.push(slot);
  };
  let nextId = 0;
  let closed = false;
  const workers: (Worker | undefined)[] = [];
  // Deaths of each worker slot since its worker last answered; a slot whose workers keep dying at once is given up.
  const deaths = new Array<number>(n).fill(0);
  const MAX_DEATHS = 3;
  /** Fail the jobs of worker `w` (or of every worker) with `err`; their slots are free again. */
  const failJobs = (w: number | undefined, err: Error): void => {
    for (const [id, job] of jobs) {
      if (w !== undefined && job.worker !== w) continue;
      jobs.delete(id);
      giveBack(job.slot);
      job.reject(err);
    }
  };
  const spawn = (w: number): void => {
    load[w] = 0;
    workerTables[w] = undefined;
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true });
    } catch {
      workers[w] = undefined;
      return;
    }
    worker.unref();
    workers[w] = worker;
    worker.on('message', (m: { id: number; error?: string }) => {
      deaths[w] = 0;
      const job = jobs.get(m.id);
      if (!job) return;
      jobs.delete(m.id);
      if (--load[w] === 0) worker.unref();
      if (m.error === undefined) job.resolve(job.slot);
      else {
        giveBack(job.slot);
        job.reject(new BackendError(`preprocessing worker failed: ${m.error}`, { details: { worker: w } }));
      }
    });
    // A worker that dies fails its own jobs only and is replaced, so later calls still run.
    const died = (err: Error): void => {
      if (workers[w] !== worker) return;
      workers[w] = undefined;
      failJobs(w, new BackendError(`preprocessing worker stopped: ${err.message}`, { cause: err, details: { worker: w } }));
      if (!closed && ++deaths[w] < MAX_DEATHS) spawn(w);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`exit code ${code}`)));
  };
  for (let w = 0; w < n; w++) spawn(w);

  const takeSlot = (inputBytes: number, outputBytes: number): Slot => {
    const slot = freeSlots.pop() ?? { input: new SharedArrayBuffer(0), output: new SharedArrayBuffer(0) };
    if (slot.input.byteLength < inputBytes) slot.input = new SharedArrayBuffer(slotBytes(inputBytes));
    if (slot.output.byteLength < outputBytes) slot.output = new SharedArrayBuffer(slotBytes(outputBytes));
    return slot;
  };

  /** Run the kernel on a worker; resolves with the slot holding the result (give it back with giveBack). */
  const dispatch = (spec: FusedSpec, src: Uint8Array, tables: Float32Array): Promise<Slot> =>
    new Promise((resolve, reject) => {
      if (closed) {
        reject(new InvalidArgumentError('preprocess pool was closed during the call', { details: { field: 'pool' } }));
        return;
      }
      let w = -1;
      for (let i = 0; i < n; i++) if (workers[i] && (w < 0 || load[i] < load[w])) w = i;
      if (w < 0) {
        reject(
          new BackendError(`no preprocessing worker is running (each of the ${n} died ${MAX_DEATHS} times without answering)`, {
            details: { field: 'workers' },
          }),
        );
        return;
      }
      const worker = workers[w] as Worker;
      const slot = takeSlot(src.byteLength, 12 * spec.width * spec.height);
      new Uint8Array(slot.input, 0, src.byteLength).set(src);
      const id = nextId++;
      jobs.set(id, { worker: w, slot, resolve, reject });
      if (load[w]++ === 0) worker.ref();
      const sendTables = workerTables[w] !== tables;
      workerTables[w] = tables;
      worker.postMessage({ id, spec, input: slot.input, output: slot.output, length: src.byteLength, tables: sendTables ? tables : undefined });
    });

  const read = async (source: string | Uint8Array): Promise<Uint8Array> => {
    if (typeof source !== 'string') return source;
    const b = await readUserFile(source, { maxBytes, what: 'image' });
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  };

  return {
    workers: n,
    async preprocess(sources, settings) {
      if (closed) throw new InvalidArgumentError('preprocess pool is closed', { details: { field: 'pool' } });
      if (sources.length === 0) throw new InvalidArgumentError('preprocess pool: no images', { details: { field: 'sources' } });
      const tables = normalizeTables(settings);
      const results: Promise<void>[] = [];
      let out: Tensor<'float32'> | undefined;
      let per = 0;
      let dims: [number, number, number] | undefined;
      // Files are read up to 4 x readAhead images ahead of the decodes (so at most that many encoded
      // files are held): reads and decodes share the runtime's thread pool, and a read queued behind
      // the decodes would hold up its own decode.
      const reads: Promise<Uint8Array>[] = [];
      const startRead = (i: number) => {
        if (i >= sources.length || i in reads) return;
        const p = read(sources[i]);
        p.catch(() => undefined);
        reads[i] = p;
      };
      const decodes: Promise<RawImage>[] = [];
      const startDecode = (i: number) => {
        const source = sources[i];
        const p = (reads[i] ?? read(source)).then((bytes) => options.codec.decode(bytes, { source: typeof source === 'string' ? source : `image ${i}` }));
        delete reads[i];
        p.catch(() => undefined);
        decodes[i] = p;
        startRead(i + 4 * readAhead);
      };
      for (let i = 0; i < Math.min(5 * readAhead, sources.length); i++) startRead(i);
      for (let i = 0; i < Math.min(readAhead, sources.length); i++) startDecode(i);
      try {
        for (let i = 0; i < sources.length; i++) {
          const image = await decodes[i];
          delete decodes[i];
          // With workers, close() fails their jobs; without, the call itself must notice.
          if (closed) throw new InvalidArgumentError('preprocess pool was closed during the call', { details: { field: 'pool' } });
          const spec = fusedSpec(image, settings);
          let d: [number, number, number];
          let x: Tensor<'float32'> | undefined;
          if (spec) d = [3, spec.height, spec.width];
          else {
            x = preprocessImage(image, settings);
            d = [x.dims[0], x.dims[1], x.dims[2]];
          }
          dims ??= d;
          if (d[0] !== dims[0] || d[1] !== dims[1] || d[2] !== dims[2]) {
            throw new InvalidArgumentError(
              `preprocess pool: image ${i} becomes ${d.join('x')} but image 0 becomes ${dims.join('x')}; use a fixed size or centre crop to batch`,
              {
                details: { record: i, field: 'sources' },
              },
            );
          }
          if (!out) {
            out = createTensor('float32', [sources.length, ...dims]);
            per = dims[0] * dims[1] * dims[2];
          }
          const target = out;
          let result: Promise<void>;
          if (spec && n === 0) {
            runFused(image, spec, settings, target.data, i * per);
            result = Promise.resolve();
          } else if (spec) {
            const rgb = image.channels === 3 ? image : convertToRgb(image);
            result = dispatch(spec, rgb.data, tables).then((slot) => {
              target.data.set(new Float32Array(slot.output, 0, per), i * per);
              giveBack(slot);
            });
          } else {
            target.data.set(x!.data, i * per);
            result = Promise.resolve();
          }
          result.catch(() => undefined);
          results.push(result);
          // Keep the decoders ahead of the workers, but only as far as the results are being collected.
          if (i + readAhead < sources.length) startDecode(i + readAhead);
          if (i >= readAhead) await results[i - readAhead];
        }
        await Promise.all(results);
        return out!;
      } finally {
        for (const p of decodes) if (p) await p.catch(() => undefined);
        for (const p of reads) if (p) await p.catch(() => undefined);
        await Promise.allSettled(results);
      }
    },
    async close() {
      closed = true;
      failJobs(undefined, new InvalidArgumentError('preprocess pool was closed during the call', { details: { field: 'pool' } }));
      freeSlots.length = 0;
      await Promise.all(workers.map((w) => w?.terminate()));
    },
  };
}

/** Preprocess encoded images (paths or bytes) on every core with a pool that lives for this one call. */
export async function preprocessFiles(
  sources: readonly (string | Uint8Array)[],
  settings: ImageProcessorSettings,
  options: PreprocessPoolOptions,
): Promise<Tensor<'float32'>> {
  const pool = createPreprocessPool({ ...options, workers: Math.min(options.workers ?? defaultWorkers(), Math.max(1, sources.length)) });
  try {
    return await pool.preprocess(sources, settings);
  } finally {
    await pool.close();
  }
}
