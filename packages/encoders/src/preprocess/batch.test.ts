import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensor, isVlitError, parseSafetensors, type RawImage } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { centerCrop, convertToRgb, imageToTensor } from './ops.js';
import { resizeImage, type ResampleFilter } from './resample.js';
import { clipProcessorSettings, type ImageProcessorSettings } from './config.js';
import { preprocessBatch, preprocessEncodedBatch, preprocessImage, resizeOutputSize } from './pipeline.js';
import { createPreprocessPool, preprocessFiles } from './pool-node.js';
import { syntheticImage, writeFixtureImages, type FixtureImage } from '../testing/fixtures.js';

const runtime = createNodeRuntime();
const dir = mkdtempSync(join(tmpdir(), 'vlit-preprocess-batch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The unfused composition of the pipeline's steps (each step checked against Pillow in preprocess.test.ts). */
function composed(image: RawImage, s: ImageProcessorSettings): Float32Array {
  let img = s.convertRgb ? convertToRgb(image) : image;
  if (s.resize) img = resizeImage(img, { ...resizeOutputSize(img, s.resize), filter: s.resample });
  if (s.centerCrop) img = centerCrop(img, s.centerCrop);
  return imageToTensor(img, s).data;
}

function sameBits(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return -1;
  let diff = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) diff++;
  return diff;
}

describe('the fused resize + crop + normalise kernel equals the step-by-step pipeline', () => {
  it('every filter, downscale, upscale, one-axis and no resize, odd crops, grey and RGBA inputs: bit-identical floats', () => {
    const filters: ResampleFilter[] = ['box', 'bilinear', 'hamming', 'bicubic', 'lanczos'];
    const cases: { w: number; h: number; ch: 1 | 3 | 4; resize: ImageProcessorSettings['resize']; crop: { width: number; height: number } | null }[] = [
      { w: 97, h: 61, ch: 3, resize: { shortestEdge: 40 }, crop: { width: 33, height: 40 } },
      { w: 40, h: 30, ch: 3, resize: { shortestEdge: 57 }, crop: { width: 57, height: 57 } },
      { w: 64, h: 64, ch: 3, resize: { height: 64, width: 17 }, crop: { width: 16, height: 63 } },
      { w: 64, h: 64, ch: 3, resize: { height: 5, width: 64 }, crop: { width: 60, height: 5 } },
      { w: 50, h: 50, ch: 3, resize: null, crop: { width: 21, height: 31 } },
      { w: 81, h: 200, ch: 1, resize: { shortestEdge: 32 }, crop: { width: 32, height: 32 } },
      { w: 120, h: 90, ch: 4, resize: { shortestEdge: 45 }, crop: null },
    ];
    let compared = 0;
    for (const [i, c] of cases.entries()) {
      const img = syntheticImage(c.w, c.h, c.ch, `fused:${i}`);
      for (const filter of filters) {
        const s: ImageProcessorSettings = { ...clipProcessorSettings(32), resize: c.resize, resample: filter, centerCrop: c.crop };
        expect(sameBits(preprocessImage(img, s).data, composed(img, s)), `case ${i} ${filter}`).toBe(0);
        compared++;
      }
    }
    expect(compared).toBe(35);
  });

  it('a crop larger than the resized image (zero padding) and pad-to-square still take the exact general path', () => {
    const img = syntheticImage(30, 20, 3, 'pad');
    const s: ImageProcessorSettings = { ...clipProcessorSettings(32), resize: { shortestEdge: 16 }, centerCrop: { width: 28, height: 28 } };
    const x = preprocessImage(img, s);
    expect(x.dims).toEqual([3, 28, 28]);
    expect(sameBits(x.data, composed(img, s))).toBe(0);
    // The padded corner holds the normalised value of a zero sample: (0 - mean) / std.
    expect(x.data[0]).toBeCloseTo(-0.48145466 / 0.26862954, 5);
  });

  it('preprocessBatch of mixed sizes equals the per-image results stacked', () => {
    const s = clipProcessorSettings(24);
    const imgs = [syntheticImage(50, 40, 3, 'b0'), syntheticImage(31, 77, 3, 'b1'), syntheticImage(24, 24, 1, 'b2')];
    const batch = preprocessBatch(imgs, s);
    expect(batch.dims).toEqual([3, 3, 24, 24]);
    const per = 3 * 24 * 24;
    imgs.forEach((im, i) => expect(sameBits(batch.data.subarray(i * per, (i + 1) * per), composed(im, s))).toBe(0));
  });
});

describe('batch APIs over encoded files match the PIL + numpy reference exactly', () => {
  let images: FixtureImage[] = [];
  let ref: ReturnType<typeof parseSafetensors>;
  const settings = clipProcessorSettings(336);
  const per = 3 * 336 * 336;
  beforeAll(async () => {
    images = await writeFixtureImages(runtime.images, join(dir, 'images'), 12, 'batch');
    const config = join(dir, 'preprocessor_config.json');
    writeFileSync(config, JSON.stringify({ size: { shortest_edge: 336 }, crop_size: { height: 336, width: 336 }, resample: 3 }));
    const out = join(dir, 'reference.safetensors');
    const script = new URL('../../parity/clip_reference.py', import.meta.url).pathname;
    execFileSync('/usr/bin/python3', [script, config, out, ...images.map((i) => i.path)], { stdio: 'pipe' });
    ref = parseSafetensors(new Uint8Array(readFileSync(out)));
  });

  const maxDiff = (x: Float32Array) => {
    let m = 0;
    for (let i = 0; i < images.length; i++) {
      const r = ref.get(`x.${i}`).toFloat32();
      for (let k = 0; k < per; k++) m = Math.max(m, Math.abs(r[k] - x[i * per + k]));
    }
    return m;
  };

  it('preprocessEncodedBatch (decode overlapped with resampling) over bytes', async () => {
    const x = await preprocessEncodedBatch(
      runtime.images,
      images.map((i) => new Uint8Array(readFileSync(i.path))),
      settings,
      { readAhead: 3 },
    );
    expect(x.dims).toEqual([images.length, 3, 336, 336]);
    expect(maxDiff(x.data)).toBe(0);
  });

  it('preprocessEncodedBatch into a given tensor: fills and returns it, equal to a fresh batch; a tensor of the wrong shape is refused', async () => {
    const bytes = images.map((i) => new Uint8Array(readFileSync(i.path)));
    const out = createTensor('float32', [images.length, 3, 336, 336]);
    out.data.fill(Number.NaN);
    const x = await preprocessEncodedBatch(runtime.images, bytes, settings, { out });
    expect(x).toBe(out);
    expect(maxDiff(out.data)).toBe(0);
    // Reused: a second batch (the images in reverse order) overwrites every value.
    out.data.fill(Number.NaN);
    const reversed = bytes.slice().reverse();
    expect(await preprocessEncodedBatch(runtime.images, reversed, settings, { out })).toBe(out);
    expect(sameBits(out.data, (await preprocessEncodedBatch(runtime.images, reversed, settings)).data)).toBe(0);
    // A tensor of the wrong size: refused after the first decode, before anything is written.
    const wrong = createTensor('float32', [images.length, 3, 224, 224]);
    const err = await preprocessEncodedBatch(runtime.images, bytes, settings, { out: wrong }).catch((e: unknown) => e);
    expect(isVlitError(err) && err.code).toBe('VLIT_INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(/out is float32 \[12, 3, 224, 224\] but this batch needs float32 \[12, 3, 336, 336\]/);
    expect(wrong.data.every((v) => v === 0)).toBe(true);
    // A wrong batch size or rank: refused before any decode.
    const short = createTensor('float32', [2, 3, 336, 336]);
    const err2 = await preprocessEncodedBatch(runtime.images, bytes, settings, { out: short }).catch((e: unknown) => e);
    expect((err2 as Error).message).toMatch(/out is float32 \[2, 3, 336, 336\] but a batch of 12 images needs float32 \[12, channels, height, width\]/);
    expect(isVlitError(err2) && err2.details.field).toBe('out');
  });

  it('the pool with no workers (the kernel on the calling thread, the default on up to 4 cores) over files equals the reference', async () => {
    const pool = createPreprocessPool({ codec: runtime.images, workers: 0 });
    try {
      expect(pool.workers).toBe(0);
      const a = await pool.preprocess(
        images.map((i) => i.path),
        settings,
      );
      expect(maxDiff(a.data)).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('the worker pool over file paths and bytes, twice on one pool', async () => {
    const pool = createPreprocessPool({ codec: runtime.images, workers: 2 });
    try {
      const a = await pool.preprocess(
        images.map((i) => i.path),
        settings,
      );
      expect(a.dims).toEqual([images.length, 3, 336, 336]);
      expect(maxDiff(a.data)).toBe(0);
      const b = await pool.preprocess(
        images.map((i) => new Uint8Array(readFileSync(i.path))),
        settings,
      );
      expect(sameBits(a.data, b.data)).toBe(0);
    } finally {
      await pool.close();
    }
    const once = await preprocessFiles(
      images.slice(0, 3).map((i) => i.path),
      settings,
      { codec: runtime.images },
    );
    expect(
      sameBits(
        once.data,
        (
          await preprocessEncodedBatch(
            runtime.images,
            images.slice(0, 3).map((i) => new Uint8Array(readFileSync(i.path))),
            settings,
          )
        ).data,
      ),
    ).toBe(0);
  });

  it('concurrent calls with different settings on one pool each equal their own step-by-step result', async () => {
    // The workers keep the normalisation tables between jobs and the pool reuses its shared buffers,
    // so interleaved calls with other tables and other output sizes must not see each other's state.
    const other: ImageProcessorSettings = {
      ...settings,
      mean: [0.5, 0.25, 0.125],
      std: [0.2, 0.3, 0.4],
      resize: { shortestEdge: 96 },
      centerCrop: { width: 80, height: 96 },
    };
    const pool = createPreprocessPool({ codec: runtime.images, workers: 2, readAhead: 2 });
    try {
      const paths = images.map((i) => i.path);
      const [a, b, c] = await Promise.all([pool.preprocess(paths, settings), pool.preprocess([...paths].reverse(), other), pool.preprocess(paths, settings)]);
      const decoded = await Promise.all(paths.map(async (p) => runtime.images.decode(new Uint8Array(readFileSync(p)))));
      const expectBatch = (x: { data: Float32Array }, list: RawImage[], s: ImageProcessorSettings) => {
        const per = x.data.length / list.length;
        list.forEach((img, i) => expect(sameBits(x.data.subarray(i * per, (i + 1) * per), composed(img, s)), `image ${i}`).toBe(0));
      };
      expect(b.dims).toEqual([images.length, 3, 96, 80]);
      expectBatch(a, decoded, settings);
      expectBatch(b, [...decoded].reverse(), other);
      expect(sameBits(a.data, c.data)).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('closing the pool during a call fails that call with a typed error instead of leaving it pending', async () => {
    // The codec closes the pool as it decodes the fourth image: by then the first ones are on the workers.
    let decoded = 0;
    let closing: Promise<void> | undefined;
    const codec = {
      ...runtime.images,
      decode: async (bytes: Uint8Array, o?: { source?: string }) => {
        if (++decoded === 4) closing = pool.close();
        return runtime.images.decode(bytes, o);
      },
    };
    const pool = createPreprocessPool({ codec, workers: 2, readAhead: 2 });
    const paths = images.map((i) => i.path);
    const err = await pool.preprocess(paths, settings).catch((e: unknown) => e);
    await closing;
    expect(isVlitError(err, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    expect(String((err as Error).message)).toMatch(/closed/);
    // The same with the kernel on the calling thread (no workers to fail the jobs).
    decoded = 0;
    const pool0 = createPreprocessPool({
      codec: {
        ...runtime.images,
        decode: async (bytes: Uint8Array, o?: { source?: string }) => {
          if (++decoded === 4) closing = pool0.close();
          return runtime.images.decode(bytes, o);
        },
      },
      workers: 0,
      readAhead: 2,
    });
    const err0 = await pool0.preprocess(paths, settings).catch((e: unknown) => e);
    await closing;
    expect(isVlitError(err0, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    expect(String((err0 as Error).message)).toMatch(/closed during the call/);
  });

  it('a bad file is a typed error naming it, and sizes that cannot batch are refused', async () => {
    const bad = join(dir, 'bad.jpg');
    writeFileSync(bad, 'not an image');
    const err = await preprocessFiles([images[0].path, bad], settings, { codec: runtime.images, workers: 1 }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_IMAGE_DECODE')).toBe(true);
    const noCrop = { ...settings, centerCrop: null };
    const err2 = await preprocessFiles(
      images.slice(0, 4).map((i) => i.path),
      noCrop,
      { codec: runtime.images, workers: 1 },
    ).catch((e: unknown) => e);
    expect(isVlitError(err2, 'VLIT_INVALID_ARGUMENT')).toBe(true);
  });
});
