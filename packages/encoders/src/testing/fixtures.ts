/**
 * Deterministic test images: smooth gradients, hard edges, a checkerboard and seeded noise (so
 * every resampling filter tap matters), encoded as JPEG or PNG by the runtime's real codec.
 * Test-only: not exported from the package.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng, type ImageCodec, type RawImage } from '@vlit/core';

/** One generated image file. */
export interface FixtureImage {
  path: string;
  width: number;
  height: number;
  format: 'jpeg' | 'png';
  channels: 1 | 3 | 4;
}

/** Pixels of a synthetic scene of the given size. */
export function syntheticImage(width: number, height: number, channels: 1 | 3 | 4, seed: number | string): RawImage {
  const rng = createRng(seed);
  const data = new Uint8Array(width * height * channels);
  const cx = rng.float() * width;
  const cy = rng.float() * height;
  const r = (0.2 + 0.3 * rng.float()) * Math.min(width, height);
  const cell = 2 + rng.int(0, 12);
  const phase = rng.float() * 6.28;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inDisc = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      const checker = ((Math.floor(x / cell) + Math.floor(y / cell)) & 1) === 1;
      const base = [(255 * x) / width, (255 * y) / height, 127.5 + 127.5 * Math.sin(phase + (x + y) / 9), inDisc ? 40 : 220];
      for (let c = 0; c < channels; c++) {
        let v = base[c % 3];
        if (inDisc) v = 255 - v;
        if (checker && y < height / 2) v = v * 0.5;
        if (c === 3) v = base[3];
        v += (rng.float() - 0.5) * 40;
        data[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, channels, data };
}

/** Sizes covering up- and downscaling, odd sizes (floor-division crops), extreme aspect ratios and the exact target. */
export function fixtureSizes(count: number, seed: string): { width: number; height: number }[] {
  const fixed = [
    [336, 336],
    [337, 337],
    [335, 500],
    [500, 335],
    [224, 224],
    [1024, 768],
    [768, 1024],
    [40, 300],
    [300, 40],
    [336, 1000],
    [1001, 336],
    [673, 449],
  ];
  const rng = createRng(seed);
  const out = fixed.slice(0, count).map(([width, height]) => ({ width, height }));
  while (out.length < count) {
    const aspect = Math.exp((rng.float() * 2 - 1) * Math.log(5));
    const area = Math.exp(Math.log(60 * 60) + rng.float() * (Math.log(1200 * 900) - Math.log(60 * 60)));
    const width = Math.max(16, Math.round(Math.sqrt(area * aspect)));
    const height = Math.max(16, Math.round(Math.sqrt(area / aspect)));
    out.push({ width, height });
  }
  return out;
}

/** Write `count` images (JPEG and PNG alternating; some PNGs grey or with alpha) to `dir`. */
export async function writeFixtureImages(codec: ImageCodec, dir: string, count: number, seed = 'parity'): Promise<FixtureImage[]> {
  mkdirSync(dir, { recursive: true });
  const rng = createRng(`${seed}:formats`);
  const sizes = fixtureSizes(count, seed);
  const out: FixtureImage[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const { width, height } = sizes[i];
    const format = i % 2 === 0 ? 'jpeg' : 'png';
    const channels: 1 | 3 | 4 = format === 'png' && i % 10 === 3 ? 4 : format === 'png' && i % 10 === 7 ? 1 : 3;
    const image = syntheticImage(width, height, channels, `${seed}:${i}`);
    const bytes = await codec.encode(image, format, { quality: 60 + rng.int(0, 36) });
    const path = join(dir, `img_${String(i).padStart(3, '0')}.${format === 'jpeg' ? 'jpg' : 'png'}`);
    writeFileSync(path, bytes);
    out.push({ path, width, height, format, channels });
  }
  return out;
}
