/**
 * Node-only generation: a resumable Self-Instruct job over append-only JSONL files, and a file cache.
 * @packageDocumentation
 */
import { BackendError, InvalidArgumentError, isVlitError, ValidationError, type ProgressCallback, type VlitRecord, type VlitWarning } from '@vlit/core';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imageAnnotationsSchema, type ImageAnnotations, type ImageAnnotationsInput } from '../annotations.js';
import { createChatCompletionsClient, type ChatCompletionsClient, type ChatCompletionsClientOptions } from '@vlit/core/openai';
import {
  createSelfInstructGenerator,
  type GenerationCache,
  type GenerationOutcome,
  type GenerationReject,
  type GenerationUnit,
  type SelfInstructGeneratorOptions,
} from './generator.js';
import { rewriteJobLines, scanJobLines } from './job-files.js';
import { acquireJobLock, JOB_LOCK_FILE } from './job-lock.js';
import { readUserFile, writeFileAtomic } from '@vlit/core/node';

export { acquireJobLock, isProcessAlive, JOB_LOCK_FILE, type AcquireJobLockOptions, type JobLock, type JobLockInfo } from './job-lock.js';

let tempCounter = 0;
/** Largest cached reply read back (a reply is a few KB; anything this big was not written by the cache). */
const MAX_CACHE_ENTRY_BYTES = 16 * 1024 * 1024;

/** Write all of `text`; writeSync may write fewer bytes than asked. */
function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}

/** A GenerationCache of one small JSON file per prompt hash under `dir`, written atomically (temp file + rename). */
export function createFileGenerationCache(dir: string): GenerationCache {
  const pathOf = (key: string): string => {
    if (!/^[0-9a-f]{16,128}$/.test(key)) throw new ValidationError('cache keys are hex prompt hashes', { details: { field: 'key', record: key } });
    return join(dir, key.slice(0, 2), `${key}.json`);
  };
  return {
    async get(key) {
      try {
        // Regular files only, capped: a FIFO or a huge file planted in the cache never wedges the job.
        return (await readUserFile(pathOf(key), { maxBytes: MAX_CACHE_ENTRY_BYTES, what: 'cached reply' })).toString('utf8');
      } catch (error) {
        if (isVlitError(error, 'VLIT_NOT_FOUND')) return undefined;
        throw error;
      }
    },
    async set(key, value) {
      const path = pathOf(key);
      await mkdir(join(dir, key.slice(0, 2)), { recursive: true });
      const temp = `${path}.${process.pid}.${tempCounter++}.tmp`;
      await writeFile(temp, value);
      await rename(temp, path);
    },
  };
}

/** The files of a generation job directory. */
export interface GenerationJobFiles {
  /** Generated records, canonical JSONL, append-only. */
  records: string;
  /** Replies that were not valid conversations (with raw text and reason) and invalid inputs, JSONL. */
  rejects: string;
  /** Ledger of finished unit ids, one JSON line `{ id, status }` each, appended after the output line. */
  doneLog: string;
  /** Reply cache directory (unless disabled). */
  cache?: string;
  /** The exclusive lock a running job holds (`job.lock`: pid, host, start time). */
  lock: string;
}

/** The files a job writes in `outDir`. */
export function generationJobFiles(outDir: string, cacheDir?: string | false): GenerationJobFiles {
  return {
    records: join(outDir, 'records.jsonl'),
    rejects: join(outDir, 'rejects.jsonl'),
    doneLog: join(outDir, 'done.log'),
    lock: join(outDir, JOB_LOCK_FILE),
    ...(cacheDir === false ? {} : { cache: cacheDir ?? join(outDir, 'cache') }),
  };
}

/** Options of runGenerationJob. */
export interface GenerationJobOptions extends Omit<SelfInstructGeneratorOptions, 'client' | 'cache'> {
  /** Images to generate for (validated; invalid ones go to the rejects file). */
  images: Iterable<ImageAnnotationsInput> | AsyncIterable<ImageAnnotationsInput>;
  /** Directory of the job's files; rerunning with the same directory resumes. */
  outDir: string;
  /** Core's client options of the endpoint (a client is built with `maxConcurrency = concurrency` unless set), or a ready client. */
  endpoint?: ChatCompletionsClientOptions;
  client?: ChatCompletionsClient;
  /** Units in flight at once. Default 4. */
  concurrency?: number;
  /** Reply cache directory; `false` disables it. Default `<outDir>/cache`. */
  cacheDir?: string | false;
  /** fsync output and ledger after each unit (survives power loss, slower). Default false: a killed process loses nothing either way. */
  fsync?: boolean;
  onProgress?: ProgressCallback;
  onWarning?: (warning: VlitWarning) => void;
  signal?: AbortSignal;
}

/** What a job run did. */
export interface GenerationJobSummary {
  /** Units of all valid images (and one per invalid image). */
  planned: number;
  /** Units found finished from earlier runs. */
  alreadyDone: number;
  written: number;
  rejected: number;
  /** Units whose requests kept failing; not done, a rerun retries them. */
  failed: number;
  failures: Array<{ id: string; message: string }>;
  warnings: VlitWarning[];
  files: GenerationJobFiles;
}

/**
 * Finished unit ids of a job directory, after repairing what a kill (or an earlier unlocked concurrent
 * run) left behind: partial last lines are cut; an output line repeated for one unit is dropped (the
 * first complete one is kept; a record wins over a reject), so outputs hold each unit once; and the done
 * log is rebuilt to exactly one line per finished unit (its last complete status line wins, a line that
 * is not JSON is dropped, an output missing from the log is logged as `recovered`). Call it only while
 * holding the job's lock.
 */
export async function recoverGenerationJob(files: GenerationJobFiles, warnings: VlitWarning[] = []): Promise<Set<string>> {
  const done = new Set<string>();
  // The outputs are the truth; the ledger is an index of them and is repaired to match.
  for (const file of [files.records, files.rejects]) {
    const drop = new Set<number>();
    for (const { line, value } of await scanJobLines(file, warnings)) {
      const id = (value as { id?: unknown })?.id;
      if (typeof id !== 'string') {
        warnings.push({ code: 'VLIT_W_JOB_LINE', message: 'job output line without a string id', details: { file, record: line } });
        continue;
      }
      if (done.has(id)) drop.add(line);
      else done.add(id);
    }
    if (drop.size) {
      await rewriteJobLines(file, (line) => !drop.has(line));
      warnings.push({
        code: 'VLIT_W_JOB_DEDUPLICATED',
        message: `removed ${drop.size} repeated output line(s) for units already written (left by an earlier run)`,
        details: { file, removed: drop.size },
      });
    }
  }
  const status = new Map<string, unknown>();
  let logLines = 0;
  let lost = 0;
  const before = warnings.length;
  const logged = await scanJobLines(files.doneLog, warnings, { lenient: true });
  const badLines = warnings.slice(before).filter((w) => w.code === 'VLIT_W_JOB_BAD_LINE').length;
  for (const { line, value } of logged) {
    logLines++;
    const id = (value as { id?: unknown })?.id;
    if (typeof id !== 'string') {
      warnings.push({ code: 'VLIT_W_JOB_LINE', message: 'done log line without a string id', details: { file: files.doneLog, record: line } });
      continue;
    }
    if (!done.has(id)) {
      if (!status.has(id)) lost++;
      warnings.push({
        code: 'VLIT_W_JOB_LOST_OUTPUT',
        message: `unit ${id} is logged as done but has no output line; regenerating it`,
        details: { file: files.doneLog, record: id },
      });
    }
    // Deleted and set again so the map's order is the order of each unit's last line.
    status.delete(id);
    status.set(id, (value as { status?: unknown }).status);
  }
  const missing = [...done].filter((id) => !status.has(id));
  const exact = badLines === 0 && missing.length === 0 && lost === 0 && logLines === status.size && status.size === done.size;
  if (!exact) {
    const lines: string[] = [];
    for (const [id, s] of status) if (done.has(id)) lines.push(`${JSON.stringify({ id, status: typeof s === 'string' ? s : 'recovered' })}\n`);
    for (const id of missing) lines.push(`${JSON.stringify({ id, status: 'recovered' })}\n`);
    await writeFileAtomic(files.doneLog, lines.join(''));
    if (missing.length) {
      // Killed after writing the output line but before logging it.
      warnings.push({
        code: 'VLIT_W_JOB_RELOGGED',
        message: `${missing.length} finished unit(s) were missing from the done log`,
        details: { file: files.doneLog },
      });
    }
    const repeated = logLines - status.size;
    if (repeated > 0) {
      warnings.push({
        code: 'VLIT_W_JOB_LOG_DEDUPLICATED',
        message: `removed ${repeated} repeated done-log line(s); one line per unit is kept`,
        details: { file: files.doneLog, removed: repeated },
      });
    }
  }
  return done;
}

/**
 * Run (or resume) a Self-Instruct generation job. Each finished unit is one line in records.jsonl or
 * rejects.jsonl, then one line in done.log. Killed at any point and rerun with the same options, it
 * ends with every unit exactly once: partial last lines are cut, outputs missing from the ledger are
 * relogged, and replies already paid for come from the cache. The job holds `job.lock` in `outDir`
 * while it runs: a second job on the same folder gets ConflictError; a lock left by a dead process is
 * taken over.
 */
export async function runGenerationJob(options: GenerationJobOptions): Promise<GenerationJobSummary> {
  const concurrency = options.concurrency ?? 4;
  const files = generationJobFiles(options.outDir, options.cacheDir);
  await mkdir(options.outDir, { recursive: true });
  const warnings: VlitWarning[] = [];
  const warn = (w: VlitWarning): void => {
    warnings.push(w);
    options.onWarning?.(w);
  };
  const client = options.client ?? (options.endpoint ? createChatCompletionsClient({ maxConcurrency: concurrency, ...options.endpoint }) : undefined);
  if (!client) throw new InvalidArgumentError('runGenerationJob needs an endpoint or a client', { details: { field: 'endpoint' } });
  // One run per folder: a second concurrent run would generate and append every unit again.
  const lock = await acquireJobLock(options.outDir, { onWarning: warn });
  try {
    return await runLockedJob(options, files, client, warnings, warn);
  } finally {
    await lock.release();
  }
}

async function runLockedJob(
  options: GenerationJobOptions,
  files: GenerationJobFiles,
  client: ChatCompletionsClient,
  warnings: VlitWarning[],
  warn: (w: VlitWarning) => void,
): Promise<GenerationJobSummary> {
  const concurrency = options.concurrency ?? 4;
  const recovered: VlitWarning[] = [];
  const done = await recoverGenerationJob(files, recovered);
  recovered.forEach(warn);

  const generator = createSelfInstructGenerator({
    ...options,
    client,
    cache: files.cache ? createFileGenerationCache(files.cache) : undefined,
  });

  const recordsFd = openSync(files.records, 'a');
  const rejectsFd = openSync(files.rejects, 'a');
  const doneFd = openSync(files.doneLog, 'a');
  const summary: GenerationJobSummary = { planned: 0, alreadyDone: 0, written: 0, rejected: 0, failed: 0, failures: [], warnings, files };
  // With an array the work left is known up front; a stream reports progress without a total.
  let total: number | undefined;
  if (Array.isArray(options.images)) {
    const pending = new Set<string>();
    (options.images as ImageAnnotationsInput[]).forEach((input, i) => {
      const parsed = imageAnnotationsSchema.safeParse(input);
      const ids = parsed.success ? generator.units(parsed.data).map((u) => u.id) : [`${options.dataset}:invalid-input:${i}`];
      for (const id of ids) if (!done.has(id)) pending.add(id);
    });
    total = pending.size;
  }
  let finished = 0;
  const scheduled = new Set<string>();

  // Synchronous writes: one complete line per write call, never interleaved with another unit's line.
  const finish = (id: string, fd: number, line: string, status: 'record' | 'reject'): void => {
    writeAll(fd, line);
    if (options.fsync) fsyncSync(fd);
    writeAll(doneFd, `${JSON.stringify({ id, status })}\n`);
    if (options.fsync) fsyncSync(doneFd);
    done.add(id);
    if (status === 'record') summary.written++;
    else summary.rejected++;
    finished++;
    options.onProgress?.({ stage: 'self-instruct', done: finished, total, message: id });
  };

  const inFlight = new Set<Promise<void>>();
  const launch = async (unit: GenerationUnit, image: ImageAnnotations): Promise<void> => {
    let outcome: GenerationOutcome;
    try {
      outcome = await generator.generate(unit, image, { signal: options.signal });
    } catch (error) {
      // An abort is not a failure of the unit; the run stops and a rerun picks the unit up.
      if (options.signal?.aborted) return;
      summary.failed++;
      summary.failures.push({ id: unit.id, message: error instanceof Error ? error.message : String(error) });
      return;
    }
    // Outside the try: a failed write (disk full) must stop the job, not be counted as a failed unit.
    if (outcome.status === 'record') finish(unit.id, recordsFd, `${JSON.stringify(outcome.record satisfies VlitRecord)}\n`, 'record');
    else finish(unit.id, rejectsFd, `${JSON.stringify(outcome.reject satisfies GenerationReject)}\n`, 'reject');
  };

  try {
    let index = 0;
    for await (const input of options.images) {
      if (options.signal?.aborted) break;
      const parsed = imageAnnotationsSchema.safeParse(input);
      if (!parsed.success) {
        const id = `${options.dataset}:invalid-input:${index}`;
        summary.planned++;
        if (done.has(id)) summary.alreadyDone++;
        else {
          const issue = parsed.error.issues[0];
          const imageId = (input as { imageId?: unknown })?.imageId;
          finish(
            id,
            rejectsFd,
            `${JSON.stringify({ id, imageId: typeof imageId === 'string' ? imageId : undefined, reason: `invalid image annotations: ${issue.message} (field ${issue.path.map(String).join('.') || '(root)'})`, raw: JSON.stringify(input) ?? 'undefined' })}\n`,
            'reject',
          );
        }
        index++;
        continue;
      }
      index++;
      for (const unit of generator.units(parsed.data)) {
        if (scheduled.has(unit.id)) {
          warn({
            code: 'VLIT_W_DUPLICATE_IMAGE',
            message: `image ${unit.imageId} appears more than once; unit ${unit.id} is generated once`,
            details: { record: unit.imageId, field: 'imageId' },
          });
          continue;
        }
        scheduled.add(unit.id);
        summary.planned++;
        if (done.has(unit.id)) {
          summary.alreadyDone++;
          continue;
        }
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        const p: Promise<void> = launch(unit, parsed.data).finally(() => inFlight.delete(p));
        // Marked handled here; a write error still rejects the race/all below and ends the job.
        p.catch(() => undefined);
        inFlight.add(p);
      }
    }
    await Promise.all(inFlight);
    if (options.signal?.aborted) throw options.signal.reason ?? new BackendError('generation job aborted', { details: { file: files.records } });
  } finally {
    closeSync(recordsFd);
    closeSync(rejectsFd);
    closeSync(doneFd);
  }
  return summary;
}
