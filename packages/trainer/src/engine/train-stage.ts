/**
 * The local training engine: runs one recipe stage on an injected runtime (native or web). Per
 * optimiser step it takes `gradientAccumulation` micro-batches from the seeded data order, runs the
 * gradient model, accumulates token-weighted gradients, clips, applies AdamW at the scheduled lr,
 * reports metrics and progress, and checkpoints through an optional store, from which it also resumes
 * exactly. Browser-safe: files are the store's business (`createDirectoryTrainingStore` at `./node`).
 */
import {
  InvalidArgumentError,
  NotFoundError,
  TensorShapeError,
  ValidationError,
  createTensor,
  type InferenceBackend,
  type SessionOptions,
  type Tensor,
} from '@vlit/core';
import type { RunCheckpoint } from '../checkpoint/run-checkpoint.js';
import { createDataOrder, type SampleReject, type TrainingSample } from '../data/order.js';
import { assertFiniteLoss, type MetricsRecord } from '../metrics.js';
import { createGradientAccumulator } from '../optim/accumulate.js';
import { createAdamW } from '../optim/adamw.js';
import { clipGradNorm, totalGradNorm } from '../optim/clip.js';
import { createStageSchedule, recipeStageSchema, stageTotalSteps, type RecipeStage, type RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from '../training/feeds.js';
import { buildTrainingGraph, type TrainingGraph, type TrainingModelParts, type LoraInitialWeights } from '../training/training-graph.js';
import { createTrainingSession, type EvaluationOutput, type TrainingSession } from './session.js';

/** Where a run keeps checkpoints and metrics (a directory in Node: createDirectoryTrainingStore). */
export interface TrainingStore {
  /** The newest complete checkpoint, or null to start fresh. */
  latestCheckpoint(): Promise<RunCheckpoint | null>;
  /** Persist a checkpoint atomically; returns where it went. */
  writeCheckpoint(checkpoint: RunCheckpoint): Promise<string>;
  /** Append one metrics record. */
  writeMetrics(record: MetricsRecord): Promise<void>;
  /** Called once when the stage ends (flush and close files). */
  close?(): Promise<void>;
}

/** Progress of a run. */
export type TrainingProgressEvent =
  | { type: 'start'; totalSteps: number; step: number; resumedFrom: number | null; used: number; rejected: number }
  | { type: 'step'; step: number; totalSteps: number; record: MetricsRecord }
  | { type: 'checkpoint'; step: number; location: string }
  | { type: 'end'; step: number };

/** Options of trainStage. */
export interface TrainStageOptions<S extends TrainingSample> {
  /** The runtime's backend (`runtime.backend` of `@vlit/runtime/node` or `@vlit/runtime/web`). */
  backend: InferenceBackend;
  /** The model's forward graphs (a training graph is built from them), or a graph built already. */
  model: TrainingModelParts | TrainingGraph;
  /** Encoded samples (ids, labels, image spans), as @vlit/templates encodes them. */
  samples: readonly S[];
  /** Features of each image of a sample ([tokens, dim]), from the frozen encoder or the feature cache. */
  imageFeatures: (sample: S, index: number) => readonly Tensor<'float32'>[] | Promise<readonly Tensor<'float32'>[]>;
  /** Index of the stage in its recipe (checkpoints and error fields carry it). Default 0. */
  stageIndex?: number;
  /** Data-order seed (default: the stage's seed, else 0). */
  seed?: number | string;
  /** Id written at padded positions. Default 0. */
  padTokenId?: number;
  /** Batches of similar length (`length`, default) or plain shuffled batches (`none`). */
  bucketing?: 'length' | 'none';
  /** Initial LoRA weights by module (when `model` is parts). */
  loraWeights?: ReadonlyMap<string, LoraInitialWeights>;
  /** Checkpoints, metrics and resume. */
  store?: TrainingStore;
  /** Recorded in checkpoints; a resume refuses a checkpoint of another recipe. Default ''. */
  recipeHash?: string;
  onProgress?: (event: TrainingProgressEvent) => void;
  /** Session options for the backend. */
  session?: SessionOptions;
  /**
   * Periodic evaluation every `evalEvery` steps of the stage (and after the last step): the mean loss
   * over held-out samples (`evalLoss` in the metrics), plus whatever `evaluate` returns (e.g. scores
   * from @vlit/eval, computed with the current weights through `run`).
   */
  evaluation?: TrainingEvaluation<S>;
}

/** Held-out data and an optional scorer for periodic evaluation. */
export interface TrainingEvaluation<S extends TrainingSample> {
  samples: readonly S[];
  imageFeatures: (sample: S, index: number) => readonly Tensor<'float32'>[] | Promise<readonly Tensor<'float32'>[]>;
  /** Extra numeric metrics from the current model (keys must not clash with the record's own). */
  evaluate?: (context: EvaluationContext) => Promise<Record<string, number>>;
}

/** What an evaluation callback can use: the step, and forward passes at the current weights. */
export interface EvaluationContext {
  step: number;
  /** Loss and trained-position logits of a batch of encoded samples (dropout off). */
  run(samples: readonly TrainingSample[], features: readonly (readonly Tensor<'float32'>[])[]): Promise<EvaluationOutput>;
}

/** What a stage run ends with. */
export interface TrainStageResult {
  /** Final value of every parameter (trained tensors and LoRA A/B) by name. */
  weights: Map<string, Tensor<'float32'>>;
  /** Optimiser steps done (total, including those before a resume). */
  steps: number;
  /** Metrics of the steps run by this call. */
  metrics: MetricsRecord[];
  /** Samples left out, with reasons; counts.read = counts.used + counts.rejected. */
  rejects: readonly SampleReject[];
  counts: { read: number; used: number; rejected: number };
  /** Step a resume started from, or null. */
  resumedFrom: number | null;
  graph: TrainingGraph;
}

function isGraph(m: TrainingModelParts | TrainingGraph): m is TrainingGraph {
  return (m as TrainingGraph).gradient !== undefined && (m as TrainingGraph).parameters !== undefined;
}

function parseStage(stage: RecipeStage | RecipeStageInput, stageIndex: number): RecipeStage {
  const parsed = recipeStageSchema.safeParse(stage);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = `stages.${stageIndex}.${issue.path.map(String).join('.')}`;
    throw new ValidationError(`invalid stage: ${field}: ${issue.message}`, { details: { field, issues: parsed.error.issues } });
  }
  return parsed.data;
}

const now = (): number => globalThis.performance.now();

function fnv1a(text: string, h = 0x811c9dc5): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** LoRA dropout seed of micro-batch `micro` of optimiser step `step`: a function of the position only, so a resume draws the same masks. */
function dropoutSeed(base: number, step: number, micro: number): number {
  return fnv1a(`${step}:${micro}`, base) & 0x7fffffff;
}

/**
 * Train one recipe stage locally. Optimiser steps = the stage's maxSteps, else epochs over the data.
 * A NaN or infinite loss stops the run with NonFiniteLossError naming the step; samples that cannot
 * train are rejects (all labels masked, over maxLength) and the counts add up.
 */
export async function trainStage<S extends TrainingSample>(
  stageInput: RecipeStage | RecipeStageInput,
  options: TrainStageOptions<S>,
): Promise<TrainStageResult> {
  const stageIndex = options.stageIndex ?? 0;
  const stage = parseStage(stageInput, stageIndex);
  if (typeof options.imageFeatures !== 'function') {
    throw new InvalidArgumentError('trainStage needs imageFeatures(sample, index)', { details: { field: 'imageFeatures' } });
  }
  const graph = isGraph(options.model)
    ? options.model
    : buildTrainingGraph(options.model, { stage, stageIndex, loraWeights: options.loraWeights, seed: stage.seed ?? options.seed });
  const store = options.store;
  const recipeHash = options.recipeHash ?? '';
  const checkpoint = store ? await store.latestCheckpoint() : null;
  if (checkpoint && checkpoint.stage !== stageIndex) {
    throw new ValidationError(`the latest checkpoint belongs to stage ${checkpoint.stage}, not ${stageIndex}`, {
      details: { field: 'stage', stage: checkpoint.stage },
    });
  }
  const orderOptions = {
    batchSize: stage.batchSize,
    seed: options.seed ?? stage.seed ?? 0,
    maxLength: stage.maxLength,
    bucketing: options.bucketing ?? 'length',
  } as const;
  const order = createDataOrder(options.samples, orderOptions, checkpoint?.data);
  const totalSteps = stageTotalSteps(stage, order.batchesPerEpoch);
  const schedule = createStageSchedule(stage, order.batchesPerEpoch);

  const values = new Map<string, Float32Array>(graph.parameters.map((p) => [p.name, Float32Array.from(p.initial.data)]));
  const adamw = createAdamW(
    graph.parameters.map((p) => ({ name: p.name, data: values.get(p.name) as Float32Array })),
    {
      lr: stage.optimizer.lr,
      betas: stage.optimizer.betas,
      eps: stage.optimizer.eps,
      weightDecay: stage.optimizer.weightDecay,
      noDecay: stage.optimizer.noDecay,
      groups: stage.optimizer.groups,
    },
  );
  let step = 0;
  if (checkpoint) {
    for (const p of graph.parameters) {
      const t = checkpoint.weights.get(p.name);
      if (!t) throw new NotFoundError(`the checkpoint has no tensor '${p.name}'`, { details: { field: p.name } });
      const target = values.get(p.name) as Float32Array;
      if (t.dtype !== 'float32' || t.data.length !== target.length) {
        throw new TensorShapeError(`checkpoint tensor '${p.name}' is ${t.dtype} [${t.dims.join(', ')}], the parameter has ${target.length} float32 elements`, {
          details: { field: p.name },
        });
      }
      target.set(t.data as Float32Array);
    }
    adamw.loadState(checkpoint.optimizer);
    step = checkpoint.step;
  }
  const resumedFrom = checkpoint ? checkpoint.step : null;
  options.onProgress?.({ type: 'start', totalSteps, step, resumedFrom, used: order.counts.used, rejected: order.counts.rejected });

  const sizes = new Map(graph.parameters.map((p) => [p.name, p.initial.data.length]));
  const accumulator = createGradientAccumulator(sizes);
  const session: TrainingSession = await createTrainingSession(options.backend, graph, options.session);
  const metrics: MetricsRecord[] = [];
  const runEval: EvaluationContext['run'] = async (batchSamples, features) => {
    const prepared = prepareTrainingFeeds(graph, batchSamples, features, { padTokenId: options.padTokenId });
    return session.evaluate(prepared.feeds, values);
  };
  const evaluateNow = async (evaluation: TrainingEvaluation<S>, at: number): Promise<Record<string, number>> => {
    let sum = 0;
    let count = 0;
    // Samples with nothing to score would make a NaN loss; they are left out of the mean.
    const usable = evaluation.samples.map((s, i) => [s, i] as const).filter(([s]) => s.labels.some((l) => l !== -100));
    for (let i = 0; i < usable.length; i += stage.batchSize) {
      const chunk = usable.slice(i, i + stage.batchSize);
      const features = await Promise.all(chunk.map(([s, k]) => evaluation.imageFeatures(s, k)));
      const prepared = prepareTrainingFeeds(
        graph,
        chunk.map(([s]) => s),
        features,
        { padTokenId: options.padTokenId },
      );
      if (prepared.trainedTokens === 0) continue;
      const out = await session.evaluate(prepared.feeds, values);
      sum += out.loss * prepared.trainedTokens;
      count += prepared.trainedTokens;
    }
    const extra = evaluation.evaluate ? await evaluation.evaluate({ step: at, run: runEval }) : {};
    return { evalLoss: count ? sum / count : Number.NaN, ...extra };
  };
  const dropoutBase = fnv1a(`lora-dropout:${String(options.seed ?? stage.seed ?? 0)}`);
  try {
    while (step < totalSteps) {
      const started = now();
      accumulator.reset();
      let lossSum = 0;
      let trained = 0;
      let tokens = 0;
      let samples = 0;
      const sampleIndices: number[] = [];
      let epoch = 0;
      for (let m = 0; m < stage.gradientAccumulation; m++) {
        const batch = order.next();
        epoch = batch.epoch + (batch.index + 1) / order.batchesPerEpoch;
        const features = await Promise.all(batch.samples.map((s, i) => options.imageFeatures(s, batch.indices[i])));
        const prepared = prepareTrainingFeeds(graph, batch.samples, features, { padTokenId: options.padTokenId });
        const out = await session.step(prepared.feeds, values, { dropoutSeed: dropoutSeed(dropoutBase, step, m) });
        assertFiniteLoss(out.loss, step + 1, stage.name);
        // Token-weighted: the accumulated step is the mean loss over every trained token of its micro-batches.
        for (const g of out.gradients.values()) for (let i = 0; i < g.length; i++) g[i] *= prepared.trainedTokens;
        accumulator.add(out.gradients);
        lossSum += out.loss * prepared.trainedTokens;
        trained += prepared.trainedTokens;
        tokens += prepared.tokens;
        samples += batch.samples.length;
        sampleIndices.push(...batch.indices);
      }
      const grads = accumulator.result(trained);
      const gradNorm = stage.clipGradNorm === null ? totalGradNorm(grads) : clipGradNorm(grads, { maxNorm: stage.clipGradNorm });
      const lrFactor = schedule.factor(step);
      adamw.step(grads, { lrFactor });
      step++;
      const seconds = Math.max((now() - started) / 1000, 1e-9);
      const record: MetricsRecord = {
        step,
        loss: lossSum / trained,
        lr: stage.optimizer.lr * lrFactor,
        gradNorm,
        tokensPerSecond: tokens / seconds,
        samplesPerSecond: samples / seconds,
        epoch,
        stage: stage.name,
        trainedTokens: trained,
        sampleIndices,
      };
      if (options.evaluation && (step === totalSteps || (stage.evalEvery !== undefined && step % stage.evalEvery === 0))) {
        Object.assign(record, await evaluateNow(options.evaluation, step));
      }
      metrics.push(record);
      if (store) await store.writeMetrics(record);
      options.onProgress?.({ type: 'step', step, totalSteps, record });
      if (store && stage.checkpointEvery !== undefined && (step % stage.checkpointEvery === 0 || step === totalSteps)) {
        const weights = new Map<string, Tensor>();
        for (const p of graph.parameters) weights.set(p.name, createTensor('float32', p.initial.dims, Float32Array.from(values.get(p.name) as Float32Array)));
        const location = await store.writeCheckpoint({
          step,
          stage: stageIndex,
          weights,
          optimizer: adamw.getState(),
          scheduleStep: step,
          data: order.position(),
          rng: null,
          recipeHash,
          extra: { loss: record.loss },
        });
        options.onProgress?.({ type: 'checkpoint', step, location });
      }
    }
  } finally {
    await session.release();
    await store?.close?.();
  }
  options.onProgress?.({ type: 'end', step });
  const weights = new Map<string, Tensor<'float32'>>();
  for (const p of graph.parameters) weights.set(p.name, createTensor('float32', p.initial.dims, values.get(p.name) as Float32Array));
  return { weights, steps: step, metrics, rejects: order.rejects, counts: order.counts, resumedFrom, graph };
}
