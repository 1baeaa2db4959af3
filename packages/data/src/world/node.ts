// Writing a world dataset to disk: rendered PNGs, COCO annotations, training VQA pairs and the benchmark.
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { InvalidArgumentError, UnsupportedError, type ImageCodec, type ProgressCallback } from '@vlit/core';
import { prepareOutputDir, writeFileAtomic } from '@vlit/core/node';
import { toVqaV2Json } from '../io/coco.js';
import { toWorldCoco, worldImageAnnotations, worldImagePath } from './annotations.js';
import { buildWorldBenchmark, toSeedBenchJson } from './benchmark.js';
import { WORLD_DIMENSIONS, WORLD_HELDOUT_PHRASINGS, type WorldDimension } from './questions.js';
import { createWorld, worldSceneSvg, type WorldOptions, type WorldScene, type WorldSplit } from './scene.js';

/** Options of writeWorldDataset. */
export interface WriteWorldDatasetOptions extends WorldOptions {
  /** Training scenes to render and annotate. */
  scenes: number;
  /** Held-out scenes for the benchmark. Default 100. */
  heldoutScenes?: number;
  /** Something with an image codec that can rasterise SVG (the node runtime's sharp codec can). */
  runtime: { images: ImageCodec };
  /** Remove earlier contents of a folder Vlit made. Default false. */
  clean?: boolean;
  /** Write into a non-empty folder Vlit did not make (nothing there is deleted). Default false. */
  force?: boolean;
  /** Images rendered at once. Default 2. */
  concurrency?: number;
  onProgress?: ProgressCallback;
}

/** What writeWorldDataset wrote, paths relative to the dataset folder. */
export interface WorldDatasetSummary {
  dir: string;
  trainScenes: number;
  heldoutScenes: number;
  images: number;
  benchmarkQuestions: number;
  questionsPerDimension: Record<WorldDimension, number>;
  files: {
    manifest: string;
    trainCaptions: string;
    trainInstances: string;
    trainVqaQuestions: string;
    trainVqaAnnotations: string;
    heldoutCaptions: string;
    heldoutInstances: string;
    benchmark: string;
    benchmarkUnseen: string;
  };
}

const FILES = {
  manifest: 'world.json',
  trainCaptions: 'annotations/captions_train.json',
  trainInstances: 'annotations/instances_train.json',
  trainVqaQuestions: 'annotations/vqa_questions_train.json',
  trainVqaAnnotations: 'annotations/vqa_annotations_train.json',
  heldoutCaptions: 'annotations/captions_heldout.json',
  heldoutInstances: 'annotations/instances_heldout.json',
  benchmark: 'benchmark/seed-bench.json',
  benchmarkUnseen: 'benchmark/seed-bench-unseen.json',
} as const;

const json = (value: unknown): string => `${JSON.stringify(value, null, 1)}\n`;

/**
 * Render and write a synthetic world: `images/<scene id>.png`, COCO captions/instances per split,
 * VQAv2 files of the training questions, the benchmark in SEED-Bench JSON (seen and unseen phrasings)
 * and `world.json` (options, counts, reserved phrasings). The same options write byte-identical files.
 */
export async function writeWorldDataset(dir: string, options: WriteWorldDatasetOptions): Promise<WorldDatasetSummary> {
  const { scenes: trainCount, heldoutScenes: heldoutCount = 100, runtime, clean, force, concurrency = 2, onProgress, ...worldOptions } = options;
  for (const [field, v] of [
    ['scenes', trainCount],
    ['heldoutScenes', heldoutCount],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${field} must be a non-negative integer, got ${v}`, { details: { field } });
  }
  if (!Number.isSafeInteger(concurrency) || concurrency < 1)
    throw new InvalidArgumentError(`concurrency must be a positive integer`, { details: { field: 'concurrency' } });
  const codec = runtime?.images;
  if (!codec || typeof codec.svgToPng !== 'function') {
    throw new UnsupportedError(`image codec ${codec?.name ?? '(none)'} cannot render SVG; use @vlit/runtime/node's createNodeRuntime()`, {
      details: { field: 'runtime' },
    });
  }
  const world = createWorld(worldOptions);
  const seed = world.options.seed;
  await prepareOutputDir(dir, { clean, force, owner: 'vlit world' });
  await mkdir(path.join(dir, 'images'), { recursive: true });
  await mkdir(path.join(dir, 'annotations'), { recursive: true });
  await mkdir(path.join(dir, 'benchmark'), { recursive: true });

  const splits: Array<[WorldSplit, WorldScene[]]> = [
    ['train', world.scenes('train', trainCount)],
    ['heldout', world.scenes('heldout', heldoutCount)],
  ];
  const all = splits.flatMap(([, s]) => s);
  const total = all.length;
  let done = 0;
  onProgress?.({ stage: 'render-world', done, total });
  for (let i = 0; i < all.length; i += concurrency) {
    await Promise.all(
      all.slice(i, i + concurrency).map(async (scene) => {
        const png = await (codec.svgToPng as NonNullable<ImageCodec['svgToPng']>)(worldSceneSvg(scene), { source: scene.id });
        await writeFileAtomic(path.join(dir, worldImagePath(scene)), png);
        done++;
        onProgress?.({ stage: 'render-world', done, total, message: scene.id });
      }),
    );
  }

  const info = { seed, size: world.options.size };
  const [train, heldout] = [splits[0][1], splits[1][1]];
  const trainCoco = toWorldCoco(train, { info: { ...info, split: 'train' } });
  const heldoutCoco = toWorldCoco(heldout, { info: { ...info, split: 'heldout' } });
  const vqa = toVqaV2Json(
    train.map((s) => worldImageAnnotations(s, { seed })),
    'train',
  );
  const questions = buildWorldBenchmark(heldout, { seed });
  const perDimension = Object.fromEntries(WORLD_DIMENSIONS.map((d) => [d, questions.filter((q) => q.dimension === d).length])) as Record<
    WorldDimension,
    number
  >;

  const writes: Array<[string, unknown]> = [
    [FILES.trainCaptions, trainCoco.captions],
    [FILES.trainInstances, trainCoco.instances],
    [FILES.trainVqaQuestions, vqa.questions],
    [FILES.trainVqaAnnotations, vqa.annotations],
    [FILES.heldoutCaptions, heldoutCoco.captions],
    [FILES.heldoutInstances, heldoutCoco.instances],
    [FILES.benchmark, toSeedBenchJson(questions, 'seen')],
    [FILES.benchmarkUnseen, toSeedBenchJson(questions, 'unseen')],
    [
      FILES.manifest,
      {
        kind: 'vlit-synthetic-world',
        version: 1,
        options: world.options,
        counts: { train: train.length, heldout: heldout.length, benchmarkQuestions: questions.length, questionsPerDimension: perDimension },
        files: FILES,
        heldoutPhrasings: WORLD_HELDOUT_PHRASINGS,
      },
    ],
  ];
  for (const [file, value] of writes) await writeFileAtomic(path.join(dir, file), json(value));
  onProgress?.({ stage: 'write-world', done: writes.length, total: writes.length });
  return {
    dir,
    trainScenes: train.length,
    heldoutScenes: heldout.length,
    images: total,
    benchmarkQuestions: questions.length,
    questionsPerDimension: perDimension,
    files: { ...FILES },
  };
}
