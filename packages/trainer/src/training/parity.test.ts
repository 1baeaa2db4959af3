/**
 * The training graph of a tiny LLaVA (MLP projector with GELU, Llama decoder with grouped-query
 * attention, LoRA on q_proj / v_proj) against transformers + peft + torch autograd: loss and every
 * trained gradient on one right-padded batch, then 20 AdamW steps against torch.optim.AdamW.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createTensor, parseSafetensors, serializeSafetensors, type SafetensorsInput, type Tensor } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { runReferencePython } from '@vlit/test-kit/node';
import { afterAll, describe, expect, it } from 'vitest';
import { collateBatch } from '../data/collate.js';
import { createTrainingSession } from '../engine/session.js';
import { trainStage } from '../engine/train-stage.js';
import type { RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from './feeds.js';
import { createTinyLlava, makeSample, randomFeatures, TINY } from './tiny-llava.fixture.js';
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

/** max |a - b| / max |b|: the error relative to the reference tensor's scale. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

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
    const c = collateBatch(samples, { padTokenId: 0 });
    const [B, S] = c.inputIds.dims;
    const imageMask = new Uint8Array(B * S);
    c.imageSpans.forEach((spans, b) => spans.forEach((sp) => imageMask.fill(1, b * S + sp.start, b * S + sp.end)));
    const tensors = new Map<string, SafetensorsInput>();
    for (const [k, v] of Object.entries(tiny.weights)) tensors.set(`weight.${k}`, v);
    for (const [module, w] of loraWeights) {
      tensors.set(`lora.${module}.lora_A.weight`, w.a);
      tensors.set(`lora.${module}.lora_B.weight`, w.b);
    }
    tensors.set('batch.input_ids', c.inputIds);
    tensors.set('batch.attention_mask', c.attentionMask);
    tensors.set('batch.labels', c.labels);
    tensors.set('batch.image_mask', createTensor('uint8', [B, S], imageMask));
    const flat = features.flat();
    const feat = createTensor('float32', [flat.length, TINY.imageTokens, TINY.featureDim]);
    flat.forEach((f, i) => feat.data.set(f.data, i * f.data.length));
    tensors.set('batch.features', feat);
    const inFile = path.join(work, 'in.safetensors');
    const outFile = path.join(work, 'out.safetensors');
    const cfgFile = path.join(work, 'config.json');
    writeFileSync(inFile, serializeSafetensors(tensors));
    writeFileSync(
      cfgFile,
      JSON.stringify({
        text_config: tiny.hfTextConfig,
        feature_dim: TINY.featureDim,
        image_token_id: TINY.imageTokenId,
        r: R,
        alpha: ALPHA,
        lr: OPT.lr,
        betas: OPT.betas,
        eps: OPT.eps,
        weight_decay: OPT.weightDecay,
        steps: STEPS,
      }),
    );
    runReferencePython(new URL('./py/llava_parity.py', import.meta.url).pathname, [cfgFile, inFile, outFile]);
    const ref = parseSafetensors(new Uint8Array(readFileSync(outFile)));
    const get = (k: string): Float32Array => {
      const e = ref.tensors.get(k);
      if (!e) throw new Error(`reference output lacks ${k}`);
      return Float32Array.from(e.toFloat32());
    };

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
