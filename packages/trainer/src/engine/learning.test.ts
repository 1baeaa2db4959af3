/**
 * Learning: the answer (a colour word) depends only on the image. Images are PNG files written by the
 * spec-level writer (a coloured square at a random place on a grey canvas, with pixel noise), decoded
 * by the runtime's image codec and turned into features by a fixed
 * patch-statistics encoder (mean and max colour per horizontal strip), standing in for a frozen vision
 * tower. Training the projector + LoRA through the engine lifts held-out accuracy far above chance (25%);
 * the same run on blank canvases cannot beat chance, since nothing tells the colours apart. Accuracy is
 * measured by the engine's periodic evaluation hook, at the trained answer position.
 */
import { createRng, createTensor, type RawImage, type Rng, type Tensor, type VlitRuntime } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { writePng } from '@vlit/test-kit/node';
import { describe, expect, it } from 'vitest';
import type { TrainingSample } from '../data/order.js';
import type { RecipeStageInput } from '../recipe.js';
import { createTinyLlava, makeSample, TINY } from '../testing/tiny-llava.js';
import { trainStage, type EvaluationContext } from './train-stage.js';

const SIZE = 12;
const COLOURS: [number, number, number][] = [
  [220, 40, 40],
  [40, 200, 60],
  [50, 70, 230],
  [230, 220, 40],
];
const ANSWER = [20, 21, 22, 23];
const PROMPT = [5, 6];

/** PNG of a SIZE x SIZE canvas; colour null draws no shape. */
function drawImage(colour: number | null, rng: Rng): Uint8Array {
  const px = new Uint8Array(SIZE * SIZE * 3);
  const side = 4 + rng.int(0, 3);
  const x0 = rng.int(0, SIZE - side + 1);
  const y0 = rng.int(0, SIZE - side + 1);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const inside = colour !== null && x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
      const base = inside ? COLOURS[colour as number] : [128, 128, 128];
      for (let c = 0; c < 3; c++) px[(y * SIZE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(base[c] + (rng.float() - 0.5) * 20)));
    }
  }
  return writePng(SIZE, SIZE, 3, (x, y) => px.subarray((y * SIZE + x) * 3, (y * SIZE + x) * 3 + 3));
}

/** Frozen "encoder": per horizontal strip (one token each), mean and max of each channel, centred and scaled. */
function encode(image: RawImage): Tensor<'float32'> {
  if (image.width !== SIZE || image.height !== SIZE || image.channels !== 3) throw new Error(`decoded ${image.width}x${image.height}x${image.channels}`);
  const px = image.data;
  const t = createTensor('float32', [TINY.imageTokens, TINY.featureDim]);
  const rows = SIZE / TINY.imageTokens;
  for (let k = 0; k < TINY.imageTokens; k++) {
    const mean = [0, 0, 0];
    const max = [0, 0, 0];
    for (let y = k * rows; y < (k + 1) * rows; y++) {
      for (let x = 0; x < SIZE; x++) {
        for (let c = 0; c < 3; c++) {
          const v = px[(y * SIZE + x) * 3 + c];
          mean[c] += v / (rows * SIZE);
          max[c] = Math.max(max[c], v);
        }
      }
    }
    const f = [...mean, ...max, 1, k / TINY.imageTokens];
    for (let d = 0; d < TINY.featureDim; d++) t.data[k * TINY.featureDim + d] = d < 6 ? (f[d] - 128) / 64 : f[d];
  }
  return t;
}

interface Example {
  sample: TrainingSample;
  colour: number;
  features: Tensor<'float32'>;
}

async function dataset(runtime: VlitRuntime, count: number, seed: string, blank: boolean): Promise<Example[]> {
  const rng = createRng(seed);
  const out: Example[] = [];
  for (let i = 0; i < count; i++) {
    const colour = i % COLOURS.length;
    const png = drawImage(blank ? null : colour, rng);
    out.push({ sample: makeSample(`${seed}-${i}`, PROMPT, [ANSWER[colour]]), colour, features: encode(await runtime.images.decode(png)) });
  }
  return out;
}

const stage: RecipeStageInput = {
  name: 'colours',
  data: { sources: [{ name: 'shapes', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [
    { mode: 'trained', match: ['model.multi_modal_projector.*'] },
    { mode: 'lora', match: ['model.language_model.*'], targetModules: ['q_proj', 'v_proj'], r: 4, alpha: 8 },
  ],
  optimizer: { lr: 2e-2, weightDecay: 0 },
  schedule: { type: 'cosine', warmupSteps: 5 },
  batchSize: 8,
  maxSteps: 160,
  seed: 7,
  evalEvery: 40,
};

async function run(blank: boolean): Promise<{ accuracy: number; firstLoss: number; lastLoss: number }> {
  const tiny = createTinyLlava(11);
  const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
  const train = await dataset(runtime, 64, blank ? 'train-blank' : 'train', blank);
  const test = await dataset(runtime, 32, blank ? 'test-blank' : 'test', blank);
  const accuracyOf = async (context: EvaluationContext): Promise<Record<string, number>> => {
    const { logits } = await context.run(
      test.map((e) => e.sample),
      test.map((e) => [e.features]),
    );
    const V = logits.dims[1];
    let correct = 0;
    test.forEach((e, b) => {
      // Two trained positions per sample (answer, eos); the answer comes first.
      const row = logits.data.subarray(2 * b * V, (2 * b + 1) * V);
      let best = 0;
      for (let c = 1; c < ANSWER.length; c++) if (row[ANSWER[c]] > row[ANSWER[best]]) best = c;
      if (best === e.colour) correct++;
    });
    return { accuracy: correct / test.length };
  };
  const result = await trainStage(stage, {
    backend: runtime.backend,
    model: tiny.parts,
    samples: train.map((e) => e.sample),
    imageFeatures: (_s, i) => [train[i].features],
    evaluation: { samples: test.map((e) => e.sample), imageFeatures: (_s, i) => [test[i].features], evaluate: accuracyOf },
  });
  const evals = result.metrics.filter((m) => m.accuracy !== undefined);
  // evalEvery 40 over 160 steps: evaluations at 40, 80, 120, 160, each with a finite held-out loss.
  expect(evals.map((m) => m.step)).toEqual([40, 80, 120, 160]);
  for (const m of evals) expect(Number.isFinite(m.evalLoss)).toBe(true);
  const accuracy = evals[evals.length - 1].accuracy as number;
  return { accuracy, firstLoss: result.metrics[0].loss, lastLoss: result.metrics[result.metrics.length - 1].loss };
}

describe('learning an image-dependent answer', () => {
  it('held-out accuracy rises far above chance with images and stays near chance with blank images', { timeout: 600_000 }, async () => {
    const withImages = await run(false);
    const blank = await run(true);
    expect(withImages.lastLoss).toBeLessThan(withImages.firstLoss);
    expect(withImages.accuracy).toBeGreaterThanOrEqual(0.85);
    expect(blank.accuracy).toBeLessThanOrEqual(0.4);
  });
});
