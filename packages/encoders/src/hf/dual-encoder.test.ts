import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensor, isVlitError, type Tokenizer } from '@vlit/core';
import { readSafetensorsFile, writeCheckpointFolder } from '@vlit/core/node';
import { imageTextRelevance } from '@vlit/data';
import { loadTokenizerDir } from '@vlit/templates/node';
import { maxAbsDiff } from '@vlit/test-kit';
import { RUNTIME_PLATFORMS, createRuntimePair, runReferencePython } from '@vlit/test-kit/node';
import { loadHfDualEncoder, loadHfVisionEncoder } from './node.js';
import type { HfTowerFamily } from './config.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'py', 'hf_towers.py');
const runtimes = createRuntimePair();
const work = mkdtempSync(join(tmpdir(), 'vlit-hf-dual-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Ref = Map<string, { dims: number[]; data: Float32Array }>;
const FAMILIES: HfTowerFamily[] = ['clip', 'siglip'];
const refs = {} as Record<HfTowerFamily, Ref>;
const ids = {} as Record<HfTowerFamily, number[][]>;
const texts = {} as Record<HfTowerFamily, string[]>;
const tokenizers = {} as Record<HfTowerFamily, Tokenizer>;

beforeAll(async () => {
  for (const family of FAMILIES) {
    runReferencePython(script, ['dual', family, join(work, family)], { timeoutMs: 300_000 });
    const file = await readSafetensorsFile(join(work, family, 'ref.safetensors'));
    refs[family] = new Map([...file.tensors].map(([k, v]) => [k, { dims: [...v.shape], data: v.toFloat32() }]));
    ids[family] = JSON.parse(readFileSync(join(work, family, 'ids.json'), 'utf8')) as number[][];
    texts[family] = JSON.parse(readFileSync(join(work, family, 'texts.json'), 'utf8')) as string[];
    tokenizers[family] = (await loadTokenizerDir(join(work, family, 'model'))).tokenizer;
  }
}, 600_000);

function rows(t: { dims: number[]; data: Float32Array }): Float32Array[] {
  const [n, d] = t.dims;
  return Array.from({ length: n }, (_, i) => t.data.slice(i * d, (i + 1) * d));
}

describe.each(FAMILIES)('%s dual encoder loaded from a transformers checkpoint folder', (family) => {
  describe.each(RUNTIME_PLATFORMS)('on %s', (platform) => {
    it('image embeddings, text embeddings and logits_per_image match transformers', async () => {
      const dual = await loadHfDualEncoder(join(work, family, 'model'), { runtime: runtimes[platform] });
      try {
        const ref = refs[family];
        const px = ref.get('pixel_values')!;
        const image = await dual.image.encodePixels(createTensor('float32', px.dims, px.data));
        const wantImage = ref.get('image_embeds')!;
        expect(image.dims).toEqual([wantImage.dims[0], 1, wantImage.dims[1]]);
        expect(dual.image.outputDim).toBe(dual.text.dim);
        expect(maxAbsDiff(image.data, wantImage.data)).toBeLessThan(1e-4);

        const text = await dual.text.embedIds(ids[family]);
        const wantText = ref.get('text_embeds')!;
        expect(text.length).toBe(wantText.dims[0]);
        expect(maxAbsDiff(Float32Array.from(text.flatMap((v) => [...v])), wantText.data)).toBeLessThan(1e-4);

        const logits = dual.logitsPerImage(rows({ dims: [wantImage.dims[0], wantImage.dims[1]], data: image.data }), text);
        expect(maxAbsDiff(logits.flat(), ref.get('logits_per_image')!.data)).toBeLessThan(1e-4);
      } finally {
        await dual.release();
      }
    });
  });

  it('text.embed(strings) through the folder tokenizer matches transformers on the same tokenizer.json', async () => {
    const dual = await loadHfDualEncoder(join(work, family, 'model'), { runtime: runtimes.node, tokenizer: tokenizers[family] });
    try {
      const got = await dual.text.embed(texts[family]);
      expect(maxAbsDiff(Float32Array.from(got.flatMap((v) => [...v])), refs[family].get('texts.text_embeds')!.data)).toBeLessThan(1e-4);
      if (family === 'siglip') expect(dual.text.tokenize(['green tree'])[0].length).toBe(dual.spec.text.maxPositions);
    } finally {
      await dual.release();
    }
  });

  it("runs @vlit/data's image–text relevance as a real CLIP-style pair (100·max(0, cos) of transformers' embeddings)", async () => {
    const dual = await loadHfDualEncoder(join(work, family, 'model'), { runtime: runtimes.node, tokenizer: tokenizers[family] });
    try {
      const image = await runtimes.node.images.decode(new Uint8Array(readFileSync(join(work, family, 'image.png'))));
      const scores = await imageTextRelevance(
        { encoder: dual.image, embedder: dual.text },
        texts[family].map(() => image),
        texts[family],
      );
      const img = refs[family].get('image.image_embeds')!.data;
      const txt = rows(refs[family].get('texts.text_embeds')!);
      const want = txt.map(
        (t) =>
          100 *
          Math.max(
            0,
            t.reduce((s, v, k) => s + v * img[k], 0),
          ),
      );
      expect(maxAbsDiff(scores, want)).toBeLessThan(1e-2);
    } finally {
      await dual.release();
    }
  });
});

describe('CLIP text pooling with the legacy eos_token_id 2', () => {
  it('pools the first position of the highest id, as transformers does for such configs', async () => {
    const dir = join(work, 'legacy');
    runReferencePython(script, ['clip-legacy-eos', dir], { timeoutMs: 300_000 });
    const want = (await readSafetensorsFile(join(dir, 'ref.safetensors'))).tensors.get('text_embeds')!.toFloat32();
    const seqs = JSON.parse(readFileSync(join(dir, 'ids.json'), 'utf8')) as number[][];
    const dual = await loadHfDualEncoder(join(dir, 'model'), { runtime: runtimes.node });
    try {
      const got = await dual.text.embedIds(seqs);
      expect(maxAbsDiff(Float32Array.from(got.flatMap((v) => [...v])), want)).toBeLessThan(1e-4);
    } finally {
      await dual.release();
    }
  }, 300_000);
});

describe('dual encoder bad input', () => {
  it('a vision-only folder is not a dual encoder: typed error naming model_type and listing clip, siglip', async () => {
    const src = JSON.parse(readFileSync(join(work, 'clip', 'model', 'config.json'), 'utf8')) as { vision_config: Record<string, unknown> };
    const dir = join(work, 'vision-only');
    await writeCheckpointFolder(dir, { config: src.vision_config, tensors: { x: createTensor('float32', [1]) } });
    const err = await loadHfDualEncoder(dir, { runtime: runtimes.node }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_UNSUPPORTED')).toBe(true);
    expect(String((err as Error).message)).toMatch(/clip_vision_model.*clip, siglip/);
  });

  it('a config without text_config names the field', async () => {
    const src = JSON.parse(readFileSync(join(work, 'siglip', 'model', 'config.json'), 'utf8')) as Record<string, unknown>;
    delete src.text_config;
    const dir = join(work, 'no-text');
    await writeCheckpointFolder(dir, { config: src, tensors: { x: createTensor('float32', [1]) } });
    const err = await loadHfDualEncoder(dir, { runtime: runtimes.node }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
    expect((err as { details: { field?: string } }).details.field).toBe('text_config');
  });

  it('strings without a tokenizer, over-long ids and CLIP ids without EOS are InvalidArgument errors', async () => {
    const dual = await loadHfDualEncoder(join(work, 'clip', 'model'), { runtime: runtimes.node });
    try {
      expect(isVlitError(await dual.text.embed(['a cat']).catch((e: unknown) => e), 'VLIT_INVALID_ARGUMENT')).toBe(true);
      expect(isVlitError(await dual.text.embedIds([Array.from({ length: 13 }, () => 63)]).catch((e: unknown) => e), 'VLIT_INVALID_ARGUMENT')).toBe(true);
      const noEos = await dual.text.embedIds([[62, 5, 6]]).catch((e: unknown) => e);
      expect(isVlitError(noEos, 'VLIT_INVALID_ARGUMENT')).toBe(true);
      expect((noEos as { details: { record?: number } }).details.record).toBe(0);
    } finally {
      await dual.release();
    }
  });

  it('the vision tower of a CLIPModel folder also loads alone as a LLaVA-style feature encoder', async () => {
    const enc = await loadHfVisionEncoder(join(work, 'clip', 'model'), { runtime: runtimes.node });
    try {
      // vision_model.* prefix found; CLIP default: layer -2, class token dropped: 16 patches of width 32.
      expect(enc.tokensPerImage({ width: 10, height: 10 })).toBe(16);
      expect(enc.outputDim).toBe(32);
    } finally {
      await enc.release();
    }
  });
});
