/**
 * The training graph of a tiny LLaVA (MLP projector with GELU, Llama decoder with grouped-query
 * attention, LoRA on q_proj / v_proj) against transformers + peft + torch autograd: loss and every
 * trained gradient on one right-padded batch, then 20 AdamW steps against torch.optim.AdamW.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createTensor, type Tensor } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { afterAll, describe, expect, it } from 'vitest';
import { createTrainingSession } from '../engine/session.js';
import { trainStage } from '../engine/train-stage.js';
import type { RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from './feeds.js';
import { createTinyLlava, makeSample, randomFeatures, referenceTensors, relativeError, runTorchReference, TINY } from '../testing/tiny-llava.js';
import { buildTrainingGraph, type LoraInitialWeights } from './training-graph.js';

const SLOW = { timeout: 600_000 };
const work = mkdtempSync(path.join(tmpdir(), 'vlit-train-parity-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const R = 4;
const ALPHA = 8;
const OPT = { lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.01 };
const STEPS = 20;
const stage: RecipeStageInput = {
  name: 'parity',
  data: { sources: [{ name: 'fixture', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [
    { mode: 'trained', match: ['model.multi_modal_projector.*'] },
    { mode: 'lora', match: ['model.language_model.*'], targetModules: ['q_proj', 'v_proj'], r: R, alpha: ALPHA, dropout: 0 },
  ],
  optimizer: { ...OPT, noDecay: [] },
  schedule: { type: 'constant' },
  clipGradNorm: null,
  batchSize: 3,
  maxSteps: STEPS,
};

describe('training graph parity with transformers + peft + torch autograd', () => {
  it('loss, projector and LoRA gradients within 1e-4 relative; weights after 20 AdamW steps within 1e-4', SLOW, async () => {
    const tiny = createTinyLlava(3);
    // Non-zero B (peft starts at zero) so every LoRA gradient is exercised from the first step.
    const rng = createRng('lora-init');
    const loraWeights = new Map<string, LoraInitialWeights>();
    for (let layer = 0; layer < tiny.llama.numHiddenLayers; layer++) {
      for (const [proj, out] of [
        ['q_proj', 16],
        ['v_proj', 8],
      ] as const) {
        const a = createTensor('float32', [R, TINY.hidden]);
        const b = createTensor('float32', [out, R]);
        rng.fillNormal(a.data, 0.3);
        rng.fillNormal(b.data, 0.3);
        loraWeights.set(`model.language_model.layers.${layer}.self_attn.${proj}`, { a, b });
      }
    }
    const graph = buildTrainingGraph(tiny.parts, { stage, loraWeights });
    expect(graph.parameters.map((p) => p.name).sort()).toEqual(
      [
        'model.multi_modal_projector.linear_1.weight',
        'model.multi_modal_projector.linear_1.bias',
        'model.multi_modal_projector.linear_2.weight',
        'model.multi_modal_projector.linear_2.bias',
        ...[0, 1].flatMap((l) =>
          ['q_proj', 'v_proj'].flatMap((p) => ['A', 'B'].map((x) => `model.language_model.layers.${l}.self_attn.${p}.lora_${x}.weight`)),
        ),
      ].sort(),
    );

    // Three samples of different lengths (right padding), one with two images.
    const samples = [makeSample('a', [5, 6, 7], [9, 10]), makeSample('b', [5, 8], [11], 2), makeSample('c', [5, 6, 7, 8, 12], [13, 14, 15])];
    const features = samples.map((s, i) => s.imageSpans.map((_, k) => randomFeatures(`f-${i}-${k}`)));
    const prepared = prepareTrainingFeeds(graph, samples, features);
    expect(prepared.shape).toEqual([3, Math.max(...samples.map((s) => s.inputIds.length))]);

    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    const session = await createTrainingSession(runtime.backend, graph);
    const values = new Map(graph.parameters.map((p) => [p.name, Float32Array.from(p.initial.data)]));
    const vlit = await session.step(prepared.feeds, values);
    await session.release();

    // The same batch for torch: HF names, LoRA A/B under module paths, the padded batch and image mask.
    const tensors = referenceTensors(tiny, samples, features);
    for (const [module, w] of loraWeights) {
      tensors.set(`lora.${module}.lora_A.weight`, w.a);
      tensors.set(`lora.${module}.lora_B.weight`, w.b);
    }
    const get = runTorchReference('llava_parity.py', {
      dir: work,
      tiny,
      tensors,
      config: { r: R, alpha: ALPHA, lr: OPT.lr, betas: OPT.betas, eps: OPT.eps, weight_decay: OPT.weightDecay, steps: STEPS },
    });

    const torchLoss = get('loss')[0];
    expect(Math.abs(vlit.loss - torchLoss) / Math.abs(torchLoss)).toBeLessThan(1e-4);
    const gradErrors: Record<string, number> = {};
    for (const p of graph.parameters) gradErrors[p.name] = relativeError(vlit.gradients.get(p.name) as Float32Array, get(`grad.${p.name}`));
    for (const [name, err] of Object.entries(gradErrors)) expect(err, name).toBeLessThan(1e-4);

    // 20 AdamW steps through the engine (the whole batch every step, constant lr, no clipping).
    const result = await trainStage(stage, {
      backend: runtime.backend,
      model: graph,
      samples,
      imageFeatures: (_s, i) => features[i],
      bucketing: 'none',
    });
    expect(result.steps).toBe(STEPS);
    const finalErrors: Record<string, number> = {};
    for (const p of graph.parameters) finalErrors[p.name] = relativeError((result.weights.get(p.name) as Tensor<'float32'>).data, get(`final.${p.name}`));
    for (const [name, err] of Object.entries(finalErrors)) expect(err, name).toBeLessThan(1e-4);
    // The weights moved: 20 steps of lr 1e-3 are far beyond the tolerance.
    for (const p of graph.parameters) expect(relativeError(p.initial.data, get(`final.${p.name}`)), p.name).toBeGreaterThan(1e-3);
  });
});
