import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isVlitError, parseSafetensors, serializeSafetensors, type RawImage } from '@vlit/core';
import { decodeModel, encodeModel } from '@vlit/graph';
import { maxAbsDiff } from '@vlit/test-kit';
import { createRuntimePair } from '@vlit/test-kit/node';
import { createOnnxVisionEncoder } from './onnx-encoder.js';
import { createVitEncoder, exportVitModel } from '../vit/vit-encoder.js';
import { resolveVitConfig } from '../vit/config.js';
import { createVitWeights, vitWeightsFromSafetensors } from '../vit/weights.js';
import { clipProcessorSettings } from '../preprocess/config.js';
import { preprocessImage } from '../preprocess/pipeline.js';
import { planBatch, planVisualTokens, llavaNextLanguageTokens } from '../planner.js';
import { loadOnnxVisionEncoder, readVitConfig, readVitWeights, saveVitExport } from '../node.js';
import { syntheticImage } from '../testing/fixtures.js';
import { vitReference } from '../testing/vit-reference.js';

const { node, web } = createRuntimePair();
const dir = mkdtempSync(join(tmpdir(), 'vlit-encoders-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tiny = resolveVitConfig({ imageSize: 32, patchSize: 8, hiddenSize: 32, numHeads: 4, numLayers: 3 });
const images: RawImage[] = [syntheticImage(50, 40, 3, 'a'), syntheticImage(32, 32, 3, 'b'), syntheticImage(20, 70, 3, 'c')];

/** Tokens [from, to) of a float64 hidden state [T, D], flattened. */
function tokens(h: Float64Array, D: number, from: number, to: number): Float64Array {
  return h.slice(from * D, to * D);
}

describe('the ViT exported as a real ONNX model directory, loaded by the generic ONNX encoder loader', () => {
  it('writes model.onnx + preprocessor_config.json + config.json + model.safetensors and loads them back', async () => {
    const exp = exportVitModel({ config: tiny, seed: 7 });
    const paths = await saveVitExport(join(dir, 'vit'), exp);
    expect(JSON.parse(readFileSync(paths.preprocessorConfig, 'utf8'))).toMatchObject({
      image_processor_type: 'CLIPImageProcessor',
      size: { shortest_edge: 32 },
      crop_size: { height: 32, width: 32 },
      resample: 3,
    });
    expect(await readVitConfig(paths.config)).toEqual(tiny);
    const weights = await readVitWeights(paths.weights, tiny);
    const original = createVitWeights(tiny, 7);
    for (const [name, t] of original) expect(weights.get(name)!.data, name).toEqual(t.data);
  });

  it.each([
    [-2, 'patch', 1, 17, 16],
    [-1, 'cls_patch', 0, 17, 17],
    [0, 'patch', 1, 17, 16],
    [2, 'cls_patch', 0, 17, 17],
  ] as const)('featureLayer %i / %s selects that hidden state and drops or keeps CLS, as the float64 reference', async (layer, select, from, to, n) => {
    const enc = await loadOnnxVisionEncoder({ backend: node.backend, dir: join(dir, 'vit'), featureLayer: layer, featureSelect: select });
    expect(enc.info).toMatchObject({ inputName: 'pixel_values', patchSize: 8, clsToken: true, modelTokens: 17, hiddenSize: 32, hiddenStates: 4 });
    expect(enc.outputDim).toBe(32);
    const out = await enc.encode(images);
    expect(out.dims).toEqual([3, n, 32]);
    const weights = createVitWeights(tiny, 7);
    const idx = layer < 0 ? 4 + layer : layer;
    for (let b = 0; b < images.length; b++) {
      const ref = vitReference(tiny, weights, preprocessImage(images[b], clipProcessorSettings(32)).data);
      expect(maxAbsDiff(out.data.subarray(b * n * 32, (b + 1) * n * 32), tokens(ref.hidden[idx], 32, from, to))).toBeLessThan(1e-4);
    }
    expect(enc.tokensPerImage({ width: 999, height: 3 })).toBe(n);
    await enc.release();
  });

  it('a ViT built from safetensors weights (Hugging Face names) gives the same features as the seeded one', async () => {
    const file = parseSafetensors(exportVitModel({ config: tiny, seed: 7 }).safetensors);
    const fromFile = await createVitEncoder({ backend: node.backend, config: tiny, weights: vitWeightsFromSafetensors(tiny, file) });
    const seeded = await createVitEncoder({ backend: node.backend, config: tiny, seed: 7 });
    expect((await fromFile.encode(images)).data).toEqual((await seeded.encode(images)).data);
    const other = await createVitEncoder({ backend: node.backend, config: tiny, seed: 8 });
    // A NaN must not pass as "different", so it propagates here instead of counting as Infinity.
    expect(maxAbsDiff((await other.encode(images)).data, (await seeded.encode(images)).data, { nan: 'propagate' })).toBeGreaterThan(1e-2);
    expect(other.id).not.toBe(seeded.id);
    for (const e of [fromFile, seeded, other]) await e.release();
  });

  it('a model without hidden-state outputs: a clear NotFoundError, and exposeTensor makes an inner tensor usable', async () => {
    const model = decodeModel(exportVitModel({ config: tiny, seed: 7 }).model);
    // Keep only last_hidden_state and pooler_output, as a plain CLIPVisionModel export has.
    const g = model.graph!;
    g.output = g.output.filter((o) => !String(o.name).startsWith('hidden_states'));
    const bytes = encodeModel(model);
    const settings = clipProcessorSettings(32);
    const err = await createOnnxVisionEncoder({ backend: node.backend, model: bytes, preprocessor: settings }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
    expect(String((err as Error).message)).toMatch(/exposeTensor/);
    const last = await createOnnxVisionEncoder({ backend: node.backend, model: bytes, preprocessor: settings, featureLayer: -1 });
    const exposed = await createOnnxVisionEncoder({ backend: node.backend, model: bytes, preprocessor: settings, exposeTensor: 'hidden_states.2' });
    const ref = vitReference(tiny, createVitWeights(tiny, 7), preprocessImage(images[0], settings).data);
    expect(maxAbsDiff((await last.encode([images[0]])).data, tokens(ref.hidden[3], 32, 1, 17))).toBeLessThan(1e-4);
    expect(maxAbsDiff((await exposed.encode([images[0]])).data, tokens(ref.hidden[2], 32, 1, 17))).toBeLessThan(1e-4);
    const bad = await createOnnxVisionEncoder({
      backend: node.backend,
      model: exportVitModel({ config: tiny }).model,
      preprocessor: settings,
      featureLayer: 4,
    }).catch((e: unknown) => e);
    expect(isVlitError(bad, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    await last.release();
    await exposed.release();
  });

  it('safetensors: a LLaVA-style prefix is stripped; a missing or misshapen tensor is an error naming the file and tensor', async () => {
    const weights = createVitWeights(tiny, 3);
    const prefixed = Object.fromEntries([...weights].map(([k, v]) => [`vision_tower.${k}`, v]));
    const path = join(dir, 'llava.safetensors');
    writeFileSync(path, serializeSafetensors(prefixed));
    const read = await readVitWeights(path, tiny, { prefix: 'vision_tower.' });
    expect(read.get('vision_model.post_layernorm.bias')!.data).toEqual(weights.get('vision_model.post_layernorm.bias')!.data);
    const missing = await readVitWeights(path, tiny).catch((e: unknown) => e);
    expect(isVlitError(missing, 'VLIT_NOT_FOUND')).toBe(true);
    expect((missing as { details: { file: string; field: string } }).details).toMatchObject({ file: path, field: 'vision_model.embeddings.class_embedding' });
    const wrong = Object.fromEntries(weights);
    wrong['vision_model.encoder.layers.1.mlp.fc1.weight'] = createVitWeights({ ...tiny, intermediateSize: 64 }, 3).get(
      'vision_model.encoder.layers.1.mlp.fc1.weight',
    )!;
    writeFileSync(join(dir, 'wrong.safetensors'), serializeSafetensors(wrong));
    const shape = await readVitWeights(join(dir, 'wrong.safetensors'), tiny).catch((e: unknown) => e);
    expect(isVlitError(shape, 'VLIT_TENSOR_SHAPE')).toBe(true);
    expect((shape as Error).message).toMatch(/layers\.1\.mlp\.fc1\.weight.*\[64, 32\].*\[128, 32\]/);
  });

  it('the loader names the file when the directory lacks its preprocessor config', async () => {
    const err = await loadOnnxVisionEncoder({ backend: node.backend, dir: join(dir, 'missing') }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
    expect((err as { details: { file: string } }).details.file).toBe(join(dir, 'missing', 'preprocessor_config.json'));
  });
});

describe('node and web runtimes agree on the same ViT', () => {
  it('every feature within 1e-4 (64 px, patch 8, width 64, 4 heads, 3 layers, 4 images)', async () => {
    const config = { imageSize: 64, patchSize: 8, hiddenSize: 64, numHeads: 4, numLayers: 3 };
    const a = await createVitEncoder({ backend: node.backend, config, seed: 'xrt' });
    const b = await createVitEncoder({ backend: web.backend, config, seed: 'xrt' });
    const imgs = [0, 1, 2, 3].map((i) => syntheticImage(60 + 17 * i, 90 - 9 * i, 3, `xrt${i}`));
    const fa = await a.encode(imgs);
    const fb = await b.encode(imgs);
    expect(fa.dims).toEqual([4, 64, 64]);
    expect(fb.dims).toEqual(fa.dims);
    expect(a.id).toBe(b.id);
    expect(maxAbsDiff(fa.data, fb.data)).toBeLessThan(1e-4);
    await a.release();
    await b.release();
  });
});

describe('the token planner predicts the encoder output before anything runs', () => {
  const sizes = [
    { width: 50, height: 40 },
    { width: 100, height: 40 },
    { width: 30, height: 95 },
    { width: 64, height: 64 },
    { width: 200, height: 33 },
    { width: 17, height: 16 },
  ];

  it('fixed resolution, with and without a CLS token, patch and cls_patch', async () => {
    for (const [clsToken, select] of [
      [true, 'patch'],
      [true, 'cls_patch'],
      [false, 'patch'],
      [false, 'cls_patch'],
    ] as const) {
      const enc = await createVitEncoder({ backend: node.backend, config: { ...tiny, clsToken }, featureSelect: select });
      for (const s of sizes.slice(0, 3)) {
        const img = syntheticImage(s.width, s.height, 3, 'plan');
        const predicted = planVisualTokens(s, enc.plan);
        expect(predicted.tokens).toBe(enc.tokensPerImage(s));
        expect((await enc.encode([img])).dims).toEqual([1, predicted.tokens, enc.outputDim]);
      }
      expect(enc.tokensPerImage({ width: 1, height: 1 })).toBe(16 + (clsToken && select === 'cls_patch' ? 1 : 0));
      await enc.release();
    }
  });

  it('anyres: base view + grid tiles, for every size, equals the encoder output dims', async () => {
    const gridPinpoints: [number, number][] = [
      [32, 64],
      [64, 32],
      [64, 64],
      [96, 32],
      [32, 96],
    ];
    const enc = await createVitEncoder({ backend: node.backend, config: tiny, tiling: { kind: 'anyres', gridPinpoints } });
    for (const s of sizes) {
      const plan = planVisualTokens(s, enc.plan);
      const out = await enc.encode([syntheticImage(s.width, s.height, 3, `anyres${s.width}`)]);
      expect(out.dims, `${s.width}x${s.height}`).toEqual([1, plan.tokens, 32]);
      expect(plan.tokens).toBe(16 * plan.views);
    }
    // Two images of different grids in one call: a typed error, not a silent mix-up.
    const err = await enc.encode([syntheticImage(100, 40, 3, 'x'), syntheticImage(64, 64, 3, 'y')]).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    await enc.release();
  });

  it('LLaVA-NeXT language-side count, hand-worked: 1000x400 at 336/14 -> 2040 tokens (4 views, 2304 encoder tokens)', () => {
    const plan = {
      kind: 'anyres' as const,
      tileSize: 336,
      patchSize: 14,
      clsToken: true,
      featureSelect: 'patch' as const,
      gridPinpoints: [
        [336, 672],
        [672, 336],
        [672, 672],
        [1008, 336],
        [336, 1008],
      ] as [number, number][],
    };
    // Grid [336, 1008]: 24 x 72 features; image 1000x400 -> unpadded width int(1000 * 24/400) = 60 -> 24*60 + 24 newlines + 576 base.
    expect(llavaNextLanguageTokens({ width: 1000, height: 400 }, plan)).toBe(2040);
    const e = planVisualTokens({ width: 1000, height: 400 }, plan);
    expect(e).toMatchObject({ tokens: 2304, views: 4, languageModelTokens: 2040, grid: { rows: 1, cols: 3 } });
    // 672x336 fits [336, 672] exactly: 24*48 + 24 + 576.
    expect(llavaNextLanguageTokens({ width: 672, height: 336 }, plan)).toBe(1752);
  });

  it('Qwen2-VL pixel budget: 1920x1080 -> 1316x728 -> 94x52 patches -> 1222 merged tokens; a batch flags images over budget', () => {
    const plan = { kind: 'smart' as const, patchSize: 14, mergeSize: 2, minPixels: 56 * 56, maxPixels: 28 * 28 * 1280 };
    expect(planVisualTokens({ width: 1920, height: 1080 }, plan)).toMatchObject({
      tokens: 1222,
      viewSize: { width: 1316, height: 728 },
      grid: { rows: 52, cols: 94 },
    });
    const b = planBatch(
      [
        { width: 1920, height: 1080 },
        { width: 224, height: 224 },
      ],
      plan,
      { maxTokensPerImage: 1000 },
    );
    // 224x224 -> 224x224 -> 16x16 patches -> 64 tokens.
    expect(b.images[1].tokens).toBe(64);
    expect(b.totalTokens).toBe(1286);
    expect(b.overBudget).toEqual([0]);
    expect(b.inputBytes).toBe((3 * 1316 * 728 + 3 * 224 * 224) * 4);
  });
});
