// writeDataShards: the torchrun engine's data files. Samples read back from the shards (offsets,
// spans, pixel rows) must equal the samples given, however the shards are cut; pixels from
// `loadImages` are read shard by shard, never all up front.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createTensor, isVlitError, parseSafetensors, type Tensor } from '@vlit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDataShards, type TorchrunSample } from './job.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vlit-shards-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PIXELS = [3, 4, 4] as const;
const pixelBytes = 4 * 3 * 4 * 4;

/** Sample i: i % 3 images (pixels filled from the seed), a few tokens, spans at fixed places. */
function sample(i: number): { ids: number[]; images: Tensor<'float32'>[]; spans: TorchrunSample['imageSpans'] } {
  const rng = createRng(`shards-${i}`);
  const images = Array.from({ length: i % 3 }, () => {
    const t = createTensor('float32', [...PIXELS]);
    rng.fillNormal(t.data, 1);
    return t;
  });
  const ids = Array.from({ length: 3 + images.length * 2 + (i % 4) }, () => rng.int(5, 90));
  return { ids, images, spans: images.map((_, k) => ({ imageIndex: k, start: 1 + 2 * k, end: 3 + 2 * k })) };
}

/** Read every sample back from the shard files, as the Python worker indexes them (first + local offsets). */
function readBack(shards: Awaited<ReturnType<typeof writeDataShards>>) {
  const out: { ids: number[]; labels: number[]; spans: number[][]; pixels: number[][] }[] = [];
  for (const shard of shards) {
    const t = parseSafetensors(new Uint8Array(readFileSync(shard.file)));
    const ints = (name: string) => (t.tensors.has(name) ? Array.from(t.get(name).toTensor().data as BigInt64Array, Number) : null);
    const offsets = ints('sample_offsets') as number[];
    const ids = ints('input_ids') as number[];
    const labels = ints('labels') as number[];
    const spans = ints('image_spans') ?? [];
    const imageOffsets = ints('image_offsets');
    const pixels = t.tensors.has('pixel_values') ? t.get('pixel_values').toFloat32() : new Float32Array(0);
    expect(offsets.length - 1).toBe(shard.count);
    for (let local = 0; local < shard.count; local++) {
      const mine: number[][] = [];
      for (let k = 0; k < spans.length; k += 4) if (spans[k] === local) mine.push(spans.slice(k + 1, k + 4));
      const px: number[][] = [];
      if (imageOffsets) for (let m = imageOffsets[local]; m < imageOffsets[local + 1]; m++) px.push(Array.from(pixels.subarray(m * 48, (m + 1) * 48)));
      out.push({ ids: ids.slice(offsets[local], offsets[local + 1]), labels: labels.slice(offsets[local], offsets[local + 1]), spans: mine, pixels: px });
    }
  }
  return out;
}

describe('writeDataShards', () => {
  it('loadImages is read shard by shard, shards close at the pixel budget, and every sample reads back as given', async () => {
    const n = 23;
    const given = Array.from({ length: n }, (_, i) => sample(i));
    const out = path.join(dir, 'lazy');
    const loadedWhen: number[] = [];
    const samples: TorchrunSample[] = given.map((g, i) => ({
      id: `s${i}`,
      inputIds: g.ids,
      labels: g.ids.map((t, k) => (k % 2 ? t : -100)),
      imageSpans: g.spans,
      loadImages: async () => {
        // How many shards exist when this sample's pixels are read.
        loadedWhen[i] = readdirSync(out).filter((f) => f.endsWith('.safetensors')).length;
        return g.images;
      },
    }));
    // A shard closes once it holds 5 images' pixels, or 8 samples. Images per sample run 0,1,2,0,1,2,...
    // so by hand: 0+1+2+0+1+2 reaches 5 at the 6th sample, three times, and the last 5 samples hold 4.
    const shards = await writeDataShards(out, samples, { samplesPerShard: 8, maxShardPixelBytes: 5 * pixelBytes });
    expect(shards.map((s) => s.count)).toEqual([6, 6, 6, 5]);
    shards.forEach((s, k) => expect(s.first).toBe(k === 0 ? 0 : shards[k - 1].first + shards[k - 1].count));
    const imagesIn = (s: (typeof shards)[number]) => given.slice(s.first, s.first + s.count).reduce((a, g) => a + g.images.length, 0);
    for (const s of shards) {
      // Closed at the budget: every shard but the last holds 8 samples or reached 5 images with its last sample.
      if (s !== shards[shards.length - 1]) expect(s.count === 8 || imagesIn(s) >= 5).toBe(true);
      expect(imagesIn(s) - given[s.first + s.count - 1].images.length).toBeLessThan(5);
    }
    // Each sample's pixels were read while the shards before its own were already on disk, and no later.
    for (const [k, s] of shards.entries()) for (let i = s.first; i < s.first + s.count; i++) expect(loadedWhen[i], `sample ${i}`).toBe(k);
    const back = readBack(shards);
    back.forEach((b, i) => {
      expect(b.ids).toEqual(given[i].ids);
      expect(b.labels).toEqual(samples[i].labels);
      expect(b.spans).toEqual(given[i].spans.map((sp) => [sp.imageIndex, sp.start, sp.end]));
      expect(b.pixels).toEqual(given[i].images.map((t) => Array.from(t.data)));
    });
  });

  it('eager images and a sample whose span has no image: the same files, and a typed error naming the record', async () => {
    const given = Array.from({ length: 7 }, (_, i) => sample(i));
    const eager: TorchrunSample[] = given.map((g, i) => ({ id: `s${i}`, inputIds: g.ids, labels: g.ids, imageSpans: g.spans, images: g.images }));
    const back = readBack(await writeDataShards(path.join(dir, 'eager'), eager, { samplesPerShard: 3 }));
    expect(back.map((b) => b.pixels)).toEqual(given.map((g) => g.images.map((t) => Array.from(t.data))));
    const bad: TorchrunSample[] = [...eager];
    bad[4] = { ...eager[4], images: undefined, loadImages: async () => [] };
    const err = await writeDataShards(path.join(dir, 'bad'), bad).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
    expect((err as { details: { record: number } }).details.record).toBe(4);
    // One image size for the whole job (the worker stacks pixels across shards), even when the
    // odd image lands in a later shard.
    const odd: TorchrunSample[] = [...eager];
    odd[5] = { ...eager[5], images: [createTensor('float32', [3, 8, 8]), createTensor('float32', [3, 8, 8])] };
    const err2 = await writeDataShards(path.join(dir, 'odd'), odd, { samplesPerShard: 3 }).catch((e: unknown) => e);
    expect(isVlitError(err2, 'VLIT_VALIDATION')).toBe(true);
    expect((err2 as { details: { record: number } }).details.record).toBe(5);
  });
});
