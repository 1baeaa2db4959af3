/**
 * The same training step on onnxruntime-node and onnxruntime-web (wasm, in Node): equal loss and
 * gradients. (A real-Chromium run is a follow-up of the browser conformance suite.)
 */
import { createRuntimePair } from '@vlit/test-kit/node';
import { describe, expect, it } from 'vitest';
import { createTrainingSession } from '../engine/session.js';
import type { RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from './feeds.js';
import { createTinyLlava, makeSample, randomFeatures } from '../testing/tiny-llava.js';
import { buildTrainingGraph } from './training-graph.js';

const stage: RecipeStageInput = {
  name: 'runtimes',
  data: { sources: [{ name: 'fixture', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [
    { mode: 'trained', match: ['model.multi_modal_projector.*'] },
    { mode: 'lora', match: ['model.language_model.*'], targetModules: ['q_proj', 'v_proj'], r: 2, alpha: 4, dropout: 0.2 },
  ],
  optimizer: { lr: 1e-3 },
  batchSize: 2,
  maxSteps: 1,
};

describe('one training step on both runtimes', () => {
  it('onnxruntime-web gives the native loss and every gradient within 1e-5 relative (LoRA dropout on)', { timeout: 600_000 }, async () => {
    const tiny = createTinyLlava(5);
    const graph = buildTrainingGraph(tiny.parts, { stage, seed: 'rt' });
    // LoRA dropout on: its in-graph masks (integer hashing) must be drawn the same on both runtimes.
    expect(graph.dropout).toBe(true);
    const samples = [makeSample('a', [5, 6], [9, 10]), makeSample('b', [5, 8, 7, 6], [11])];
    const feeds = prepareTrainingFeeds(
      graph,
      samples,
      samples.map((s, i) => s.imageSpans.map((_, k) => randomFeatures(`rt-${i}-${k}`))),
    ).feeds;
    const values = new Map(graph.parameters.map((p) => [p.name, Float32Array.from(p.initial.data)]));
    const pair = createRuntimePair();
    const out: Record<string, Awaited<ReturnType<Awaited<ReturnType<typeof createTrainingSession>>['step']>>> = {};
    for (const [name, runtime] of Object.entries(pair)) {
      const session = await createTrainingSession(runtime.backend, graph);
      out[name] = await session.step(feeds, values, { dropoutSeed: 4242 });
      await session.release();
    }
    expect(Number.isFinite(out.node.loss)).toBe(true);
    expect(Math.abs(out.web.loss - out.node.loss) / Math.abs(out.node.loss)).toBeLessThan(1e-5);
    for (const p of graph.parameters) {
      const a = out.web.gradients.get(p.name) as Float32Array;
      const b = out.node.gradients.get(p.name) as Float32Array;
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < b.length; i++) {
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
        scale = Math.max(scale, Math.abs(b[i]));
      }
      // LoRA A starts with zero gradient (B = 0 at peft's init); every other gradient is non-zero.
      if (p.kind === 'lora-a') expect(scale, p.name).toBe(0);
      else expect(scale, p.name).toBeGreaterThan(0);
      expect(diff, p.name).toBeLessThanOrEqual(1e-5 * Math.max(scale, 1e-30));
    }
  });
});
