import { describe, expect, it } from 'vitest';
import { createSharpCodec } from '@vlit/runtime/node';
import { dct1d, dHash, generateCocoFixture, hammingDistance, pHash, pixelStats, resizeArea, toGrey, type GreyImage } from './index.js';

const grey = (width: number, height: number, f: (x: number, y: number) => number): GreyImage => {
  const data = new Float64Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = f(x, y);
  return { width, height, data };
};

describe('perceptual hashes', () => {
  it('area resize and luma by hand', () => {
    expect([
      ...resizeArea(
        grey(4, 2, (x, y) => 2 * x + 2 * y),
        2,
        1,
      ).data,
    ]).toEqual([2, 6]);
    // 3 -> 2 pixels: out0 = (v0 + 0.5 v1) / 1.5, out1 = (0.5 v1 + v2) / 1.5 with v = 0, 3, 6
    const r = resizeArea(
      grey(3, 1, (x) => 3 * x),
      2,
      1,
    ).data;
    expect(r[0]).toBeCloseTo(1, 12);
    expect(r[1]).toBeCloseTo(5, 12);
    expect(toGrey({ width: 1, height: 1, channels: 3, data: new Uint8Array([100, 200, 50]) }).data[0]).toBeCloseTo(0.299 * 100 + 0.587 * 200 + 0.114 * 50, 10);
  });

  it('dHash by hand: rising rows set their 8 bits', () => {
    expect(dHash(grey(9, 8, (x) => x * 10))).toBe((1n << 64n) - 1n);
    expect(dHash(grey(9, 8, (x) => 100 - x * 10))).toBe(0n);
    expect(dHash(grey(9, 8, (x, y) => (y % 2 === 0 ? x : -x)))).toBe(0x00ff00ff00ff00ffn);
    expect(hammingDistance(0xffn, 0x0fn)).toBe(4);
    expect(hammingDistance(0n, (1n << 64n) - 1n)).toBe(64);
  });

  it('pHash by hand: DCT of a constant and of one cosine', () => {
    // Orthonormal DCT-II of [1,1,1,1] = [2, 0, 0, 0]
    const d = dct1d([1, 1, 1, 1]);
    expect(d[0]).toBeCloseTo(2, 12);
    for (const v of d.slice(1)) expect(Math.abs(v)).toBeLessThan(1e-12);
    // Constant image: only DC is positive, the other 63 are 0 = median -> bit 0 only.
    expect(pHash(grey(32, 32, () => 80))).toBe(1n);
    // 128 + 100 cos(pi (2x+1) / 64): DC and the (v=0, u=1) coefficient are positive -> bits 0 and 1.
    expect(pHash(grey(32, 32, (x) => 128 + 100 * Math.cos((Math.PI * (2 * x + 1)) / 64)))).toBe(3n);
    // The same cosine flipped makes (0, 1) negative -> bit 0 only.
    expect(pHash(grey(32, 32, (x) => 128 - 100 * Math.cos((Math.PI * (2 * x + 1)) / 64)))).toBe(1n);
  });

  it('on real images (sharp): a re-encoded copy stays close, different fixture images stay far', async () => {
    const codec = createSharpCodec();
    // minHashDistance 0: every picture is kept as first drawn, so nothing here was selected for distance.
    const fx = await generateCocoFixture({ images: 40, seed: 5, codec, minHashDistance: 0 });
    const decoded = await Promise.all([...fx.images.values()].map((b) => codec.decode(b, { channels: 3 })));
    const hashes = decoded.map((img) => pHash(img));
    const distances: number[] = [];
    for (let i = 0; i < hashes.length; i++) for (let j = i + 1; j < hashes.length; j++) distances.push(hammingDistance(hashes[i], hashes[j]));
    distances.sort((a, b) => a - b);
    // Independent pictures: about half the 64 bits differ (median), and few pairs come near a re-encoding's distance.
    expect(distances[Math.floor(distances.length / 2)]).toBeGreaterThanOrEqual(20);
    expect(distances.filter((d) => d <= 4).length / distances.length).toBeLessThan(0.01);
    const jpeg = await codec.decode(await codec.encode(decoded[0], 'jpeg', { quality: 80 }), { channels: 3 });
    expect(hammingDistance(pHash(jpeg), hashes[0])).toBeLessThanOrEqual(4);
    expect(pixelStats(decoded[0]).std).toBeGreaterThan(10);
    expect(pixelStats({ width: 2, height: 1, channels: 3, data: new Uint8Array([0, 0, 0, 255, 255, 255]) })).toEqual({ mean: 127.5, std: 127.5 });
  }, 30_000);

  it('the fixture refuses a distance it cannot reach instead of keeping a near copy', async () => {
    const codec = createSharpCodec();
    await expect(generateCocoFixture({ images: 3, seed: 5, codec, minHashDistance: 65 })).rejects.toMatchObject({
      code: 'VLIT_INVALID_ARGUMENT',
      details: { field: 'minHashDistance' },
    });
  }, 30_000);
});
