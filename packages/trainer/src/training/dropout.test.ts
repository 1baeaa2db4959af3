/**
 * LoRA dropout (PEFT's dropout on the adapter input): masks drawn in the graph from a fed seed, so a
 * step is a pure function of (weights, batch, seed). Checked against hand-derived expectations:
 * off in evaluation (equal to the dropout-free graph), masks in {0, 1/(1-p)} with the kept share
 * near 1 - p, reproducible per seed and different across seeds and modules, and gradients that match
 * central differences of the same masked loss.
 */
import { cloneModel, encodeModel, exposeOutput } from '@vlit/graph';
import { createRng, createTensor, type Tensor } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { describe, expect, it } from 'vitest';
import { createTrainingSession } from '../engine/session.js';
import type { RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from './feeds.js';
import { createTinyLlava, makeSample, randomFeatures, TINY } from '../testing/tiny-llava.js';
import { buildTrainingGraph, TRAINING_IO, type LoraInitialWeights } from './training-graph.js';

const P = 0.5;
const stageWith = (dropout: number): RecipeStageInput => ({
  name: 'dropout',
  data: { sources: [{ name: 'fixture', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [{ mode: 'lora', match: ['model.language_model.*'], targetModules: ['q_proj', 'v_proj'], r: 2, alpha: 4, dropout }],
  optimizer: { lr: 1e-3 },
  batchSize: 4,
  maxSteps: 1,
});

describe('LoRA dropout', () => {
  it('is off in evaluation, reproducible per seed, {0, 1/(1-p)} masks near rate p, gradients match central differences', { timeout: 600_000 }, async () => {
    const tiny = createTinyLlava(9, { layers: 1 });
    const lora = new Map<string, LoraInitialWeights>();
    for (const [proj, out] of [
      ['q_proj', 16],
      ['v_proj', 8],
    ] as const) {
      const a = createTensor('float32', [2, 16]);
      const b = createTensor('float32', [out, 2]);
      createRng(`a-${proj}`).fillNormal(a.data, 0.5);
      createRng(`b-${proj}`).fillNormal(b.data, 0.5);
      lora.set(`model.language_model.layers.0.self_attn.${proj}`, { a, b });
    }
    const withDropout = buildTrainingGraph(tiny.parts, { stage: stageWith(P), loraWeights: lora });
    const without = buildTrainingGraph(tiny.parts, { stage: stageWith(0), loraWeights: lora });
    expect(withDropout.dropout).toBe(true);
    expect(without.dropout).toBe(false);
    const samples = [makeSample('a', [5, 6, 7], [9, 10]), makeSample('b', [5], [11]), makeSample('c', [5, 6, 7, 8], [12]), makeSample('d', [6, 7], [13, 14])];
    const { feeds } = prepareTrainingFeeds(
      withDropout,
      samples,
      samples.map((_, i) => [randomFeatures(`x${i}`)]),
    );
    const values = new Map(withDropout.parameters.map((p) => [p.name, Float32Array.from(p.initial.data)]));
    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    const s1 = await createTrainingSession(runtime.backend, withDropout);
    const s0 = await createTrainingSession(runtime.backend, without);

    // Evaluation turns dropout off: the dropout-free graph's loss and logits.
    const e1 = await s1.evaluate(feeds, values);
    const e0 = await s0.evaluate(feeds, values);
    expect(Math.abs(e1.loss - e0.loss)).toBeLessThan(1e-6);
    // A training step with dropout: deterministic per seed, different across seeds and from no dropout.
    const a = await s1.step(feeds, values, { dropoutSeed: 12345 });
    const a2 = await s1.step(feeds, values, { dropoutSeed: 12345 });
    const b = await s1.step(feeds, values, { dropoutSeed: 777 });
    const n = await s0.step(feeds, values);
    expect(a2.loss).toBe(a.loss);
    expect(Array.from(a2.gradients.get(withDropout.parameters[0].name) as Float32Array)).toEqual(
      Array.from(a.gradients.get(withDropout.parameters[0].name) as Float32Array),
    );
    expect(a.loss).not.toBe(b.loss);
    expect(a.loss).not.toBe(n.loss);

    // Gradients of the masked loss: central differences of the same seeded loss on a few A entries.
    const aName = withDropout.lora[0].aName;
    const exact = a.gradients.get(aName) as Float32Array;
    for (const i of [0, 7, 21]) {
      const h = 1e-2;
      const plus = new Map(values);
      const minus = new Map(values);
      const up = Float32Array.from(values.get(aName) as Float32Array);
      const down = Float32Array.from(up);
      up[i] += h;
      down[i] -= h;
      plus.set(aName, up);
      minus.set(aName, down);
      const fd = ((await s1.step(feeds, plus, { dropoutSeed: 12345 })).loss - (await s1.step(feeds, minus, { dropoutSeed: 12345 })).loss) / (2 * h);
      expect(Math.abs(fd - exact[i]), `A[${i}]`).toBeLessThan(2e-2 * Math.max(Math.abs(exact[i]), 1e-2));
    }
    await s1.release();
    await s0.release();

    // The masks themselves.
    const masks = withDropout.lora.map((m) => `lora/${m.module}/0/dropout/mask`);
    let model = cloneModel(withDropout.forward);
    for (const m of masks) model = exposeOutput(model, m);
    const session = await runtime.backend.createSession(encodeModel(model));
    const all: Record<string, Tensor> = { ...feeds };
    for (const p of withDropout.parameters) all[p.name] = createTensor('float32', p.initial.dims, values.get(p.name) as Float32Array);
    const draw = async (seed: number) => {
      all[TRAINING_IO.loraDropoutSeed] = createTensor('int64', [1], [BigInt(seed)]);
      all[TRAINING_IO.loraDropoutOn] = createTensor('float32', [1], [1]);
      const out = await session.run(all);
      return masks.map((m) => out[m].data as Float32Array);
    };
    const [q1, v1] = await draw(12345);
    const [q2] = await draw(777);
    await session.release();
    const [B, S] = (feeds[TRAINING_IO.inputIds] as Tensor).dims;
    expect(q1.length).toBe(B * S * TINY.hidden);
    expect(new Set(q1)).toEqual(new Set([0, 1 / (1 - P)]));
    const kept = q1.filter((x) => x > 0).length / q1.length;
    expect(Math.abs(kept - (1 - P))).toBeLessThan(0.06);
    const agree = (x: Float32Array, y: Float32Array) => x.filter((v, i) => v === y[i]).length / x.length;
    // Independent masks agree on about half the elements at p = 0.5; equal masks would agree on all.
    expect(agree(q1, v1)).toBeLessThan(0.65);
    expect(agree(q1, q2)).toBeLessThan(0.65);
  });
});
