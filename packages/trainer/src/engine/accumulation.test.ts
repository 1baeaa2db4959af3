/**
 * Gradient accumulation is token-weighted: two micro-batches of 2 samples accumulated into one step
 * update the weights as one batch of the same 4 samples does (the mean loss over every trained token of
 * the step, as transformers' Trainer computes it with num_items_in_batch), although the micro-batches
 * train different numbers of tokens and are padded to different lengths.
 */
import { createNodeRuntime } from '@vlit/runtime/node';
import { describe, expect, it } from 'vitest';
import type { RecipeStageInput } from '../recipe.js';
import { createTinyLlava, makeSample, randomFeatures } from '../testing/tiny-llava.js';
import { buildTrainingGraph } from '../training/training-graph.js';
import { trainStage } from './train-stage.js';

const base: RecipeStageInput = {
  name: 'accumulate',
  data: { sources: [{ name: 'fixture', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [
    { mode: 'trained', match: ['model.multi_modal_projector.*'] },
    { mode: 'lora', match: ['model.language_model.*'], targetModules: ['v_proj'], r: 2, alpha: 4 },
  ],
  optimizer: { lr: 1e-2 },
  schedule: { type: 'constant' },
  clipGradNorm: null,
  batchSize: 4,
  maxSteps: 1,
  seed: 5,
};

describe('gradient accumulation', () => {
  it('2 micro-batches of 2 give the update of one batch of 4 (within 1e-6)', { timeout: 600_000 }, async () => {
    const tiny = createTinyLlava(8, { layers: 1 });
    const samples = [makeSample('a', [5, 6, 7, 8], [9]), makeSample('b', [5], [10, 11, 12]), makeSample('c', [6, 7], [13, 14]), makeSample('d', [7], [15])];
    const graph = buildTrainingGraph(tiny.parts, { stage: base });
    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    const common = {
      backend: runtime.backend,
      model: graph,
      samples,
      imageFeatures: (_s: unknown, i: number) => [randomFeatures(`acc-${i}`)],
      bucketing: 'none' as const,
    };
    const whole = await trainStage(base, common);
    const split = await trainStage({ ...base, batchSize: 2, gradientAccumulation: 2 }, common);
    expect(split.metrics[0].sampleIndices).toEqual(whole.metrics[0].sampleIndices);
    expect(split.metrics[0].trainedTokens).toBe(whole.metrics[0].trainedTokens);
    expect(Math.abs(split.metrics[0].loss - whole.metrics[0].loss)).toBeLessThan(1e-6);
    // AdamW's first update hardly depends on the gradient's scale, so check the accumulated gradient itself through its norm.
    const [gs, gw] = [split.metrics[0].gradNorm as number, whole.metrics[0].gradNorm as number];
    expect(Math.abs(gs - gw) / gw).toBeLessThan(1e-5);
    let worst = 0;
    let moved = 0;
    for (const p of graph.parameters) {
      const a = whole.weights.get(p.name)?.data as Float32Array;
      const b = split.weights.get(p.name)?.data as Float32Array;
      for (let i = 0; i < a.length; i++) {
        worst = Math.max(worst, Math.abs(a[i] - b[i]));
        moved = Math.max(moved, Math.abs(a[i] - p.initial.data[i]));
      }
    }
    expect(moved).toBeGreaterThan(1e-3);
    expect(worst).toBeLessThan(1e-6);
  });
});
