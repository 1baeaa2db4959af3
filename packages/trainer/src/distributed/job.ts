/**
 * What a torchrun worker reads: the job JSON (stage settings resolved by Vlit, the step plan) and the
 * encoded data as safetensors shards. Everything that must agree with the local engine (data order,
 * trainable names, per-parameter optimiser settings, schedule length) is computed here in TypeScript,
 * so the Python side only runs the math.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidArgumentError, UnsupportedError, ValidationError, createTensor, serializeSafetensors, type SafetensorsInput, type Tensor } from '@vlit/core';
import { z } from 'zod';
import { createDataOrder, dataPositionSchema, type DataPosition, type TrainingSample } from '../data/order.js';
import { resolveAdamWSettings } from '../optim/adamw.js';
import { warmupStepsFromRatio } from '../optim/schedule.js';
import { resolveTrainables, stageTotalSteps, type Recipe, type RecipeStage } from '../recipe.js';

/** An encoded sample for the distributed engine: @vlit/templates' encoding plus its images. */
export interface TorchrunSample extends TrainingSample {
  /** 1 on real tokens (default all ones). */
  attentionMask?: readonly number[];
  /** One tensor per image, in imageIndex order: pixels `[C, H, W]` as the vision tower takes them (preprocessed by @vlit/encoders). */
  images?: readonly Tensor<'float32'>[];
  /**
   * Instead of `images`: reads the sample's pixels when its shard is written, so a large dataset never
   * holds every image's pixels at once (writeDataShards keeps one shard's worth).
   */
  loadImages?: () => Promise<readonly Tensor<'float32'>[]>;
}

/** The job file a worker reads (`python -m vlit_worker job.json`). */
export const torchrunJobSchema = z.object({
  format: z.literal('vlit-torchrun-job'),
  version: z.literal(1),
  recipeHash: z.string(),
  stageIndex: z.number().int().min(0),
  stageName: z.string(),
  /** torch.manual_seed value (the recipe seed, strings hashed). */
  seed: z.number().int().min(0),
  modelDir: z.string(),
  /** The model's parameter names as transformers names them in memory (what the trainables were resolved against). */
  tensorNames: z.array(z.string()),
  trainables: z.object({
    trained: z.array(z.string()),
    lora: z.array(z.object({ module: z.string(), r: z.number().int(), alpha: z.number(), dropout: z.number(), useRslora: z.boolean() })),
  }),
  optimizer: z.object({
    betas: z.tuple([z.number(), z.number()]),
    eps: z.number(),
    /** One entry per trained tensor (LoRA factors as `<module>.lora_A.weight`), as resolveAdamWSettings resolved it. */
    params: z.array(z.object({ name: z.string(), lr: z.number(), weightDecay: z.number() })),
  }),
  schedule: z.object({ type: z.string(), warmupSteps: z.number().int().min(0), totalSteps: z.number().int().min(1), numCycles: z.number() }),
  clipGradNorm: z.number().nullable(),
  batchSize: z.number().int().min(1),
  gradientAccumulation: z.number().int().min(1),
  padTokenId: z.number().int(),
  ignoreIndex: z.number().int(),
  shards: z.array(z.object({ file: z.string(), first: z.number().int().min(0), count: z.number().int().min(1) })),
  /** Per optimiser step: the global batch (sample indices) and the data position after it. */
  steps: z.array(z.object({ samples: z.array(z.number().int().min(0)).min(1), epoch: z.number().min(0), position: dataPositionSchema })),
  checkpointEvery: z.number().int().min(1).nullable(),
  keepLast: z.number().int().min(1).nullable(),
  resumeFrom: z.string().nullable(),
  runDir: z.string(),
  outputDir: z.string(),
  backend: z.enum(['gloo', 'nccl']),
  strategy: z.enum(['ddp', 'fsdp']),
  /**
   * DDP's `find_unused_parameters`: true when a trained tensor may not reach the loss, as when the vision
   * tower trains (LLaVA reads the hidden state of `vision_feature_layer`, so later layers and the
   * post-LayerNorm get no gradient; DDP otherwise stops with "Expected to have finished reduction").
   */
  findUnusedParameters: z.boolean().default(false),
});
/** A torchrun job. */
export type TorchrunJob = z.infer<typeof torchrunJobSchema>;

/** One optimiser step of the plan. */
export interface PlannedStep {
  samples: number[];
  epoch: number;
  position: DataPosition;
}

/** The step plan of a stage: global batches of `batchSize × gradientAccumulation` samples in Vlit's seeded order. */
export interface StagePlan {
  steps: PlannedStep[];
  batchesPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
  rejects: ReturnType<typeof createDataOrder>['rejects'];
}

/** A torch seed from a recipe seed (numbers as they are, strings by FNV-1a), within torch's accepted range. */
export function torchSeed(seed: number | string): number {
  if (typeof seed === 'number') return Math.abs(Math.trunc(seed)) % 2 ** 53;
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The optimiser steps of a stage, as the local engine (trainStage) takes them: Vlit's seeded,
 * length-bucketed order of micro-batches (`stage.batchSize`), `gradientAccumulation` consecutive ones
 * per step (a step may span an epoch boundary), `stageTotalSteps` steps; `epoch` is fractional, as
 * the local engine's metrics report it.
 */
export function planStage(stage: RecipeStage, samples: readonly TrainingSample[], seed: number | string): StagePlan {
  const order = createDataOrder(samples, { batchSize: stage.batchSize, seed: stage.seed ?? seed, maxLength: stage.maxLength });
  const totalSteps = stageTotalSteps(stage, order.batchesPerEpoch);
  const steps: PlannedStep[] = [];
  for (let s = 0; s < totalSteps; s++) {
    const ids: number[] = [];
    let epoch = 0;
    for (let k = 0; k < stage.gradientAccumulation; k++) {
      const batch = order.next();
      ids.push(...batch.indices);
      epoch = batch.epoch + (batch.index + 1) / order.batchesPerEpoch;
    }
    steps.push({ samples: ids, epoch, position: order.position() });
  }
  const { warmupSteps, warmupRatio } = stage.schedule;
  return {
    steps,
    batchesPerEpoch: order.batchesPerEpoch,
    totalSteps,
    warmupSteps: warmupSteps ?? warmupStepsFromRatio(warmupRatio ?? 0, totalSteps),
    rejects: order.rejects,
  };
}

/** Trainables and optimiser settings of a stage, resolved against the model's in-memory parameter names. */
export function resolveStageForWorker(
  stage: RecipeStage,
  stageIndex: number,
  tensorNames: readonly string[],
): Pick<TorchrunJob, 'trainables' | 'optimizer' | 'findUnusedParameters'> {
  const resolved = resolveTrainables(stage, tensorNames, { stageIndex });
  const loraNames = resolved.lora.flatMap((t) => [`${t.module}.lora_A.weight`, `${t.module}.lora_B.weight`]);
  const names = [...resolved.trained, ...loraNames];
  if (names.length === 0) {
    throw new ValidationError(`stage ${stage.name} trains nothing`, { details: { field: `stages.${stageIndex}.trainables` } });
  }
  const settings = resolveAdamWSettings(names, stage.optimizer);
  return {
    findUnusedParameters: names.some((n) => n.startsWith('model.vision_tower.')),
    trainables: {
      trained: resolved.trained,
      lora: resolved.lora.map((t) => ({ module: t.module, r: t.r, alpha: t.alpha, dropout: t.dropout, useRslora: t.useRslora })),
    },
    optimizer: {
      betas: [stage.optimizer.betas[0], stage.optimizer.betas[1]],
      eps: stage.optimizer.eps,
      params: settings.map((s) => ({ name: s.name, lr: s.lr, weightDecay: s.weightDecay })),
    },
  };
}

const i64 = (values: number[]): Tensor<'int64'> =>
  createTensor(
    'int64',
    [values.length],
    BigInt64Array.from(values, (v) => BigInt(v)),
  );

/** Options of writeDataShards. */
export interface DataShardOptions {
  /** Most samples in one shard. Default 4096. */
  samplesPerShard?: number;
  /** A shard is closed once its pixels reach this many bytes (pixels are what make shards large). Default 256 MiB. */
  maxShardPixelBytes?: number;
}

/**
 * Write the samples as safetensors shards (ids, labels, attention mask, offsets, image spans, images);
 * returns the shard list of the job. Samples with `loadImages` are read one at a time, so at most one
 * shard's pixels are in memory.
 */
export async function writeDataShards(dir: string, samples: readonly TorchrunSample[], options: DataShardOptions = {}): Promise<TorchrunJob['shards']> {
  const per = options.samplesPerShard ?? 4096;
  const maxPixelBytes = options.maxShardPixelBytes ?? 256 * 1024 * 1024;
  if (!Number.isInteger(per) || per < 1)
    throw new InvalidArgumentError(`samplesPerShard must be a positive integer, got ${per}`, { details: { field: 'samplesPerShard' } });
  if (!(maxPixelBytes > 0))
    throw new InvalidArgumentError(`maxShardPixelBytes must be positive, got ${maxPixelBytes}`, { details: { field: 'maxShardPixelBytes' } });
  await mkdir(dir, { recursive: true });
  const shards: TorchrunJob['shards'] = [];
  let first = 0;
  let ids: number[] = [];
  let labels: number[] = [];
  let mask: number[] = [];
  let offsets = [0];
  let spans: number[] = [];
  let imageOffsets = [0];
  let images: Tensor<'float32'>[] = [];
  let imageDims: string | undefined;
  const flush = async (count: number): Promise<void> => {
    const tensors = new Map<string, SafetensorsInput>([
      ['input_ids', i64(ids)],
      ['labels', i64(labels)],
      ['attention_mask', i64(mask)],
      ['sample_offsets', i64(offsets)],
    ]);
    if (spans.length)
      tensors.set(
        'image_spans',
        createTensor(
          'int64',
          [spans.length / 4, 4],
          BigInt64Array.from(spans, (v) => BigInt(v)),
        ),
      );
    if (images.length) {
      const size = images[0].data.length;
      const all = new Float32Array(size * images.length);
      images.forEach((img, k) => all.set(img.data, k * size));
      tensors.set('image_offsets', i64(imageOffsets));
      tensors.set('pixel_values', createTensor('float32', [images.length, ...images[0].dims], all));
    }
    const file = path.join(dir, `shard-${String(shards.length).padStart(5, '0')}.safetensors`);
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, serializeSafetensors(tensors, { format: 'vlit-encoded-shard', version: '1', first: String(first) }));
    await rename(tmp, file);
    shards.push({ file, first, count });
    first += count;
    ids = [];
    labels = [];
    mask = [];
    offsets = [0];
    spans = [];
    imageOffsets = [0];
    images = [];
  };
  for (const [at, s] of samples.entries()) {
    const local = at - first;
    if (s.labels.length !== s.inputIds.length) {
      throw new ValidationError(`sample ${s.id}: labels and inputIds differ in length`, { details: { record: s.id, field: 'labels' } });
    }
    ids.push(...s.inputIds);
    labels.push(...s.labels);
    mask.push(...(s.attentionMask ?? s.inputIds.map(() => 1)));
    offsets.push(ids.length);
    const own = s.images ?? (s.loadImages ? await s.loadImages() : []);
    for (const sp of s.imageSpans) {
      if (sp.imageIndex >= own.length) {
        throw new ValidationError(`sample ${s.id}: image span ${sp.imageIndex} has no image tensor (${own.length} given)`, {
          details: { record: at, field: 'images' },
        });
      }
      spans.push(local, sp.imageIndex, sp.start, sp.end);
    }
    for (const img of own) {
      if (img.dims.length !== 3) {
        // Cached features would need the projector called outside the model's forward, which DDP's gradient hooks do not see.
        throw new UnsupportedError(`sample ${s.id}: images must be pixel tensors [C, H, W]; cached features are not supported by the torchrun worker yet`, {
          details: { record: at, field: 'images' },
        });
      }
      imageDims ??= img.dims.join();
      if (img.dims.join() !== imageDims) {
        throw new ValidationError(`sample ${s.id}: image dims [${img.dims.join(', ')}] differ from [${imageDims.split(',').join(', ')}]`, {
          details: { record: at, field: 'images' },
        });
      }
      images.push(img);
    }
    imageOffsets.push(images.length);
    const count = local + 1;
    if (count >= per || images.length * 4 * (images[0]?.data.length ?? 0) >= maxPixelBytes) await flush(count);
  }
  if (first < samples.length) await flush(samples.length - first);
  return shards;
}

/** Seed the job's stage uses. */
export function stageSeed(recipe: Recipe, stage: RecipeStage): number {
  return torchSeed(stage.seed ?? recipe.seed);
}
