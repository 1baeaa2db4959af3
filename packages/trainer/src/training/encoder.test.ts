/**
 * The vision encoder inside the training graph: a tiny CLIP-style ViT (@vlit/encoders) in front of the
 * connector, reading its penultimate hidden state with the CLS token dropped (LLaVA's default feature
 * select). Frozen, fed pixels must give the loss and gradients of the same graph fed the features that
 * the ViT alone computes on the runtime (the encoder-cache path). Unfrozen with one glob, exactly the
 * ViT's weights train (none of the graph builder's shape vectors or scalar constants), with gradients
 * that match central differences of the loss.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createTensor, type Tensor } from '@vlit/core';
import { buildConnectorModel, initConnectorWeights } from '@vlit/connectors';
import { buildHfVisionModel, buildVitModel, createVitWeights, hiddenStateName, resolveVitConfig } from '@vlit/encoders';
import { encodeModel } from '@vlit/graph';
import { vitAsHfVisionTower } from '@vlit/models/node';
import { runReferencePython } from '@vlit/test-kit/node';
import { createNodeRuntime } from '@vlit/runtime/node';
import { describe, expect, it } from 'vitest';
import type { TrainingSample } from '../data/order.js';
import { createTrainingSession } from '../engine/session.js';
import type { RecipeStageInput } from '../recipe.js';
import { prepareTrainingFeeds } from './feeds.js';
import { expectCentralDifferences } from '../testing/gradients.js';
import { createTinyLlava, TINY } from '../testing/tiny-llava.js';
import { buildTrainingGraph } from './training-graph.js';

const stage: RecipeStageInput = {
  name: 'encoder',
  data: { sources: [{ name: 'fixture', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [
    { mode: 'trained', match: ['model.multi_modal_projector.*'] },
    { mode: 'lora', match: ['model.language_model.*'], targetModules: ['q_proj', 'v_proj'], r: 2, alpha: 4 },
  ],
  optimizer: { lr: 1e-3 },
  batchSize: 2,
  maxSteps: 1,
};

/** bos, `tokens` image tokens, prompt, answer + eos (trained). */
function sample(id: string, tokens: number, prompt: number[], answer: number[]): TrainingSample {
  const inputIds = [1, ...new Array<number>(tokens).fill(TINY.imageTokenId), ...prompt, ...answer, 2];
  const labels = inputIds.map((t, i) => (i > tokens + prompt.length ? t : -100));
  return { id, inputIds, labels, imageSpans: [{ imageIndex: 0, start: 1, end: 1 + tokens }] };
}

/** Two seeded standard-normal images [3, side, side]. */
function randomPixels(seed: string, side: number): Tensor<'float32'>[] {
  const rng = createRng(seed);
  return [0, 1].map(() => {
    const t = createTensor('float32', [3, side, side]);
    rng.fillNormal(t.data, 1);
    return t;
  });
}

describe('vision encoder in the training graph', () => {
  it('pixels through the in-graph ViT give the loss and gradients of features from the ViT run alone', { timeout: 600_000 }, async () => {
    const vit = resolveVitConfig({ imageSize: 12, patchSize: 4, hiddenSize: TINY.featureDim, numLayers: 2, numHeads: 2, intermediateSize: 16 });
    const vitModel = buildVitModel(vit, createVitWeights(vit, 5));
    const tiny = createTinyLlava(6, { layers: 1 });
    const withEncoder = buildTrainingGraph(
      { ...tiny.parts, encoder: vitModel, dropFirstEncoderToken: true, names: { encoderOutput: hiddenStateName(1) } },
      { stage, seed: 1 },
    );
    const fromFeatures = buildTrainingGraph(tiny.parts, { stage, seed: 1 });
    expect(withEncoder.imageInput).toBe('pixel_values');
    expect(withEncoder.imageDims).toEqual([3, 12, 12]);
    expect(withEncoder.projectedTokens(3)).toBe(9); // 3 x 3 patches, CLS dropped
    const vision = withEncoder.tensorNames.filter((n) => n.startsWith('model.vision_tower.'));
    expect(vision).toContain('model.vision_tower.embeddings.patch_embedding.weight');
    expect(withEncoder.frozen).toEqual(expect.arrayContaining(vision));
    expect(withEncoder.parameters.map((p) => p.name)).toEqual(fromFeatures.parameters.map((p) => p.name));

    const pixels = randomPixels('pixels', 12);
    const samples = [sample('a', 9, [5, 6], [9, 10]), sample('b', 9, [7], [11])];
    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    // The encoder-cache path: the ViT alone, penultimate hidden state, CLS dropped.
    const vitSession = await runtime.backend.createSession(encodeModel(vitModel));
    const features: Tensor<'float32'>[] = [];
    for (const p of pixels) {
      const out = (await vitSession.run({ pixel_values: createTensor('float32', [1, 3, 12, 12], p.data) }))[hiddenStateName(1)] as Tensor<'float32'>;
      features.push(createTensor('float32', [9, TINY.featureDim], out.data.slice(TINY.featureDim)));
    }
    await vitSession.release();

    const values = new Map(withEncoder.parameters.map((p) => [p.name, Float32Array.from(p.initial.data)]));
    const s1 = await createTrainingSession(runtime.backend, withEncoder);
    const s2 = await createTrainingSession(runtime.backend, fromFeatures);
    const a = await s1.step(
      prepareTrainingFeeds(
        withEncoder,
        samples,
        pixels.map((p) => [p]),
      ).feeds,
      values,
    );
    const b = await s2.step(
      prepareTrainingFeeds(
        fromFeatures,
        samples,
        features.map((f) => [f]),
      ).feeds,
      values,
    );
    await s1.release();
    await s2.release();
    expect(Math.abs(a.loss - b.loss) / Math.abs(b.loss)).toBeLessThan(1e-5);
    for (const p of withEncoder.parameters) {
      const x = a.gradients.get(p.name) as Float32Array;
      const y = b.gradients.get(p.name) as Float32Array;
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < y.length; i++) {
        diff = Math.max(diff, Math.abs(x[i] - y[i]));
        scale = Math.max(scale, Math.abs(y[i]));
      }
      expect(diff, p.name).toBeLessThanOrEqual(1e-5 * scale + 1e-12);
    }
  });

  it('unfrozen by one glob, exactly the ViT weights train (no builder constant); their gradients match central differences', { timeout: 600_000 }, async () => {
    const vit = resolveVitConfig({ imageSize: 8, patchSize: 4, hiddenSize: TINY.featureDim, numLayers: 2, numHeads: 2, intermediateSize: 16 });
    const vitWeights = createVitWeights(vit, 7);
    const tiny = createTinyLlava(8, { layers: 1 });
    const unfrozen: RecipeStageInput = { ...stage, trainables: [{ mode: 'trained', match: ['model.vision_tower.*', 'model.multi_modal_projector.*'] }] };
    const graph = buildTrainingGraph(
      { ...tiny.parts, encoder: buildVitModel(vit, vitWeights), dropFirstEncoderToken: true, names: { encoderOutput: hiddenStateName(1) } },
      { stage: unfrozen, seed: 1 },
    );
    // The independent list: the weights the ViT was built from, under transformers' LLaVA prefix.
    const tower = graph.parameters.filter((p) => p.name.startsWith('model.vision_tower.')).map((p) => p.name);
    expect(tower.sort()).toEqual([...vitWeights.keys()].map((n) => `model.vision_tower.${n.slice('vision_model.'.length)}`).sort());
    expect(graph.parameters.every((p) => p.initial.dtype === 'float32')).toBe(true);

    const pixels = randomPixels('unfrozen', 8);
    const samples = [sample('a', 4, [5, 6], [9, 10]), sample('b', 4, [7], [11])];
    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    const session = await createTrainingSession(runtime.backend, graph);
    const feeds = prepareTrainingFeeds(
      graph,
      samples,
      pixels.map((p) => [p]),
    ).feeds;
    const values = new Map(graph.parameters.map((p) => [p.name, Float32Array.from(p.initial.data)]));
    const tensors = ['embeddings.patch_embedding.weight', 'encoder.layers.0.self_attn.q_proj.weight', 'encoder.layers.0.mlp.fc1.weight', 'pre_layrnorm.weight'];
    await expectCentralDifferences(
      session,
      feeds,
      values,
      tensors.map((n) => `model.vision_tower.${n}`),
    );
    await session.release();
  });

  it("a Hugging Face tower's weights (names relative to its root) train under transformers' LLaVA names and shapes", { timeout: 600_000 }, async () => {
    // transformers' own state dict of a tiny LlavaForConditionalGeneration (CLIP tower: width 16, 2 layers, 28 px, patch 14).
    const dir = mkdtempSync(path.join(tmpdir(), 'vlit-llava-names-'));
    const out = path.join(dir, 'names.json');
    runReferencePython(new URL('../py/llava_tensor_names.py', import.meta.url).pathname, [out], { timeoutMs: 300_000 });
    const reference = new Map(Object.entries(JSON.parse(readFileSync(out, 'utf8')) as Record<string, number[]>));
    rmSync(dir, { recursive: true, force: true });
    const vit = resolveVitConfig({ imageSize: 28, patchSize: 14, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 32, hiddenAct: 'quick_gelu' });
    const tower = vitAsHfVisionTower(vit, createVitWeights(vit, 3));
    expect([...tower.weights.keys()]).toContain('embeddings.patch_embedding.weight'); // relative to the tower's root
    const encoder = buildHfVisionModel(tower.spec, tower.weights, { featureLayer: -1, selectStrategy: 'full' });
    const projector = { kind: 'mlp', inputDim: 16, hiddenDim: TINY.hidden, outputDim: TINY.hidden } as const;
    const graph = buildTrainingGraph(
      {
        ...createTinyLlava(2, { layers: 1 }).parts,
        connector: buildConnectorModel(projector, initConnectorWeights(projector, 2)),
        encoder,
        names: { encoderOutput: 'image_features' },
      },
      { stage: { ...stage, trainables: [{ mode: 'trained', match: ['model.vision_tower.*'] }] }, seed: 1 },
    );
    const trained = graph.parameters.filter((p) => p.name.startsWith('model.vision_tower.'));
    // Every tower tensor of transformers' model but post_layernorm (LLaVA reads hidden states, never the pooled output).
    const expected = [...reference.keys()].filter((n) => n.startsWith('model.vision_tower.') && !n.includes('.post_layernorm.'));
    expect(trained.map((p) => p.name).sort()).toEqual(expected.sort());
    for (const p of trained) expect(reference.get(p.name), p.name).toEqual([...p.initial.dims]);
    expect(trained.map((p) => p.name)).toContain('model.vision_tower.encoder.layers.1.mlp.fc2.weight');
  });
});
