// Runs: ask a VisionLanguageModel every unit of every benchmark, in batches, through a prediction
// cache (so a crashed run resumes where it stopped), then score. The manifest says what decided the
// scores; passing an earlier run's manifest as `expectManifest` refuses to run if anything differs.

import {
  CompatibilityError,
  InvalidArgumentError,
  type GenerationOptions,
  type GenerationResult,
  type ProgressCallback,
  type RawImage,
  type VisionLanguageModel,
  type VisionLanguageRequest,
  type VlitWarning,
} from '@vlit/core';
import type { Judge } from '../judge.js';
import type { BenchmarkImage } from '../mc/datasets.js';
import { sha256Hex, stableStringify } from '../sha256.js';
import { VLIT_VERSION } from '../version.js';
import { createMemoryCache, type KeyValueCache } from './cache.js';
import {
  diffManifests,
  evalManifestSchema,
  manifestHash,
  normalizeDecoding,
  type DecodingSettings,
  type EvalManifest,
  type ModelDescription,
} from './manifest.js';
import type { Benchmark, BenchmarkResult, EvalUnit, Prediction } from './types.js';

/** Loads a benchmark image (a path or inline bytes) into pixels; see `createImageLoader`. */
export type ImageLoader = (image: BenchmarkImage) => Promise<RawImage>;

/** Options for `evaluate`. */
export interface EvaluateOptions {
  model: VisionLanguageModel;
  benchmarks: readonly Benchmark[];
  /** Needed when any item has images. */
  loadImage?: ImageLoader;
  /** Run label for reports, e.g. `LLaVA / review data` (default: the model id). */
  name?: string;
  /** Files, tokenizer, template and preprocessing of the model, for the manifest. */
  describeModel?: ModelDescription;
  /** Decoding settings for every generation (default: `expectManifest.decoding`, else greedy defaults of the model). */
  decoding?: DecodingSettings;
  /** Judge for multiple-choice answers the extraction cascade cannot read. */
  judge?: Judge;
  /**
   * Units run concurrently and written to the cache together (default 8). Generate-mode units of one
   * batch go to the model as a single `generateBatch` call when the model has one (one batched
   * generation on the model, each unit with the result it gets alone); otherwise they are `generate` calls.
   */
  batchSize?: number;
  /** Prediction cache (default: in memory). Use `openPredictionCache` from `@vlit/eval/node` to survive crashes. */
  cache?: KeyValueCache;
  /** A manifest from an earlier run: evaluation refuses to start unless this run's manifest equals it. */
  expectManifest?: EvalManifest;
  /** `throw` (default): a failed model call stops the run (completed batches stay cached). `record`: it counts as wrong and is reported. */
  onModelError?: 'throw' | 'record';
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Counts of model calls in a run. */
export interface RunStats {
  units: number;
  fromCache: number;
  computed: number;
  failed: number;
}

/** The result of `evaluate`: scores, manifest and counts (the JSON report holds a list of these). */
export interface EvalRun {
  format: 'vlit-eval-run/1';
  name: string;
  model: string;
  manifest: EvalManifest;
  manifestHash: string;
  benchmarks: BenchmarkResult[];
  stats: RunStats;
  warnings: VlitWarning[];
}

/** Build the manifest a run would write, without running anything. */
export function buildManifest(
  options: Pick<EvaluateOptions, 'model' | 'benchmarks' | 'describeModel' | 'decoding' | 'judge' | 'expectManifest'>,
): EvalManifest {
  const d = options.describeModel ?? {};
  const manifest: EvalManifest = {
    format: 'vlit-eval-manifest/1',
    vlitVersion: VLIT_VERSION,
    model: { id: d.id ?? options.model.id, files: { ...(d.files ?? {}) } },
    tokenizer: d.tokenizer ?? null,
    template: d.template ?? null,
    preprocessing: d.preprocessing ? (JSON.parse(stableStringify(d.preprocessing)) as Record<string, unknown>) : null,
    decoding: normalizeDecoding(options.decoding ?? options.expectManifest?.decoding),
    judge: options.judge ? (JSON.parse(stableStringify({ id: options.judge.id, ...options.judge.settings })) as Record<string, unknown>) : null,
    benchmarks: options.benchmarks.map((b) => b.describe()),
  };
  return evalManifestSchema.parse(manifest);
}

function imageKey(image: BenchmarkImage): string {
  return typeof image === 'string' ? `path:${image}` : `bytes:${sha256Hex(image.bytes)}`;
}

function toGenerationOptions(decoding: DecodingSettings, signal: AbortSignal | undefined): GenerationOptions {
  const out: GenerationOptions = { ...decoding };
  if (decoding.stop) out.stop = [...decoding.stop];
  if (signal) out.signal = signal;
  return out;
}

/** Evaluate a model on benchmarks; see `EvaluateOptions`. */
export async function evaluate(options: EvaluateOptions): Promise<EvalRun> {
  const { model } = options;
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InvalidArgumentError(`batchSize must be a positive integer, got ${batchSize}`, { details: { field: 'batchSize' } });
  const ids = new Set<string>();
  for (const b of options.benchmarks) {
    if (ids.has(b.id)) throw new InvalidArgumentError(`two benchmarks share the id ${b.id}`, { details: { field: 'benchmarks' } });
    ids.add(b.id);
  }
  const manifest = buildManifest(options);
  if (options.expectManifest) {
    const expected = evalManifestSchema.parse(options.expectManifest);
    const diffs = diffManifests(expected, manifest);
    if (diffs.length) {
      throw new CompatibilityError(`this run's manifest differs from the expected one at ${diffs.join(', ')}`, {
        details: { field: diffs[0], left: 'expected manifest', right: 'this run', differences: diffs },
      });
    }
  }
  const cache = options.cache ?? createMemoryCache();
  const warnings: VlitWarning[] = [];
  const generation = toGenerationOptions(manifest.decoding, options.signal);
  // Everything about the model that decides its outputs; benchmark content enters through each unit.
  const modelKey = sha256Hex(
    stableStringify({
      vlit: manifest.vlitVersion,
      model: manifest.model,
      tokenizer: manifest.tokenizer,
      template: manifest.template,
      preprocessing: manifest.preprocessing,
      decoding: manifest.decoding,
    }),
  );

  type Job = { benchmark: number; unit: EvalUnit; cacheKey: string };
  const perBenchmark: Array<Map<string, Prediction>> = options.benchmarks.map(() => new Map());
  const jobs: Job[] = [];
  options.benchmarks.forEach((b, bi) => {
    const seen = new Set<string>();
    for (const unit of b.units()) {
      if (seen.has(unit.key)) throw new InvalidArgumentError(`benchmark ${b.id} has two units keyed ${unit.key}`, { details: { record: unit.key } });
      seen.add(unit.key);
      const content = { mode: unit.mode, messages: unit.messages, images: unit.images.map(imageKey), candidates: unit.candidates ?? null };
      jobs.push({ benchmark: bi, unit, cacheKey: sha256Hex(`${modelKey}\n${stableStringify(content)}`) });
    }
  });

  const stats: RunStats = { units: jobs.length, fromCache: 0, computed: 0, failed: 0 };
  const pending: Job[] = [];
  for (const job of jobs) {
    const hit = (await cache.get(job.cacheKey)) as Prediction | undefined;
    if (hit && hit.error === undefined) {
      perBenchmark[job.benchmark].set(job.unit.key, hit);
      stats.fromCache++;
    } else pending.push(job);
  }
  const report = () =>
    options.onProgress?.({
      stage: 'predict',
      done: stats.fromCache + stats.computed + stats.failed,
      total: jobs.length,
      message: `${stats.fromCache} from cache`,
    });
  report();

  for (let start = 0; start < pending.length; start += batchSize) {
    if (options.signal?.aborted) throw options.signal.reason;
    const batch = pending.slice(start, start + batchSize);
    const images = new Map<string, Promise<RawImage>>();
    const load = (image: BenchmarkImage): Promise<RawImage> => {
      const key = imageKey(image);
      let p = images.get(key);
      if (!p) {
        if (!options.loadImage) throw new InvalidArgumentError('benchmark items have images but no loadImage was given', { details: { field: 'loadImage' } });
        p = options.loadImage(image);
        images.set(key, p);
      }
      return p;
    };
    const requestOf = async (job: Job): Promise<VisionLanguageRequest> => ({
      messages: job.unit.messages,
      images: await Promise.all(job.unit.images.map(load)),
    });
    // Generate-mode units of this batch as one batched model call, when the model offers one.
    const generateJobs = batch.filter((job) => job.unit.mode !== 'score');
    const batched = new Map<Job, Promise<Prediction>>();
    if (model.generateBatch && generateJobs.length > 1) {
      type Loaded = { job: Job; request: VisionLanguageRequest } | { job: Job; reason: unknown };
      const requests = generateJobs.map(
        (job): Promise<Loaded> =>
          requestOf(job).then(
            (request) => ({ job, request }),
            (reason: unknown) => ({ job, reason }),
          ),
      );
      const run = Promise.all(requests).then(async (loaded) => {
        const ok = loaded.filter((l): l is Extract<Loaded, { request: VisionLanguageRequest }> => 'request' in l);
        const results = await model.generateBatch!(ok.map((l) => ({ request: l.request, options: generation })));
        if (results.length !== ok.length) {
          throw new CompatibilityError(`model ${model.id} returned ${results.length} results for a batch of ${ok.length} requests`, {
            details: { left: model.id, field: 'generateBatch' },
          });
        }
        const byJob = new Map<Job, PromiseSettledResult<GenerationResult>>();
        for (const l of loaded) if ('reason' in l) byJob.set(l.job, { status: 'rejected', reason: l.reason });
        ok.forEach((l, k) => byJob.set(l.job, results[k]));
        return byJob;
      });
      for (const job of generateJobs) {
        batched.set(
          job,
          run.then((byJob) => {
            const r = byJob.get(job)!;
            if (r.status === 'rejected') throw r.reason;
            return { text: r.value.text, finishReason: r.value.finishReason };
          }),
        );
      }
    }
    const settled = await Promise.allSettled(
      batch.map(async (job): Promise<Prediction> => {
        const pending = batched.get(job);
        if (pending) return pending;
        const request = await requestOf(job);
        if (job.unit.mode === 'score') {
          const scores = await model.score(request, job.unit.candidates ?? []);
          if (scores.length !== (job.unit.candidates ?? []).length) {
            throw new CompatibilityError(`model ${model.id} returned ${scores.length} scores for ${job.unit.candidates?.length} candidates`, {
              details: { left: model.id, right: options.benchmarks[job.benchmark].id, record: job.unit.key },
            });
          }
          return { scores: scores.map((s) => ({ logLikelihood: s.logLikelihood, tokens: s.tokens })) };
        }
        const out = await model.generate(request, generation);
        return { text: out.text, finishReason: out.finishReason };
      }),
    );
    let firstError: unknown;
    for (let i = 0; i < batch.length; i++) {
      const job = batch[i];
      const s = settled[i];
      if (s.status === 'fulfilled') {
        await cache.set(job.cacheKey, s.value);
        perBenchmark[job.benchmark].set(job.unit.key, s.value);
        stats.computed++;
      } else {
        stats.failed++;
        firstError ??= s.reason;
        const message = s.reason instanceof Error ? s.reason.message : String(s.reason);
        perBenchmark[job.benchmark].set(job.unit.key, { error: message });
        warnings.push({
          code: 'VLIT_W_MODEL_CALL_FAILED',
          message: `model call failed for ${job.unit.key}: ${message}`,
          details: { benchmark: options.benchmarks[job.benchmark].id, record: job.unit.key },
        });
      }
    }
    report();
    // Successful units of this batch are cached before the error surfaces, so a rerun resumes after them.
    if (firstError !== undefined && (options.onModelError ?? 'throw') === 'throw') throw firstError;
  }

  const results: BenchmarkResult[] = [];
  for (let bi = 0; bi < options.benchmarks.length; bi++) {
    options.onProgress?.({ stage: 'score', done: bi, total: options.benchmarks.length, message: options.benchmarks[bi].id });
    results.push(await options.benchmarks[bi].score(perBenchmark[bi], { judge: options.judge }));
  }
  options.onProgress?.({ stage: 'score', done: options.benchmarks.length, total: options.benchmarks.length });
  return {
    format: 'vlit-eval-run/1',
    name: options.name ?? model.id,
    model: model.id,
    manifest,
    manifestHash: manifestHash(manifest),
    benchmarks: results,
    stats,
    warnings,
  };
}
