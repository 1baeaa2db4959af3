import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng, createTensor, isVlitError, toFloat32, type Tensor } from '@vlit/core';
import { createGraph, encodeModel } from '@vlit/graph';
import { readSafetensorsFile, writeSafetensorsFile } from '@vlit/core/node';
import { maxAbsDiff } from '@vlit/test-kit';
import { RUNTIME_PLATFORMS, createRuntimePair, runReferencePython } from '@vlit/test-kit/node';
import { loadHfVisionEncoder, readHfVisionTowerWeights, saveHfVisionTower } from './node.js';
import { visionTowerTokens, type HfTowerFamily, type HfVisionTowerSpec } from './config.js';
import { createHfVisionEncoder, buildHfVisionModel, type HfVisionEncoder } from './vision-encoder.js';
import { visionTowerWeightShapes } from './weights.js';
import type { HfSelectStrategy } from './graph.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'py', 'hf_towers.py');
const runtimes = createRuntimePair();
const work = mkdtempSync(join(tmpdir(), 'vlit-hf-vision-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Ref = Map<string, { dims: number[]; data: Float32Array }>;
const refs = {} as Record<HfTowerFamily, Ref>;
const FAMILIES: HfTowerFamily[] = ['clip', 'siglip'];

beforeAll(async () => {
  for (const family of FAMILIES) {
    runReferencePython(script, ['vision', family, join(work, family)], { timeoutMs: 300_000 });
    const file = await readSafetensorsFile(join(work, family, 'ref.safetensors'));
    refs[family] = new Map([...file.tensors].map(([k, v]) => [k, { dims: [...v.shape], data: v.toFloat32() }]));
  }
}, 600_000);

function pixels(ref: Ref, key = 'pixel_values'): Tensor<'float32'> {
  const p = ref.get(key)!;
  return createTensor('float32', p.dims, p.data);
}

/** transformers' LLaVA selection, written out on the reference hidden states: pick, drop token 0 for `default`, concat widths. */
function expectedFeatures(ref: Ref, layers: number[], strategy: HfSelectStrategy, prefix = ''): { dims: number[]; data: Float32Array } {
  const count = [...ref.keys()].filter((k) => k.startsWith(`${prefix}hidden_states.`)).length;
  const hs = layers.map((l) => ref.get(`${prefix}hidden_states.${l < 0 ? count + l : l}`)!);
  const [n, t, d] = hs[0].dims;
  const drop = strategy === 'default' ? 1 : 0;
  const T = t - drop;
  const W = d * hs.length;
  const out = new Float32Array(n * T * W);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < T; k++) hs.forEach((h, j) => out.set(h.data.subarray((i * t + k + drop) * d, (i * t + k + drop + 1) * d), (i * T + k) * W + j * d));
  return { dims: [n, T, W], data: out };
}

const CASES: { featureLayer: number | number[]; selectStrategy: HfSelectStrategy; what: string }[] = [
  { featureLayer: -2, selectStrategy: 'default', what: 'penultimate layer, default strategy' },
  { featureLayer: -2, selectStrategy: 'full', what: 'penultimate layer, full strategy' },
  { featureLayer: -3, selectStrategy: 'default', what: 'negative layer -3' },
  { featureLayer: -1, selectStrategy: 'full', what: 'last layer' },
  { featureLayer: [-3, -1], selectStrategy: 'default', what: 'multi-layer concat [-3, -1]' },
];

describe.each(FAMILIES)('%s vision tower loaded from a transformers checkpoint folder', (family) => {
  describe.each(RUNTIME_PLATFORMS)('on %s', (platform) => {
    it.each(CASES)('selected features match transformers output_hidden_states: $what', async ({ featureLayer, selectStrategy }) => {
      const enc = await loadHfVisionEncoder(join(work, family, 'model'), { runtime: runtimes[platform], featureLayer, selectStrategy });
      try {
        const want = expectedFeatures(refs[family], typeof featureLayer === 'number' ? [featureLayer] : featureLayer, selectStrategy);
        const got = await enc.encodePixels(pixels(refs[family]));
        expect(got.dims).toEqual(want.dims);
        expect(enc.outputDim).toBe(want.dims[2]);
        expect(enc.tokensPerImage({ width: 640, height: 480 })).toBe(want.dims[1]);
        expect(maxAbsDiff(got.data, want.data)).toBeLessThan(1e-4);
      } finally {
        await enc.release();
      }
    });

    it('encode(images) runs the folder preprocessor_config.json and matches transformers processor + model', async () => {
      const enc = await loadHfVisionEncoder(join(work, family, 'model'), { runtime: runtimes[platform], featureLayer: -2, selectStrategy: 'full' });
      try {
        // The web codec needs browser APIs; the PNG is decoded once by the node codec for both runtimes.
        const image = await runtimes.node.images.decode(new Uint8Array(readFileSync(join(work, family, 'image.png'))));
        const got = await enc.encode([image]);
        const want = expectedFeatures(refs[family], [-2], 'full', 'image.');
        expect(got.dims).toEqual(want.dims);
        // The processor is Pillow-exact up to rounding of 8-bit resampling; features then agree closely.
        expect(maxAbsDiff(got.data, want.data)).toBeLessThan(1e-4);
      } finally {
        await enc.release();
      }
    });
  });

  it('a tower built by Vlit, saved with saveHfVisionTower, loads cleanly in transformers and matches', async () => {
    const spec: HfVisionTowerSpec = {
      family,
      hiddenSize: 24,
      intermediateSize: 40,
      numLayers: 2,
      numHeads: 3,
      imageSize: 24,
      patchSize: 6,
      numChannels: 3,
      layerNormEps: family === 'clip' ? 1e-5 : 1e-6,
      hiddenAct: family === 'clip' ? 'quick_gelu' : 'gelu_tanh',
      hfHiddenAct: family === 'clip' ? 'quick_gelu' : 'gelu_pytorch_tanh',
      useHead: family === 'siglip',
    };
    const rng = createRng(`save-${family}`);
    const weights = new Map<string, Tensor<'float32'>>();
    for (const [name, shape] of visionTowerWeightShapes(spec)) {
      const t = createTensor('float32', shape);
      rng.fork(name).fillNormal(t.data, name.includes('norm') && name.endsWith('weight') ? 0.1 : 0.2, name.includes('norm') && name.endsWith('weight') ? 1 : 0);
      weights.set(name, t);
    }
    const dir = join(work, `saved-${family}`);
    const built = await createHfVisionEncoder({ backend: runtimes.node.backend, spec, weights, featureLayer: -1, selectStrategy: 'full' });
    await saveHfVisionTower(dir, built);
    const px = createTensor('float32', [2, 3, 24, 24]);
    rng.fork('pixels').fillNormal(px.data, 1);
    await writeSafetensorsFile(join(dir, 'pixels.safetensors'), { pixel_values: px });
    runReferencePython(script, ['run-saved', dir, join(dir, 'pixels.safetensors'), join(dir, 'out.safetensors')], { timeoutMs: 300_000 });
    const out = await readSafetensorsFile(join(dir, 'out.safetensors'));
    const ref: Ref = new Map([...out.tensors].map(([k, v]) => [k, { dims: [...v.shape], data: v.toFloat32() }]));
    expect(ref.size).toBe(spec.numLayers + 1);
    const got = await built.encodePixels(px);
    expect(maxAbsDiff(got.data, expectedFeatures(ref, [-1], 'full').data)).toBeLessThan(1e-4);
    await built.release();
    // And Vlit reads its own folder back: same spec, same selected features.
    const again = await loadHfVisionEncoder(dir, { runtime: runtimes.node, featureLayer: -1, selectStrategy: 'full' });
    expect(again.spec).toEqual(spec);
    expect(maxAbsDiff((await again.encodePixels(px)).data, expectedFeatures(ref, [-1], 'full').data)).toBeLessThan(1e-4);
    await again.release();
  }, 300_000);

  it('a loaded tower saved as sharded bf16 loads in transformers and in Vlit with the same features', async () => {
    const enc = await loadHfVisionEncoder(join(work, family, 'model'), { runtime: runtimes.node, featureLayer: -1, selectStrategy: 'full' });
    const dir = join(work, `saved-bf16-${family}`);
    await saveHfVisionTower(dir, enc, { dtype: 'BF16', maxShardBytes: 20_000 });
    await enc.release();
    const shards = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThanOrEqual(3);
    runReferencePython(script, ['run-saved', dir, join(work, family, 'ref.safetensors'), join(dir, 'out.safetensors')], { timeoutMs: 300_000 });
    const out = await readSafetensorsFile(join(dir, 'out.safetensors'));
    const ref: Ref = new Map([...out.tensors].map(([k, v]) => [k, { dims: [...v.shape], data: v.toFloat32() }]));
    const again = await loadHfVisionEncoder(dir, { runtime: runtimes.node, featureLayer: -1, selectStrategy: 'full' });
    try {
      // Both sides widen the same bf16 values to float32, so they agree as closely as the f32 checkpoint did.
      expect(maxAbsDiff((await again.encodePixels(pixels(refs[family]))).data, expectedFeatures(ref, [-1], 'full').data)).toBeLessThan(1e-4);
    } finally {
      await again.release();
    }
  }, 300_000);

  it('exposes the graph for composition: pixel_values -> image_features, and addToGraph inside a bigger graph', async () => {
    const { spec, weights } = await readHfVisionTowerWeights(join(work, family, 'model'));
    const model = buildHfVisionModel(spec, weights, { featureLayer: -2, selectStrategy: 'default', namePrefix: 'vision_tower.' });
    const { tokens } = visionTowerTokens(spec);
    const out = model.graph?.output?.find((o) => o.name === 'image_features');
    expect(out?.type?.tensorType?.shape?.dim?.map((d) => (d.dimValue != null ? Number(d.dimValue) : d.dimParam))).toEqual([
      'batch',
      tokens - 1,
      spec.hiddenSize,
    ]);
    const names = new Set(model.graph?.initializer?.map((t) => t.name));
    for (const [name] of visionTowerWeightShapes(spec).filter(([n]) => n.startsWith('embeddings.') || n.startsWith('encoder.layers.0.'))) {
      expect(names.has(`vision_tower.${name}`)).toBe(true);
    }
    // Composition: the tower inside a caller's graph, followed by the caller's own op (a mean over tokens).
    const enc = await loadHfVisionEncoder(join(work, family, 'model'), { runtime: runtimes.node, featureLayer: -2, selectStrategy: 'default' });
    const g = createGraph({ name: 'composed', opset: 20 });
    const px = g.input('pixels', 'float32', ['batch', 3, spec.imageSize, spec.imageSize]);
    g.output(g.reduceMean(enc.addToGraph(g, px, { namePrefix: 'vision_tower.' }), [1], { keepdims: false }), 'pooled');
    const session = await runtimes.node.backend.createSession(encodeModel(g.toModel()));
    const res = await session.run({ pixels: pixels(refs[family]) });
    await session.release();
    await enc.release();
    const want = expectedFeatures(refs[family], [-2], 'default');
    const [n, T, D] = want.dims;
    const mean = new Float32Array(n * D);
    for (let i = 0; i < n; i++) for (let k = 0; k < T; k++) for (let d = 0; d < D; d++) mean[i * D + d] += want.data[(i * T + k) * D + d] / T;
    expect(maxAbsDiff(toFloat32(res.pooled), mean)).toBeLessThan(1e-4);
  });
});

describe.each(FAMILIES)('the %s tower of a LLaVA checkpoint folder', (family) => {
  const dir = join(work, `llava-${family}`);
  beforeAll(() => {
    runReferencePython(script, ['llava', family, dir], { timeoutMs: 300_000 });
  }, 300_000);

  it.each(RUNTIME_PLATFORMS)(
    "loads alone with the config's feature layer and strategy and matches LLaVA's get_image_features on %s",
    async (platform) => {
      const ref = (await readSafetensorsFile(join(dir, 'ref.safetensors'))).tensors;
      const enc = await loadHfVisionEncoder(join(dir, 'model'), { runtime: runtimes[platform] });
      try {
        // CLIP: vision_feature_layer -2 + default; SigLIP: [-3, -1] + full (read from config.json, not passed).
        expect(enc.selection.featureLayers).toEqual(family === 'clip' ? [2] : [1, 3]);
        const px = ref.get('pixel_values')!;
        const got = await enc.encodePixels(createTensor('float32', [...px.shape], px.toFloat32()));
        const want = ref.get('features')!;
        expect(got.dims).toEqual([...want.shape]);
        expect(maxAbsDiff(got.data, want.toFloat32())).toBeLessThan(1e-4);
      } finally {
        await enc.release();
      }
    },
    300_000,
  );
});

describe('bad input is a typed error that names the thing', () => {
  it('an unsupported model_type names it and lists the supported ones', async () => {
    const dir = join(work, 'bad-type');
    const { writeCheckpointFolder } = await import('@vlit/core/node');
    await writeCheckpointFolder(dir, { config: { model_type: 'dinov2', hidden_size: 8 }, tensors: { x: createTensor('float32', [1]) } });
    const err = await loadHfVisionEncoder(dir, { runtime: runtimes.node }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_UNSUPPORTED')).toBe(true);
    expect(String((err as Error).message)).toContain('dinov2');
    expect(String((err as Error).message)).toContain('clip_vision_model');
    expect(String((err as Error).message)).toContain('siglip_vision_model');
  });

  it('a config missing a required field names the field', async () => {
    const src = JSON.parse(readFileSync(join(work, 'clip', 'model', 'config.json'), 'utf8')) as Record<string, unknown>;
    delete src.patch_size;
    const dir = join(work, 'missing-field');
    const { writeCheckpointFolder } = await import('@vlit/core/node');
    await writeCheckpointFolder(dir, { config: src, tensors: { x: createTensor('float32', [1]) } });
    const err = await loadHfVisionEncoder(dir, { runtime: runtimes.node }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
    expect((err as { details: { field?: string } }).details.field).toBe('patch_size');
  });

  it('a tensor whose shape disagrees with the config names the tensor and both shapes', async () => {
    const src = JSON.parse(readFileSync(join(work, 'clip', 'model', 'config.json'), 'utf8')) as Record<string, unknown>;
    const dir = join(work, 'bad-shape');
    const { writeCheckpointFolder } = await import('@vlit/core/node');
    // intermediate_size 48 in the tensors, 56 in the config.
    const file = await readSafetensorsFile(join(work, 'clip', 'model', 'model.safetensors'));
    const tensors = new Map([...file.tensors].map(([k, v]) => [k, createTensor('float32', [...v.shape], v.toFloat32())]));
    await writeCheckpointFolder(dir, { config: { ...src, intermediate_size: 56 }, tensors });
    const err = await loadHfVisionEncoder(dir, { runtime: runtimes.node }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_TENSOR_SHAPE')).toBe(true);
    const msg = String((err as Error).message);
    expect(msg).toContain('encoder.layers.0.mlp.fc1.weight');
    expect(msg).toContain('[48, 32]');
    expect(msg).toContain('[56, 32]');
  });

  it('a feature layer outside the hidden states and a bad strategy are InvalidArgument errors naming the option', async () => {
    const dir = join(work, 'clip', 'model');
    const e1 = await loadHfVisionEncoder(dir, { runtime: runtimes.node, featureLayer: -5 }).catch((e: unknown) => e);
    expect(isVlitError(e1, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    expect((e1 as { details: { field?: string } }).details.field).toBe('featureLayer');
    const e2 = await loadHfVisionEncoder(dir, { runtime: runtimes.node, selectStrategy: 'patch' as HfSelectStrategy }).catch((e: unknown) => e);
    expect(isVlitError(e2, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    expect((e2 as { details: { field?: string } }).details.field).toBe('selectStrategy');
  });

  it('pixels of the wrong size are a TensorShapeError', async () => {
    const enc: HfVisionEncoder = await loadHfVisionEncoder(join(work, 'siglip', 'model'), { runtime: runtimes.node });
    const err = await enc.encodePixels(createTensor('float32', [1, 3, 16, 16])).catch((e: unknown) => e);
    await enc.release();
    expect(isVlitError(err, 'VLIT_TENSOR_SHAPE')).toBe(true);
  });
});
