import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensor, isVlitError, type ChatMessage, type RawImage, type SafetensorsFile, type VisionLanguageRequest } from '@vlit/core';
import { readSafetensorsFile, writeSafetensorsFile } from '@vlit/core/node';
import { createHfVisionEncoder, createVitWeights, llavaNextLanguageTokens, planVisualTokens, preprocessBatch, resolveVitConfig } from '@vlit/encoders';
import { loadHfVisionEncoder } from '@vlit/encoders/node';
import { maxAbsDiff } from '@vlit/test-kit';
import { RUNTIME_PLATFORMS, createRuntimePair, runReferencePython } from '@vlit/test-kit/node';
import { createMlpConnector } from '@vlit/connectors';
import { writeConnectorFile } from '@vlit/connectors/node';
import { composeVisionLanguageModel, createLlamaDecoder, generate, tinyLlamaConfig } from '../index.js';
import {
  loadCheckpointChat,
  loadLlavaLanguageModel,
  loadLlavaParts,
  loadVisionLanguageModel,
  saveLlavaCheckpoint,
  vitAsHfVisionTower,
  type CheckpointVisionLanguageModel,
} from '../node.js';

// Same conversations as py/llava_models.py.
const TWO_IMAGES: ChatMessage[] = [
  {
    role: 'user',
    content: [
      { type: 'image' },
      { type: 'text', text: 'What is in the first picture?' },
      { type: 'image' },
      { type: 'text', text: 'And what changed in the second one?' },
    ],
  },
];
const WIDE: ChatMessage[] = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Describe the wide picture.' }] }];
const STEPS = 32;

const script = join(dirname(fileURLToPath(import.meta.url)), 'py', 'llava_models.py');
const runtimes = createRuntimePair();
let work: string;
let images: Record<string, RawImage>;
const disposers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vlit-llava-'));
  runReferencePython(script, ['make', work], { timeoutMs: 600_000 });
  const file = await readSafetensorsFile(join(work, 'images.safetensors'));
  images = {};
  for (const name of ['image0', 'image1', 'wide']) {
    const t = file.get(name).toTensor();
    const [height, width] = t.dims;
    images[name] = { width, height, channels: 3, data: new Uint8Array(t.data as Uint8Array) };
  }
}, 600_000);
afterAll(async () => {
  for (const d of disposers) await d();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function load(dir: string, platform: keyof typeof runtimes): Promise<CheckpointVisionLanguageModel> {
  const m = await loadVisionLanguageModel(dir, { runtime: runtimes[platform] });
  disposers.push(() => m.dispose());
  return m;
}

const f32 = (file: SafetensorsFile, name: string): Float32Array => file.get(name).toFloat32();
const ints = (file: SafetensorsFile, name: string): number[] => [...(file.get(name).toTensor().data as BigInt64Array)].map(Number);

/** Prompt ids, logits and 32 greedy tokens (KV cache) of a request, through the composed model's own steps. */
async function run(model: CheckpointVisionLanguageModel, request: VisionLanguageRequest) {
  const prepared = await model.prepareGeneration(request);
  const out = await model.languageModel.forward({ inputsEmbeds: prepared.embeds });
  out.cache?.dispose();
  const greedy = await generate(model.languageModel, { inputsEmbeds: prepared.embeds, inputIds: prepared.ids }, { maxNewTokens: STEPS, stopTokenIds: [] });
  return { ids: prepared.ids, logits: out.logits, tokens: greedy.tokenIds };
}

describe('LlavaForConditionalGeneration (CLIP tower + MLP projector + Llama) from a save_pretrained folder', () => {
  it.each(RUNTIME_PLATFORMS)(
    '%s: two images in one prompt expand as transformers expands them; logits within 1e-4; 32 greedy tokens with the KV cache identical',
    async (platform) => {
      const ref = await readSafetensorsFile(join(work, 'llava.ref.safetensors'));
      const model = await load(join(work, 'llava'), platform);
      const request = { messages: TWO_IMAGES, images: [images.image0, images.image1] };
      // The processor's pixels: the tower's processor gives the same (Pillow-exact resize + crop).
      const pixels = preprocessBatch(request.images, model.parts.tower.settings);
      expect(maxAbsDiff(pixels.data, f32(ref, 'pixel_values'))).toBeLessThanOrEqual(1e-5);
      const got = await run(model, request);
      const refIds = ints(ref, 'input_ids');
      expect(got.ids).toEqual(refIds);
      // The tokenizer adds BOS, so transformers' processor starts the prompt with it; so does Vlit's.
      expect(refIds[0]).toBe(model.tokenizer.tokenToId('<s>'));
      // One placeholder per feature row: (32 / 8)² patches, the class token dropped (`default`).
      expect(refIds.filter((t) => t === model.parts.spec.imageTokenId)).toHaveLength(2 * 16);
      expect(got.logits.dims).toEqual([1, refIds.length, 320]);
      expect(maxAbsDiff(got.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
      expect(got.tokens).toEqual(ints(ref, 'greedy'));
    },
    600_000,
  );

  it("the same weights under transformers 5's module names (model.language_model.*, lm_head.*, model.vision_tower.*) give the same logits", async () => {
    const ref = await readSafetensorsFile(join(work, 'llava.ref.safetensors'));
    const model = await load(join(work, 'llava-internal'), 'node');
    expect(model.parts.layout.kind).toBe('modules');
    const prepared = await model.prepareGeneration({ messages: TWO_IMAGES, images: [images.image0, images.image1] });
    const out = await model.languageModel.forward({ inputsEmbeds: prepared.embeds });
    out.cache?.dispose();
    expect(maxAbsDiff(out.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
  }, 600_000);

  it('parts loaded alone (encoders’ tower loader, the LLaVA decoder, the projector) compose into the same model', async () => {
    const dir = join(work, 'llava');
    const ref = await readSafetensorsFile(join(work, 'llava.ref.safetensors'));
    const runtime = runtimes.node;
    const tower = await loadHfVisionEncoder(dir, { runtime });
    const languageModel = await loadLlavaLanguageModel(dir, { runtime });
    const parts = await loadLlavaParts(dir, { runtime });
    disposers.push(
      () => tower.release(),
      () => languageModel.dispose(),
      () => parts.dispose(),
    );
    const whole = await load(dir, 'node');
    const mixed = composeVisionLanguageModel({
      encoder: tower,
      connector: parts.projector,
      languageModel,
      template: whole.template,
      tokenizer: whole.tokenizer,
    });
    const prepared = await mixed.prepareGeneration({ messages: TWO_IMAGES, images: [images.image0, images.image1] });
    const out = await languageModel.forward({ inputsEmbeds: prepared.embeds });
    out.cache?.dispose();
    expect(maxAbsDiff(out.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
  }, 600_000);
});

describe('LlavaNextForConditionalGeneration: anyres tiles, unpadding and image_newline', () => {
  it.each(RUNTIME_PLATFORMS)(
    '%s: a non-square image gives the planner’s token count, transformers’ prompt and logits within 1e-4',
    async (platform) => {
      const ref = await readSafetensorsFile(join(work, 'llava_next.ref.safetensors'));
      const model = await load(join(work, 'llava_next'), platform);
      const wide = images.wide;
      const size = { width: wide.width, height: wide.height };
      const vision = model.nextVision!;
      // The planner's counts, transformers' processor count and the packed features all agree.
      const planned = planVisualTokens(size, vision.plan);
      expect(planned.views).toBe(3);
      expect(planned.languageModelTokens).toBe(llavaNextLanguageTokens(size, vision.plan));
      expect(planned.languageModelTokens).toBe(ints(ref, 'image_tokens')[0]);
      // Base view + 2 tiles, each preprocessed as LlavaNextImageProcessor does.
      const views = vision.preprocess(wide);
      expect(views.dims).toEqual([3, 3, 32, 32]);
      expect(maxAbsDiff(views.data, f32(ref, 'pixel_values'))).toBeLessThanOrEqual(1e-5);
      const packed = await vision.encode([wide]);
      expect(packed.dims).toEqual([1, planned.languageModelTokens, 48]);
      const got = await run(model, { messages: WIDE, images: [wide] });
      expect(got.ids).toEqual(ints(ref, 'input_ids'));
      expect(maxAbsDiff(got.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
      expect(got.tokens).toEqual(ints(ref, 'greedy'));
    },
    600_000,
  );
});

describe('saving: transformers loads what Vlit writes', () => {
  it.each(RUNTIME_PLATFORMS)(
    "%s: Vlit's own ViT + MLP connector + Llama, saved as a LLaVA folder, loads with LlavaForConditionalGeneration.from_pretrained and gives Vlit's logits",
    async (platform) => {
      const runtime = runtimes[platform];
      const chat = await loadCheckpointChat(join(work, 'llava'));
      const vit = resolveVitConfig({ imageSize: 32, patchSize: 8, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, hiddenAct: 'quick_gelu' });
      const { spec, weights } = vitAsHfVisionTower(vit, createVitWeights(vit, 'llava-save-vit'));
      const tower = await createHfVisionEncoder({ backend: runtime.backend, spec, weights, featureLayer: -2, selectStrategy: 'default' });
      const connector = createMlpConnector({ inputDim: 32, outputDim: 48 }, { backend: runtime.backend, seed: 'llava-save-mlp' });
      const languageModel = await createLlamaDecoder({
        config: tinyLlamaConfig({ hiddenSize: 48, vocabSize: chat.tokenizer.vocabSize, intermediateSize: 96, bosTokenId: 1, eosTokenId: 2 }),
        seed: 'llava-save-llama',
        backend: runtime.backend,
      });
      disposers.push(
        () => tower.release(),
        () => connector.dispose(),
        () => languageModel.dispose(),
      );
      const vlit = composeVisionLanguageModel({ encoder: tower, connector, languageModel, template: chat.template, tokenizer: chat.tokenizer });
      const dir = join(work, `vlit-saved-${platform}`);
      await saveLlavaCheckpoint(dir, vlit, { imageTokenId: chat.tokenizer.tokenToId('<image>')!, tokenizerDir: join(work, 'llava') });

      const refFile = join(work, `vlit-saved-${platform}.ref.safetensors`);
      runReferencePython(script, ['check', dir, join(work, 'images.safetensors'), refFile], { timeoutMs: 300_000 });
      const meta = JSON.parse(readFileSync(`${refFile}.json`, 'utf8')) as { class: string; processor: string };
      expect(meta).toMatchObject({ class: 'LlavaForConditionalGeneration', processor: 'LlavaProcessor' });
      const ref = await readSafetensorsFile(refFile);
      const request = { messages: TWO_IMAGES, images: [images.image0, images.image1] };
      const prepared = await vlit.prepareGeneration(request);
      expect(prepared.ids).toEqual(ints(ref, 'input_ids'));
      const out = await languageModel.forward({ inputsEmbeds: prepared.embeds });
      out.cache?.dispose();
      expect(maxAbsDiff(out.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
      const greedy = await generate(languageModel, { inputsEmbeds: prepared.embeds, inputIds: prepared.ids }, { maxNewTokens: STEPS, stopTokenIds: [] });
      expect(greedy.tokenIds).toEqual(ints(ref, 'greedy'));

      // And Vlit reads its own folder back (transformers 4's `vision_tower.vision_model.*` names) to the same logits.
      const again = await load(dir, platform);
      const back = await again.languageModel.forward({ inputsEmbeds: (await again.prepareGeneration(request)).embeds });
      back.cache?.dispose();
      expect(maxAbsDiff(back.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
    },
    600_000,
  );

  it("a connector alone in original LLaVA's mm_projector naming (model.mm_projector.0/2) loads into LLaVA's nn.Sequential and projects the same", async () => {
    const parts = await loadLlavaParts(join(work, 'llava'), { runtime: runtimes.node });
    disposers.push(() => parts.dispose());
    const file = join(work, 'mm_projector.safetensors');
    await writeConnectorFile(file, parts.projector, { naming: 'llava' });
    const names = [...(await readSafetensorsFile(file)).tensors.keys()].sort();
    expect(names).toEqual(['model.mm_projector.0.bias', 'model.mm_projector.0.weight', 'model.mm_projector.2.bias', 'model.mm_projector.2.weight']);
    const features = createTensor(
      'float32',
      [2, 16, 32],
      Float32Array.from({ length: 2 * 16 * 32 }, (_, i) => Math.sin(i * 0.37)),
    );
    await writeSafetensorsFile(join(work, 'mm_features.safetensors'), { features });
    runReferencePython(script, ['mmproj', file, join(work, 'mm_features.safetensors'), join(work, 'mm_projected.safetensors')], { timeoutMs: 300_000 });
    const want = f32(await readSafetensorsFile(join(work, 'mm_projected.safetensors')), 'projected');
    expect(maxAbsDiff((await parts.projector.project(features)).data, want)).toBeLessThanOrEqual(1e-5);
  }, 600_000);
});

describe('bad input is a typed error naming the thing', () => {
  const variant = (from: string, to: string, change: (c: Record<string, unknown>) => void): string => {
    const dir = join(work, to);
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(join(work, from))) copyFileSync(join(work, from, f), join(dir, f));
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    change(c);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
    return dir;
  };
  const failure = (dir: string): Promise<unknown> =>
    loadVisionLanguageModel(dir, { runtime: runtimes.node }).then(
      () => undefined,
      (e: unknown) => e,
    );

  it('an unsupported model_type names it and lists the supported ones', async () => {
    const err = await failure(variant('llava', 'bad-type', (c) => (c.model_type = 'llava_onevision')));
    expect(isVlitError(err, 'VLIT_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toContain("'llava_onevision'");
    expect((err as Error).message).toContain('llava, llava_next');
    expect((err as { details: { supported: string[] } }).details.supported).toEqual(['llava', 'llava_next']);
  });

  it.each([
    ['llava', 'text_config', (c: Record<string, unknown>) => delete c.text_config],
    ['llava', 'text_config.hidden_size', (c: Record<string, unknown>) => delete (c.text_config as Record<string, unknown>).hidden_size],
    ['llava', 'vision_config.patch_size', (c: Record<string, unknown>) => delete (c.vision_config as Record<string, unknown>).patch_size],
    ['llava', 'image_token_index', (c: Record<string, unknown>) => delete c.image_token_index],
    ['llava_next', 'image_grid_pinpoints', (c: Record<string, unknown>) => delete c.image_grid_pinpoints],
  ] as const)('%s config missing %s names the field', async (from, field, change) => {
    const err = await failure(variant(from, `missing-${field}`, change));
    expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
    expect((err as Error).message).toContain(field);
    expect((err as { details: { field?: string } }).details.field).toBe(field);
  });
});
