/**
 * The parallel `convertFile`: the calling thread reads the file and finds where each record starts
 * and ends; worker threads decode, check and encode batches of records (and the calling thread too,
 * when every worker has enough queued); the calling thread writes their text in file order. The
 * output, the rejects, the warnings and the counts are the same as converting on one thread (each
 * batch is converted with a guess of the writer's counts at its start, and shifted on commit; a batch
 * whose text depends on a wrong guess, or that needs the calling thread to throw, is converted again
 * there).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { RecordDialect } from './codec.js';
import { dialectSpec, type DialectSpec } from './dialects/spec.js';
import {
  JsonLinesScanner,
  JsonValueScanner,
  peekFirstByte,
  settleCaptures,
  DEFAULT_MAX_JSON_DEPTH,
  type RawCapture,
  type RawLine,
  type JsonLineItem,
} from './json-stream.js';
import { packedCount, packedGroups, packRecords, unpackRecords, type PackedBatch, type UnpackContext } from './packed-batch.js';
import { convertPacked, GROUP_BYTES, workerState, type BatchBase, type BatchResult, type WorkerSetup } from './parallel-protocol.js';
import {
  detectContainer,
  headerToRawItem,
  lineToRawItem,
  recordPattern,
  resolveDialect,
  SCAN_SLICE,
  startConversion,
  type ConversionStats,
  type ConvertOptions,
  type DialectName,
  type RawItem,
} from './records.js';
import { byteChunks, type ByteSource } from './source.js';

/**
 * Slices of a read chunk scanned into one batch for a worker (4 x 64 KiB: a few hundred to a few
 * thousand records). The scanner is pushed the same 64 KiB slices as on one thread, so it fails (a
 * value over `maxValueBytes`, a broken structure) at the same point, with the same records before it.
 */
const SLICES_PER_BATCH = 4;
/**
 * A worker's young generation in MB (V8's default grows to 48 MB): a worker converts 64 KiB of records
 * at a time, whose garbage dies young, so a smaller nursery costs no time and keeps peak RSS lower.
 */
const WORKER_YOUNG_MB = 16;
/** Batches queued on each worker; past that, the calling thread converts the next batch itself. */
const WORKER_DEPTH = 2;
/** Files smaller than this convert on the calling thread by default: starting workers costs more than they save. */
export const PARALLEL_MIN_BYTES = 8 * 1024 * 1024;
/** Target dialects whose encoding depends on a record's position among those written (default ids like `openai-<n>`). */
const POSITIONAL_TARGETS: ReadonlySet<DialectSpec['kind']> = new Set(['openai', 'review', 'sharegpt', 'alpaca']);

/** The worker script: beside the bundle in dist/, or the built one when running from source. */
function workerScript(): URL | undefined {
  for (const candidate of ['./convert-worker.js', '../../dist/convert-worker.js']) {
    try {
      const url = new URL(candidate, import.meta.url);
      if (existsSync(fileURLToPath(url))) return url;
    } catch {
      // not loaded from a file (a bundle, a CommonJS build): no worker script
    }
  }
  return undefined;
}

/** Default worker count: one per core besides the calling thread's (which converts too), up to 3; none on one core. */
export function defaultConvertWorkers(): number {
  return Math.min(Math.max(0, availableParallelism() - 1), 3);
}

/** How a conversion can run on workers, or undefined when it cannot (dialects built from code, no worker script). */
export interface ParallelPlan {
  workers: number;
  from: DialectSpec;
  to: DialectSpec;
  script: URL;
}

/**
 * Whether (and on how many workers, at most one per core) `from` -> `to` can convert in parallel. Not with a `maxDepth`
 * raised past the default: how deep a record can go before a stack overflow rejects it depends on the
 * thread's stack, and workers' stacks differ from the calling thread's.
 */
export function parallelPlan(
  from: RecordDialect | DialectName,
  to: RecordDialect | DialectName,
  workers: number,
  options: { maxDepth?: number } = {},
): ParallelPlan | undefined {
  if (!(workers >= 1) || (options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH) > DEFAULT_MAX_JSON_DEPTH) return undefined;
  const fromSpec = dialectSpec(resolveDialect(from));
  const toSpec = dialectSpec(resolveDialect(to));
  const script = workerScript();
  if (!fromSpec || !toSpec || !script) return undefined;
  return { workers: Math.min(Math.floor(workers), availableParallelism()), from: fromSpec, to: toSpec, script };
}

interface Job {
  resolve(result: BatchResult): void;
  reject(err: Error): void;
  worker: number;
}

type Answer = { id: number; result?: BatchResult; error?: string };

/**
 * Worker threads set up for one conversion; a job on a worker that dies fails (and is converted again on
 * the calling thread). Each worker answers on its own port, which `poll` reads without waiting: the
 * calling thread learns of finished batches between two of its own, not only when it next awaits.
 */
class ConvertPool {
  private readonly workers: (Worker | undefined)[] = [];
  private readonly ports: (MessagePort | undefined)[] = [];
  private readonly load: number[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;

  constructor(n: number, script: URL, setup: WorkerSetup) {
    for (let w = 0; w < n; w++) {
      let worker: Worker;
      try {
        worker = new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
      } catch {
        continue;
      }
      const { port1: answers, port2 } = new MessageChannel();
      try {
        worker.postMessage({ setup, answers: port2 }, [port2]);
      } catch {
        // a setup that cannot be sent: no worker, rather than one left running
        answers.close();
        void worker.terminate();
        continue;
      }
      this.workers[w] = worker;
      this.ports[w] = answers;
      this.load[w] = 0;
      answers.on('message', (m: Answer) => this.answer(w, m));
      worker.on('message', (m: Answer) => this.answer(w, m)); // a worker sent a batch before its setup answers here (an error)
      const died = (err: Error): void => {
        if (this.workers[w] !== worker) return;
        this.workers[w] = undefined;
        for (const [id, job] of this.jobs) {
          if (job.worker !== w) continue;
          this.jobs.delete(id);
          job.reject(err);
        }
      };
      worker.on('error', died);
      worker.on('exit', (code) => died(new Error(`convert worker exited with code ${code}`)));
    }
  }

  private answer(w: number, m: Answer): void {
    const job = this.jobs.get(m.id);
    if (!job) return;
    this.jobs.delete(m.id);
    this.load[w]--;
    if (m.result) job.resolve(m.result);
    else job.reject(new Error(m.error));
  }

  /**
   * Whether fewer than `depth` batches per live worker are unanswered, counting the answers already
   * waiting on the ports (read first when the count says full).
   */
  hasRoom(depth: number): boolean {
    const limit = depth * this.live;
    if (this.jobs.size < limit) return true;
    this.poll();
    return this.jobs.size < limit;
  }

  /** Take in the answers already waiting on the workers' ports (their jobs resolve), without waiting for more. */
  private poll(): void {
    for (let w = 0; w < this.ports.length; w++) {
      const port = this.ports[w];
      if (!port) continue;
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) this.answer(w, m.message as Answer);
    }
  }

  /** Number of live workers. */
  get live(): number {
    return this.workers.filter((w) => w !== undefined).length;
  }

  /** Convert a batch on the least busy live worker; rejects when none is alive. */
  run(batch: PackedBatch, base: BatchBase): Promise<BatchResult> {
    let w = -1;
    for (let i = 0; i < this.workers.length; i++) if (this.workers[i] && (w < 0 || this.load[i] < this.load[w])) w = i;
    if (w < 0) return Promise.reject(new Error('no convert worker is running'));
    const id = this.nextId++;
    this.load[w]++;
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject, worker: w });
      this.workers[w]!.postMessage({ id, batch, base });
    });
  }

  async close(): Promise<void> {
    const live = this.workers.filter((w): w is Worker => w !== undefined);
    this.workers.length = 0;
    for (const port of this.ports) port?.close();
    this.ports.length = 0;
    await Promise.all(live.map((w) => w.terminate()));
  }
}

/** A step of the conversion, committed in file order: a batch on a worker, or items converted on the calling thread (headers, over-long lines). */
type Entry = { kind: 'batch'; batch: PackedBatch; base: BatchBase; result: Promise<BatchResult> } | { kind: 'local'; items: RawItem[] };

/**
 * `convertRecordBatches` with the records decoded, checked and encoded on `plan.workers` worker
 * threads and the calling thread; yields the output in file order (text, and UTF-8 bytes). Same
 * output, rejects, warnings and counts. Workers check images under `root` themselves; the calling
 * thread uses `options.check` (which must check the same).
 */
export async function* convertRecordBatchesInParallel(
  source: ByteSource,
  options: ConvertOptions & { root?: string },
  stats: ConversionStats,
  plan: ParallelPlan,
): AsyncGenerator<(string | Uint8Array)[]> {
  const conversion = startConversion(options, stats);
  const { writer, writeStats, from } = conversion;
  const file = options.file;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const { first, source: bytes } = await peekFirstByte(source);
  if (first === undefined) {
    const closing = conversion.finish();
    if (closing.length) yield closing;
    return;
  }
  let container: 'json' | 'jsonl';
  try {
    container = detectContainer(from, first, conversion.readOptions);
  } catch (err) {
    await bytes.return?.();
    throw err;
  }
  const layout = from.layout;
  const unpack: UnpackContext = { container, layout, file, maxDepth };
  const positional = POSITIONAL_TARGETS.has(plan.to.kind);
  const setup: WorkerSetup = {
    from: plan.from,
    to: plan.to,
    container,
    toContainer: options.toContainer,
    carrier: options.carrier,
    file,
    dataset: options.dataset,
    root: options.root,
    maxDepth,
  };
  // This thread's own share of the batches is converted the way a worker converts its share.
  const here = workerState(setup);
  let pool: ConvertPool | undefined;
  const queue: Entry[] = [];
  const maxInFlight = (WORKER_DEPTH + 1) * plan.workers + 1;
  let index = 0;
  // The writer's counts once every batch sent so far is committed, if all their records are written.
  const predicted: BatchBase = { index: 0, written: 0 };

  const send = (region: Uint8Array, run: (RawCapture | RawLine)[]): void => {
    if (run.length === 0) return;
    const batch = packRecords(region, run, index, container === 'json');
    index += run.length;
    const base = { ...predicted };
    predicted.index += run.length;
    predicted.written += run.length;
    // Every worker has enough queued: this thread converts the batch now, as a worker would.
    const workers = pool!;
    const result = workers.hasRoom(WORKER_DEPTH) ? workers.run(batch, base) : convertPacked(here, batch, base, options.check);
    result.catch(() => undefined); // a failed batch is converted again when committed
    queue.push({ kind: 'batch', batch, base, result });
  };
  /** Split what one slice gave into worker batches and the items the calling thread converts (in order). */
  const enqueue = (region: Uint8Array, found: readonly (RawCapture | RawLine | JsonLineItem)[]): void => {
    let run: (RawCapture | RawLine)[] = [];
    for (const item of found) {
      if ('kind' in item && item.kind !== 'raw') {
        // an over-long JSON Lines line: already an error item
        send(region, run);
        run = [];
        queue.push({ kind: 'local', items: [lineToRawItem(item, index++)] });
      } else if ('selected' in item && !item.selected) {
        // a value beside the records (MIMIC-IT `meta`)
        send(region, run);
        run = [];
        queue.push({ kind: 'local', items: [headerToRawItem(settleCaptures(region, [item], { file, maxDepth })[0])] });
      } else run.push(item as RawCapture | RawLine);
    }
    send(region, run);
  };
  const convertHere = async (items: RawItem[]): Promise<string[]> => {
    const parts: string[] = [];
    await conversion.convert(items, parts);
    return parts;
  };
  const convertPackedHere = async (batch: PackedBatch): Promise<string[]> => {
    const parts: string[] = [];
    for (const [start, end] of packedGroups(batch, GROUP_BYTES)) await conversion.convert(unpackRecords(batch, unpack, start, end), parts);
    return parts;
  };
  /** Commit an entry; for a batch, later batches' guesses take in how far its records really moved the writer's counts. */
  const commit = async (entry: Entry): Promise<(string | Uint8Array)[]> => {
    if (entry.kind === 'local') return convertHere(entry.items);
    const index0 = writer.index;
    const written0 = writeStats.written;
    const parts = await commitBatch(entry);
    const count = packedCount(entry.batch);
    predicted.index += writer.index - index0 - count;
    predicted.written += writeStats.written - written0 - count;
    return parts;
  };
  const commitBatch = async (entry: Extract<Entry, { kind: 'batch' }>): Promise<(string | Uint8Array)[]> => {
    const result = await entry.result.catch(() => undefined);
    const dIndex = writer.index - entry.base.index;
    const dWritten = writeStats.written - entry.base.written;
    const redo =
      !result ||
      ((dIndex !== 0 || dWritten !== 0) && positional) ||
      (!options.onReject && result.events.some((e) => 'reject' in e)) ||
      (writer.keys !== undefined && result.keys!.some((k) => writer.keys!.has(k)));
    if (redo) return convertPackedHere(entry.batch);
    // The counts the worker assumed were off by the records rejected in batches before it: shift the indices it reported.
    for (const e of result.events) {
      if ('warning' in e) {
        if (dWritten !== 0 && typeof e.warning.details?.index === 'number') e.warning.details.index += dWritten;
        writeStats.warnings++;
        options.onWarning?.(e.warning);
      } else {
        if (e.write) {
          e.reject.index += dIndex;
          writeStats.rejected++;
        }
        conversion.reject(e.reject);
      }
    }
    stats.read += result.read;
    writer.index += result.attempts;
    writeStats.written += result.written;
    if (writer.keys) for (const k of result.keys!) writer.keys.add(k);
    stats.written = writeStats.written;
    stats.warnings = writeStats.warnings;
    return result.written > 0 ? [writer.prefix(), result.bytes] : [];
  };

  try {
    pool = new ConvertPool(plan.workers, plan.script, setup);
    const scanner =
      container === 'jsonl'
        ? new JsonLinesScanner({ file, maxValueBytes: options.maxValueBytes, maxDepth })
        : new JsonValueScanner([recordPattern(layout)], { file, maxValueBytes: options.maxValueBytes, maxDepth });
    // A scanner failure (a broken structure, a value over maxValueBytes) stops the conversion, as on one
    // thread, after the records of the slices before it are committed.
    let broken: { error: unknown } | undefined;
    let found: (RawCapture | RawLine | JsonLineItem)[] = [];
    const flush = (region: Uint8Array): void => {
      if (found.length) enqueue(region, found);
      found = [];
    };
    reading: for await (const chunk of byteChunks(bytes)) {
      for (let at = 0, slices = 1; at < chunk.length; at += SCAN_SLICE, slices++) {
        const slice = chunk.subarray(at, at + SCAN_SLICE);
        let got: (RawCapture | RawLine | JsonLineItem)[];
        try {
          got = scanner.pushRaw(slice);
        } catch (error) {
          broken = { error };
          flush(chunk);
          break reading;
        }
        // where each value lies in the chunk (the scanner counts from the slice's start)
        for (const item of got) {
          if ('start' in item && item.start >= 0) item.start += at;
          found.push(item);
        }
        if (slices % SLICES_PER_BATCH === 0 || at + SCAN_SLICE >= chunk.length) flush(chunk);
        while (queue.length > maxInFlight) {
          const parts = await commit(queue.shift()!);
          if (parts.length) yield parts;
        }
      }
    }
    if (!broken) {
      try {
        found = scanner.endRaw();
        flush(new Uint8Array(0));
      } catch (error) {
        broken = { error };
      }
    }
    while (queue.length) {
      const parts = await commit(queue.shift()!);
      if (parts.length) yield parts;
    }
    if (broken) throw broken.error;
    const closing = conversion.finish();
    if (closing.length) yield closing;
  } finally {
    await pool?.close();
  }
}
