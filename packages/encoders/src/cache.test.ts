import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '@vlit/runtime/node';
import type { EncodeImagesOptions, RawImage, Tensor, VisionEncoder } from '@vlit/core';
import { featureCacheKey, imageHash, withFeatureCache } from './node.js';
import { createVitEncoder } from './vit/vit-encoder.js';
import { syntheticImage } from './testing/fixtures.js';

const node = createNodeRuntime({ session: { intraOpThreads: 1 } });
const dir = mkdtempSync(join(tmpdir(), 'vlit-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Counts the images that reach the real encoder. */
function counting(inner: VisionEncoder & { preprocessingKey: string }): VisionEncoder & { preprocessingKey: string; calls: number[] } {
  const calls: number[] = [];
  return {
    id: inner.id,
    outputDim: inner.outputDim,
    preprocessingKey: inner.preprocessingKey,
    calls,
    tokensPerImage: (s) => inner.tokensPerImage(s),
    encode(images: readonly RawImage[], o?: EncodeImagesOptions): Promise<Tensor<'float32'>> {
      calls.push(images.length);
      return inner.encode(images, o);
    },
  };
}

describe('on-disk feature cache', () => {
  const config = { imageSize: 32, patchSize: 8, hiddenSize: 32, numHeads: 4, numLayers: 2 };
  const imgs = [0, 1, 2].map((i) => syntheticImage(40 + i, 30, 3, `cache${i}`));

  it('first call misses and encodes once, second call hits and returns identical features without the encoder', async () => {
    const vit = await createVitEncoder({ backend: node.backend, config, seed: 1 });
    const enc = counting(vit);
    const cached = withFeatureCache(enc, { dir: join(dir, 'a') });
    const first = await cached.encode(imgs);
    expect(cached.stats).toEqual({ hits: 0, misses: 3, invalid: 0 });
    expect(enc.calls).toEqual([3]);
    const second = await cached.encode(imgs);
    expect(cached.stats).toEqual({ hits: 3, misses: 3, invalid: 0 });
    expect(enc.calls).toEqual([3]);
    expect(second.data).toEqual(first.data);
    expect(second.dims).toEqual([3, 16, 32]);
    // A partial hit encodes only the new image.
    const fresh = syntheticImage(45, 30, 3, 'new');
    const mixed = await cached.encode([imgs[1], fresh]);
    expect(enc.calls).toEqual([3, 1]);
    expect(mixed.data.subarray(0, 16 * 32)).toEqual(first.data.subarray(16 * 32, 2 * 16 * 32));
    await vit.release();
  });

  it('the key changes with any pixel, the encoder id, and the preprocessing settings, and not with the bytes container', () => {
    const base = { imageHash: imageHash(imgs[0]), encoderId: 'enc-a', preprocessing: '{"crop":336}' };
    const k = featureCacheKey(base);
    const touched = { ...imgs[0], data: imgs[0].data.slice() };
    touched.data[touched.data.length - 1] ^= 1;
    expect(featureCacheKey({ ...base, imageHash: imageHash(touched) })).not.toBe(k);
    expect(featureCacheKey({ ...base, encoderId: 'enc-b' })).not.toBe(k);
    expect(featureCacheKey({ ...base, preprocessing: '{"crop":224}' })).not.toBe(k);
    // Same pixels in a different typed-array copy: same key.
    expect(featureCacheKey({ ...base, imageHash: imageHash({ ...imgs[0], data: new Uint8Array(imgs[0].data) }) })).toBe(k);
    // Same bytes, different shape: different key.
    expect(imageHash({ width: 30, height: 41, channels: 3, data: imgs[1].data.subarray(0, 30 * 41 * 3) })).not.toBe(
      imageHash({ width: 41, height: 30, channels: 3, data: imgs[1].data.subarray(0, 30 * 41 * 3) }),
    );
  });

  it('a different encoder (seed), feature selection or preprocessing misses; a corrupt file is re-encoded', async () => {
    const cacheDir = join(dir, 'b');
    const a = await createVitEncoder({ backend: node.backend, config, seed: 1 });
    const b = await createVitEncoder({ backend: node.backend, config, seed: 2 });
    const c = await createVitEncoder({ backend: node.backend, config, seed: 1, featureSelect: 'cls_patch' });
    const ca = withFeatureCache(a, { dir: cacheDir });
    await ca.encode(imgs);
    for (const other of [b, c]) {
      const co = withFeatureCache(other, { dir: cacheDir });
      await co.encode(imgs);
      expect(co.stats.misses).toBe(3);
      expect(co.stats.hits).toBe(0);
    }
    const pre = withFeatureCache(a, { dir: cacheDir, preprocessingKey: `${a.preprocessingKey}+pad` });
    await pre.encode(imgs);
    expect(pre.stats).toMatchObject({ hits: 0, misses: 3 });
    writeFileSync(ca.cachePath(imgs[0]), 'not safetensors');
    const again = withFeatureCache(a, { dir: cacheDir });
    const out = await again.encode(imgs);
    expect(again.stats).toEqual({ hits: 2, misses: 1, invalid: 1 });
    expect(out.data.subarray(0, 16 * 32)).toEqual((await a.encode([imgs[0]])).data);
    for (const e of [a, b, c]) await e.release();
  });
});
