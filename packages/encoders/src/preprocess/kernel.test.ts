/**
 * The WebAssembly SIMD kernel against the plain JavaScript one (itself held to Pillow byte for byte
 * in preprocess.test.ts and batch.test.ts): bit-identical floats on every filter, up and down, odd
 * sizes, one-axis and no resize, crops at every offset, and noise that drives the filters' overshoot
 * into the clipping on both ends. Also: the committed module is what resample.wat assembles to.
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createRng, type RawImage } from '@vlit/core';
import { assembleResampleWasm, generatedPath, generatedSource } from '../../../../scripts/build-wasm.mjs';
import { clipProcessorSettings, type ImageProcessorSettings } from './config.js';
import { createFusedKernel, FUSED_KERNEL_PARTS, FUSED_KERNEL_PARTS_JS, fusedKernelSource, type FusedKernel } from './kernel.js';
import { fusedSpec, normalizeTables } from './pipeline.js';
import type { ResampleFilter } from './resample.js';
import { syntheticImage } from '../testing/fixtures.js';

const wasm = createFusedKernel(FUSED_KERNEL_PARTS);
const js = createFusedKernel(FUSED_KERNEL_PARTS_JS);

/** Pixels that are 0 or 255 at random (every filter with negative lobes over- and undershoots on them). */
function noise(width: number, height: number, seed: string): RawImage {
  const rng = createRng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.float() < 0.5 ? 0 : 255;
  return { width, height, channels: 3, data };
}

/** Run both kernels on one image; the number of floats that differ in bits (-1 where the fused path does not apply). */
function differing(image: RawImage, s: ImageProcessorSettings, a: FusedKernel = wasm, b: FusedKernel = js): number {
  const spec = fusedSpec(image, s);
  if (!spec) return -1;
  const n = 3 * spec.width * spec.height;
  const x = new Float32Array(n + 7).fill(Number.NaN);
  const y = new Float32Array(n + 7).fill(Number.NaN);
  a.run(spec, image.data, normalizeTables(s), x, 7);
  b.run(spec, image.data, normalizeTables(s), y, 7);
  let diff = 0;
  for (let i = 0; i < n + 7; i++) if (!Object.is(x[i], y[i])) diff++;
  return diff;
}

describe('the SIMD resampling kernel', () => {
  it('runs as WebAssembly SIMD on Node, on the main thread and in a worker thread built from the source text the pool ships', async () => {
    expect(wasm.backend).toBe('wasm-simd');
    expect(js.backend).toBe('js');
    const worker = new Worker(`require('node:worker_threads').parentPort.postMessage((${fusedKernelSource()}).backend);`, { eval: true });
    try {
      expect(await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))).toBe('wasm-simd');
    } finally {
      await worker.terminate();
    }
  });

  it('equals the JavaScript kernel bit for bit: every filter, up and down, one-axis and no resize, odd crops, clipping noise', () => {
    const filters: ResampleFilter[] = ['box', 'bilinear', 'hamming', 'bicubic', 'lanczos'];
    const cases: { w: number; h: number; resize: ImageProcessorSettings['resize']; crop: { width: number; height: number } | null }[] = [
      { w: 640, h: 480, resize: { shortestEdge: 336 }, crop: { width: 336, height: 336 } },
      { w: 97, h: 61, resize: { shortestEdge: 40 }, crop: { width: 33, height: 40 } },
      { w: 40, h: 30, resize: { shortestEdge: 57 }, crop: { width: 57, height: 57 } },
      { w: 13, h: 11, resize: { shortestEdge: 100 }, crop: { width: 99, height: 97 } },
      { w: 64, h: 64, resize: { height: 64, width: 17 }, crop: { width: 16, height: 63 } },
      { w: 64, h: 64, resize: { height: 5, width: 64 }, crop: { width: 60, height: 5 } },
      { w: 50, h: 50, resize: null, crop: { width: 21, height: 31 } },
      { w: 1, h: 1, resize: { height: 3, width: 2 }, crop: null },
      { w: 1000, h: 7, resize: { shortestEdge: 3 }, crop: { width: 17, height: 3 } },
      { w: 7, h: 900, resize: { shortestEdge: 5 }, crop: { width: 5, height: 1 } },
    ];
    let compared = 0;
    for (const [i, c] of cases.entries()) {
      for (const [kind, img] of [
        ['scene', syntheticImage(c.w, c.h, 3, `simd:${i}`)],
        ['noise', noise(c.w, c.h, `simd-noise:${i}`)],
      ] as const) {
        for (const filter of filters) {
          const s: ImageProcessorSettings = { ...clipProcessorSettings(32), resize: c.resize, resample: filter, centerCrop: c.crop };
          expect(differing(img, s), `case ${i} ${kind} ${filter}`).toBe(0);
          compared++;
        }
      }
    }
    expect(compared).toBe(100);
  });

  it('random sizes, targets and crops (200 draws) agree too, and one kernel serves images of changing sizes', () => {
    const rng = createRng('simd-random');
    const filters: ResampleFilter[] = ['box', 'bilinear', 'hamming', 'bicubic', 'lanczos'];
    for (let k = 0; k < 200; k++) {
      const w = 1 + rng.int(0, 300);
      const h = 1 + rng.int(0, 300);
      const edge = 1 + rng.int(0, 200);
      const img = k % 2 ? noise(w, h, `r${k}`) : syntheticImage(w, h, 3, `r${k}`);
      const out = w <= h ? { width: edge, height: Math.trunc((edge * h) / w) } : { width: Math.trunc((edge * w) / h), height: edge };
      const crop = { width: 1 + rng.int(0, out.width), height: 1 + rng.int(0, out.height) };
      const s: ImageProcessorSettings = { ...clipProcessorSettings(32), resize: { shortestEdge: edge }, resample: filters[k % 5], centerCrop: crop };
      expect(differing(img, s), `draw ${k}: ${w}x${h} edge ${edge} crop ${crop.width}x${crop.height} ${filters[k % 5]}`).toBe(0);
    }
  });

  it('a 6000x4500 photo is exact too, and the module lets its memory go afterwards (a small one keeps it)', () => {
    const kernel = createFusedKernel(FUSED_KERNEL_PARTS);
    const s: ImageProcessorSettings = { ...clipProcessorSettings(336) };
    const small = syntheticImage(640, 480, 3, 'small');
    expect(differing(small, s, kernel)).toBe(0);
    const kept = kernel.memoryBytes();
    expect(kept).toBeGreaterThan(640 * 480 * 3);
    const width = 6000;
    const height = 4500;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0; i < data.length; i++) data[i] = (Math.imul(i, 2654435761) >>> 24) & (i % 7 === 0 ? 0xff : 0xf0);
    expect(differing({ width, height, channels: 3, data }, s, kernel)).toBe(0);
    // The photo needed more than 64 MiB; the instance that held it was replaced by a fresh one.
    expect(kernel.memoryBytes()).toBeLessThanOrEqual(64 * 1024);
    expect(differing(small, s, kernel)).toBe(0);
    expect(kernel.memoryBytes()).toBe(kept);
  });

  it('the committed module (resample-wasm.ts) is exactly what resample.wat assembles to', async () => {
    expect(readFileSync(generatedPath, 'utf8'), 'stale: run node scripts/build-wasm.mjs').toBe(generatedSource(await assembleResampleWasm()));
  });
});
