/**
 * Bad input never disappears: samples that cannot train are rejects with reasons and the counts add
 * up; a recipe naming a tensor or module the model lacks, a span that does not fit the connector, a
 * NaN loss and a stage that trains nothing are typed errors naming the field (and record / step).
 */
import { createTensor, isVlitError } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { describe, expect, it } from 'vitest';
import { isNonFiniteLossError } from '../metrics.js';
import type { RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from '../training/feeds.js';
import { createTinyLlava, makeSample, randomFeatures, TINY } from '../testing/tiny-llava.js';
import { buildTrainingGraph } from '../training/training-graph.js';
import { trainStage } from './train-stage.js';

const SLOW = { timeout: 600_000 };
const base: RecipeStageInput = {
  name: 'bad',
  data: { sources: [{ name: 'fixture', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [{ mode: 'trained', match: ['model.multi_modal_projector.*'] }],
  optimizer: { lr: 1e-3 },
  batchSize: 2,
  maxSteps: 2,
  maxLength: 14,
};

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('bad input', () => {
  const tiny = createTinyLlava(2, { layers: 1 });

  it('all-masked and over-long samples are rejects with reasons; read = used + rejected', SLOW, async () => {
    const good = Array.from({ length: 6 }, (_, i) => makeSample(`ok-${i}`, [5, 6], [10 + i]));
    const masked = { ...makeSample('masked', [5, 6], [9]) };
    masked.labels = masked.labels.map(() => -100);
    const long = makeSample(
      'long',
      Array.from({ length: 12 }, (_, i) => 5 + i),
      [9],
    );
    const samples = [good[0], masked, ...good.slice(1, 4), long, ...good.slice(4)];
    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    const result = await trainStage(base, { backend: runtime.backend, model: tiny.parts, samples, imageFeatures: (_s, i) => [randomFeatures(i)] });
    expect(result.counts).toEqual({ read: 8, used: 6, rejected: 2 });
    expect(result.counts.read).toBe(result.counts.used + result.counts.rejected);
    expect(result.rejects.map((r) => [r.id, r.index, r.reason, r.field])).toEqual([
      ['masked', 1, 'all-labels-masked', 'labels'],
      ['long', 5, 'too-long', 'inputIds'],
    ]);
    expect(result.rejects[1].message).toContain('exceed the maximum of 14');
    // No rejected sample ever reached a batch.
    const used = new Set(result.metrics.flatMap((m) => m.sampleIndices as number[]));
    expect(used.has(1) || used.has(5)).toBe(false);
    expect(result.steps).toBe(2);
  });

  it('a recipe naming a tensor or a LoRA module the model lacks is a ValidationError naming the field', SLOW, () => {
    const typo = { ...base, trainables: [{ mode: 'trained' as const, match: ['model.multi_modal_projector.linear_9.*'] }] };
    const e1 = (() => {
      try {
        buildTrainingGraph(tiny.parts, { stage: typo, stageIndex: 1 });
      } catch (err) {
        return err;
      }
    })();
    expect(isVlitError(e1, 'VLIT_VALIDATION')).toBe(true);
    expect((e1 as { details: { field: string } }).details.field).toBe('stages.1.trainables.0.match.0');
    const loraTypo = {
      ...base,
      trainables: [
        { mode: 'trained' as const, match: ['model.multi_modal_projector.*'] },
        { mode: 'lora' as const, match: ['model.language_model.*'], targetModules: ['q_proj', 'qv_proj'], r: 2, alpha: 4 },
      ],
    };
    expect(() => buildTrainingGraph(tiny.parts, { stage: loraTypo })).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ field: 'trainables.1.targetModules.1' }) }),
    );
    const frozen = { ...base, trainables: [{ mode: 'frozen' as const, match: ['*'] }] };
    expect(() => buildTrainingGraph(tiny.parts, { stage: frozen })).toThrow(
      expect.objectContaining({ code: 'VLIT_VALIDATION', details: { field: 'trainables' } }),
    );
  });

  it('an image span that does not fit the connector is a TensorShapeError naming the record and span', SLOW, () => {
    const graph = buildTrainingGraph(tiny.parts, { stage: base });
    const s = makeSample('short-span', [5], [9]);
    s.imageSpans = [{ imageIndex: 0, start: 1, end: 3 }];
    const err = (() => {
      try {
        prepareTrainingFeeds(graph, [s], [[randomFeatures(0)]]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: 'VLIT_TENSOR_SHAPE', details: { record: 'short-span', field: 'imageSpans.0' } });
    const wide = createTensor('float32', [TINY.imageTokens, TINY.featureDim + 1]);
    expect(() => prepareTrainingFeeds(graph, [makeSample('wide', [5], [9])], [[wide]])).toThrow(
      expect.objectContaining({ code: 'VLIT_TENSOR_SHAPE', details: expect.objectContaining({ record: 'wide', field: 'images.0' }) }),
    );
  });

  it('a NaN loss stops the run with NonFiniteLossError naming the step', SLOW, async () => {
    const samples = Array.from({ length: 4 }, (_, i) => makeSample(`n-${i}`, [5, 6], [10 + i]));
    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    const poisoned = randomFeatures('nan');
    poisoned.data[0] = Number.NaN;
    const err = await caught(() =>
      trainStage(
        { ...base, batchSize: 4, maxSteps: 3 },
        { backend: runtime.backend, model: tiny.parts, samples, imageFeatures: (_s, i) => [i === 2 ? poisoned : randomFeatures(i)] },
      ),
    );
    expect(isNonFiniteLossError(err)).toBe(true);
    expect(err).toMatchObject({ details: { field: 'loss', step: 1, stage: 'bad', value: 'NaN' } });
  });
});
