/**
 * The trained model leaves Vlit in transformers' and peft's formats: after a few LoRA + projector steps,
 * `final/trained.safetensors` (projector under its transformers names) and `final/adapter` (a PEFT
 * folder) load into LlavaForConditionalGeneration with PeftModel.from_pretrained and give Vlit's logits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createNodeRuntime } from '@vlit/runtime/node';
import { afterAll, describe, expect, it } from 'vitest';
import { trainStageInDirectory } from '../engine/directory-store.js';
import { createTrainingSession } from '../engine/session.js';
import type { RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from './feeds.js';
import { createTinyLlava, makeSample, randomFeatures, referenceTensors, relativeError, runTorchReference, TINY } from '../testing/tiny-llava.js';
import { TRAINING_IO } from './training-graph.js';

const work = mkdtempSync(path.join(tmpdir(), 'vlit-peft-roundtrip-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const stage: RecipeStageInput = {
  name: 'roundtrip',
  data: { sources: [{ name: 'fixture', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [
    { mode: 'trained', match: ['model.multi_modal_projector.*'] },
    { mode: 'lora', match: ['model.language_model.*'], targetModules: ['q_proj', 'v_proj'], r: 4, alpha: 8, dropout: 0.1 },
  ],
  optimizer: { lr: 5e-2 },
  batchSize: 2,
  maxSteps: 4,
};

describe('trained outputs load in transformers + peft', () => {
  it('PeftModel.from_pretrained on the written adapter gives the Vlit logits within 1e-4 relative', { timeout: 600_000 }, async () => {
    const tiny = createTinyLlava(4);
    const samples = [makeSample('a', [5, 6, 7], [9, 10]), makeSample('b', [5, 8], [11], 2), makeSample('c', [6], [12, 13, 14]), makeSample('d', [7, 7], [15])];
    const features = samples.map((s, i) => s.imageSpans.map((_, k) => randomFeatures(`rt-${i}-${k}`)));
    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    const out = path.join(work, 'run');
    const result = await trainStageInDirectory(stage, {
      backend: runtime.backend,
      model: tiny.parts,
      samples,
      imageFeatures: (_s, i) => features[i],
      outDir: out,
    });
    expect(result.outputs.adapterDirs).toEqual([path.join(out, 'final', 'adapter')]);
    // B starts at zero (peft's init) and moved: the adapter is not the identity.
    const bMax = Math.max(...result.graph.lora.map((m) => Math.max(...Array.from(result.weights.get(m.bName)?.data ?? [0]).map(Math.abs))));
    expect(bMax).toBeGreaterThan(1e-3);

    const session = await createTrainingSession(runtime.backend, result.graph);
    const prepared = prepareTrainingFeeds(result.graph, samples, features);
    const values = new Map([...result.weights].map(([k, v]) => [k, v.data]));
    const vlit = await session.evaluate(prepared.feeds, values);
    await session.release();

    const get = runTorchReference('peft_logits.py', {
      dir: work,
      tiny,
      tensors: referenceTensors(tiny, samples, features),
      args: [result.outputs.trainedFile as string, result.outputs.adapterDirs[0]],
    });
    const torchLogits = get('logits');
    const V = TINY.vocab;
    const positions = prepared.feeds[TRAINING_IO.trainedPositions].data as BigInt64Array;
    // Vlit's logits are the rows at the trained positions (flattened batch x sequence); torch gives every row.
    const torchRows = new Float32Array(positions.length * V);
    positions.forEach((p, row) => torchRows.set(torchLogits.subarray(Number(p) * V, (Number(p) + 1) * V), row * V));
    expect(positions.length).toBeGreaterThan(0);
    expect(relativeError(vlit.logits.data, torchRows)).toBeLessThan(1e-4);
  });
});
