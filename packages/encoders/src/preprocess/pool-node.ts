/**
 * Batch preprocessing on every core (Node only): the codec decodes on its own threads, worker
 * threads run the fused resample + crop + normalise kernel, and the main thread only moves bytes.
 * The workers run the very same kernel source as the main thread (the kernel is shipped as text, see
 * fusedKernelSource), so the pool's output is identical to preprocessBatch's.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BackendError, InvalidArgumentError, createTensor, type ImageCodec, type RawImage, type Tensor } from '@vlit/core';
import { readUserFile } from '@vlit/core/node';
import type { ImageProcessorSettings } from './config.js';
import { convertToRgb } from './ops.js';
import { fusedSpec, normalizeTables, preprocessImage } from './pipeline.js';
import { type FusedSpec, fusedKernelSource } from './kernel.js';

/** Options of createPreprocessPool. */
export interface PreprocessPoolOptions {
  /** Decodes images (e.g. `createNodeRuntime().images`). */
  codec: ImageCodec;
  /** Worker threads; default the machine's available parallelism. */
  workers?: number;
  /** Images decoded ahead of the resampling; default 2 per worker + 2. */
  readAhead?: number;
  /** Refuse image files larger than this many bytes; default 256 MiB. */
  maxFileBytes?: number;
}

/** A set of worker threads that turn encoded images into one batched tensor. */
export interface PreprocessPool {
  /** Number of worker threads. */
  readonly workers: number;
  /** Decode (files by path, or bytes) and preprocess into [N, 3, height, width]; every image must give the same size. */
  preprocess(sources: readonly (string | Uint8Array)[], settings: ImageProcessorSettings): Promise<Tensor<'float32'>>;
  /** Stop the worker threads. */
  close(): Promise<void>;
}

interface Job {
  resolve: (out: Float32Array) => void;
  reject: (err: Error) => void;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const kernel = ${fusedKernelSource()};
parentPort.on('message', (m) => {
  try {
    const out = new Float32Array(3 * m.spec.width * m.spec.height);
    kernel.run(m.spec, m.src, m.tables, out, 0);
    parentPort.postMessage({ id: m.id, out }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e) });
  }
});
`;

/** Start a pool of preprocessing worker threads (close it when done). */
export function createPreprocessPool(options: PreprocessPoolOptions): PreprocessPool {
  const n = Math.max(1, Math.floor(options.workers ?? availableParallelism()));
  const readAhead = Math.max(1, options.readAhead ?? 2 * n + 2);
  const maxBytes = options.maxFileBytes ?? 256 * 1024 * 1024;
  const jobs = new Map<number, Job>();
  const load = new Array<number>(n).fill(0);
  let nextId = 0;
  let closed = false;
  const workers = Array.from({ length: n }, (_, w) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (m: { id: number; out?: Float32Array; error?: string }) => {
      const job = jobs.get(m.id);
      if (!job) return;
      jobs.delete(m.id);
      load[w]--;
      if (load[w] === 0) worker.unref();
      if (m.out) job.resolve(m.out);
      else job.reject(new BackendError(`preprocessing worker failed: ${m.error ?? 'unknown error'}`, { details: { worker: w } }));
    });
    worker.on('error', (err) => {
      for (const [id, job] of jobs) {
        jobs.delete(id);
        job.reject(new BackendError(`preprocessing worker stopped: ${err.message}`, { cause: err, details: { worker: w } }));
      }
    });
    return worker;
  });

  const dispatch = (spec: FusedSpec, src: Uint8Array, tables: Float32Array): Promise<Float32Array> =>
    new Promise((resolve, reject) => {
      let w = 0;
      for (let i = 1; i < n; i++) if (load[i] < load[w]) w = i;
      const id = nextId++;
      jobs.set(id, { resolve, reject });
      if (load[w]++ === 0) workers[w].ref();
      workers[w].postMessage({ id, spec, src, tables });
    });

  const decode = async (source: string | Uint8Array, i: number): Promise<RawImage> => {
    if (typeof source === 'string') return options.codec.decode(new Uint8Array(await readUserFile(source, { maxBytes, what: 'image' })), { source });
    return options.codec.decode(source, { source: `image ${i}` });
  };

  return {
    workers: n,
    async preprocess(sources, settings) {
      if (closed) throw new InvalidArgumentError('preprocess pool is closed', { details: { field: 'pool' } });
      if (sources.length === 0) throw new InvalidArgumentError('preprocess pool: no images', { details: { field: 'sources' } });
      const tables = normalizeTables(settings);
      const results: Promise<Float32Array>[] = [];
      let dims: [number, number, number] | undefined;
      const decodes: Promise<RawImage>[] = [];
      const startDecode = (i: number) => {
        const p = decode(sources[i], i);
        p.catch(() => undefined);
        decodes[i] = p;
      };
      for (let i = 0; i < Math.min(readAhead, sources.length); i++) startDecode(i);
      try {
        for (let i = 0; i < sources.length; i++) {
          const image = await decodes[i];
          delete decodes[i];
          const spec = fusedSpec(image, settings);
          let result: Promise<Float32Array>;
          let d: [number, number, number];
          if (spec) {
            d = [3, spec.height, spec.width];
            const rgb = image.channels === 3 ? image : convertToRgb(image);
            result = dispatch(spec, rgb.data, tables);
          } else {
            const x = preprocessImage(image, settings);
            d = [x.dims[0], x.dims[1], x.dims[2]];
            result = Promise.resolve(x.data);
          }
          result.catch(() => undefined);
          dims ??= d;
          if (d[0] !== dims[0] || d[1] !== dims[1] || d[2] !== dims[2]) {
            throw new InvalidArgumentError(
              `preprocess pool: image ${i} becomes ${d.join('x')} but image 0 becomes ${dims.join('x')}; use a fixed size or centre crop to batch`,
              {
                details: { record: i, field: 'sources' },
              },
            );
          }
          results.push(result);
          // Keep the decoders ahead of the workers, but only as far as the results are being collected.
          if (i + readAhead < sources.length) startDecode(i + readAhead);
          if (i >= readAhead) await results[i - readAhead];
        }
        const out = createTensor('float32', [sources.length, ...dims!]);
        const per = dims![0] * dims![1] * dims![2];
        for (let i = 0; i < results.length; i++) out.data.set(await results[i], i * per);
        return out;
      } finally {
        for (const p of decodes) if (p) await p.catch(() => undefined);
      }
    },
    async close() {
      closed = true;
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** Preprocess encoded images (paths or bytes) on every core with a pool that lives for this one call. */
export async function preprocessFiles(
  sources: readonly (string | Uint8Array)[],
  settings: ImageProcessorSettings,
  options: PreprocessPoolOptions,
): Promise<Tensor<'float32'>> {
  const pool = createPreprocessPool({ ...options, workers: Math.min(options.workers ?? availableParallelism(), Math.max(1, sources.length)) });
  try {
    return await pool.preprocess(sources, settings);
  } finally {
    await pool.close();
  }
}
