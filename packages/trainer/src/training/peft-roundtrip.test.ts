/**
 * The trained model leaves Vlit in transformers' and peft's formats: after a few LoRA + projector steps,
 * `final/trained.safetensors` (projector under its transformers names) and `final/adapter` (a PEFT
 * folder) load into LlavaForConditionalGeneration with PeftModel.from_pretrained and give Vlit's logits.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createTensor, parseSafetensors, serializeSafetensors, type SafetensorsInput } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { runReferencePython } from '@vlit/test-kit/node';
import { afterAll, describe, expect, it } from 'vitest';
import { collateBatch } from '../data/collate.js';
import { trainStageInDirectory } from '../engine/directory-store.js';
import { createTrainingSession } from '../engine/session.js';
import type { RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from './feeds.js';
import { createTinyLlava, makeSample, randomFeatures, TINY } from './tiny-llava.fixture.js';
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

    const c = collateBatch(samples, { padTokenId: 0 });
    const [B, S] = c.inputIds.dims;
    const imageMask = new Uint8Array(B * S);
    c.imageSpans.forEach((spans, b) => spans.forEach((sp) => imageMask.fill(1, b * S + sp.start, b * S + sp.end)));
    const tensors = new Map<string, SafetensorsInput>();
    for (const [k, v] of Object.entries(tiny.weights)) tensors.set(`weight.${k}`, v);
    tensors.set('batch.input_ids', c.inputIds);
    tensors.set('batch.attention_mask', c.attentionMask);
    tensors.set('batch.image_mask', createTensor('uint8', [B, S], imageMask));
    const flat = features.flat();
    const feat = createTensor('float32', [flat.length, TINY.imageTokens, TINY.featureDim]);
    flat.forEach((f, i) => feat.data.set(f.data, i * f.data.length));
    tensors.set('batch.features', feat);
    const inFile = path.join(work, 'in.safetensors');
    const cfgFile = path.join(work, 'config.json');
    const outFile = path.join(work, 'logits.safetensors');
    writeFileSync(inFile, serializeSafetensors(tensors));
    writeFileSync(cfgFile, JSON.stringify({ text_config: tiny.hfTextConfig, feature_dim: TINY.featureDim, image_token_id: TINY.imageTokenId }));
    runReferencePython(new URL('./py/peft_logits.py', import.meta.url).pathname, [
      cfgFile,
      inFile,
      result.outputs.trainedFile as string,
      result.outputs.adapterDirs[0],
      outFile,
    ]);
    const entry = parseSafetensors(new Uint8Array(readFileSync(outFile))).tensors.get('logits');
    const torchLogits = Float32Array.from(entry?.toFloat32() ?? []);
    const V = TINY.vocab;
    const positions = prepared.feeds[TRAINING_IO.trainedPositions].data as BigInt64Array;
    let diff = 0;
    let scale = 0;
    positions.forEach((p, row) => {
      for (let v = 0; v < V; v++) {
        const ref = torchLogits[Number(p) * V + v];
        diff = Math.max(diff, Math.abs(vlit.logits.data[row * V + v] - ref));
        scale = Math.max(scale, Math.abs(ref));
      }
    });
    expect(positions.length).toBeGreaterThan(0);
    expect(diff / scale).toBeLessThan(1e-4);
  });
});
