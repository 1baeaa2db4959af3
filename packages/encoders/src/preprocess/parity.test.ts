import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensors } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { readPreprocessorConfig } from '../node.js';
import { preprocessImage, preprocessPixels } from './pipeline.js';
import { settingsFromPreprocessorConfig } from './config.js';
import { writeFixtureImages, type FixtureImage } from '../testing/fixtures.js';

// The CLIP ViT-L/14-336 processor config as Hugging Face ships it (openai/clip-vit-large-patch14-336).
const CLIP_336 = {
  crop_size: { height: 336, width: 336 },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_processor_type: 'CLIPImageProcessor',
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { shortest_edge: 336 },
};
/**
 * Stated tolerance: 1e-6 on normalised values. Vlit reproduces Pillow's fixed-point resampling
 * and numpy's float32 arithmetic operation for operation, so the expected difference is exactly 0;
 * the tolerance only leaves room for a last-bit float32 difference.
 */
const TOLERANCE = 1e-6;

const runtime = createNodeRuntime();
const dir = mkdtempSync(join(tmpdir(), 'vlit-clip-parity-'));
let images: FixtureImage[] = [];
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('preprocessing parity with a PIL + numpy reference of the Hugging Face CLIP image processor', () => {
  beforeAll(async () => {
    images = await writeFixtureImages(runtime.images, join(dir, 'images'), 50);
    writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(CLIP_336));
  });

  it('50 generated JPEG/PNG images: shortest-edge 336 bicubic, centre crop 336, CLIP mean/std, max |diff| within 1e-6', async () => {
    expect(images).toHaveLength(50);
    expect(new Set(images.map((i) => i.format))).toEqual(new Set(['jpeg', 'png']));
    const script = new URL('../../parity/clip_reference.py', import.meta.url).pathname;
    const out = join(dir, 'reference.safetensors');
    // Debian's PIL and numpy are visible only to /usr/bin/python3 (.ci/run installs python3-pil python3-numpy).
    execFileSync('/usr/bin/python3', [script, join(dir, 'preprocessor_config.json'), out, ...images.map((i) => i.path)], { stdio: 'pipe' });
    const ref = parseSafetensors(new Uint8Array(readFileSync(out)));
    const settings = settingsFromPreprocessorConfig(await readPreprocessorConfig(join(dir, 'preprocessor_config.json')));

    let maxDiff = 0;
    let pixelMismatches = 0;
    for (let i = 0; i < images.length; i++) {
      const raw = await runtime.images.decode(new Uint8Array(readFileSync(images[i].path)), { source: images[i].path });
      const px = preprocessPixels(raw, settings);
      const refPx = ref.get(`pixels.${i}`);
      expect(refPx.shape, images[i].path).toEqual([336, 336, 3]);
      const rp = refPx.bytes;
      for (let k = 0; k < rp.length; k++) if (rp[k] !== px.data[k]) pixelMismatches++;
      const x = preprocessImage(raw, settings);
      const rx = ref.get(`x.${i}`);
      expect(rx.shape).toEqual(x.dims);
      const rv = rx.toFloat32();
      for (let k = 0; k < rv.length; k++) maxDiff = Math.max(maxDiff, Math.abs(rv[k] - x.data[k]));
    }
    // Measured here: 0 differing 8-bit samples and max |diff| 0 over 50 × 3 × 336 × 336 values.
    expect(pixelMismatches).toBe(0);
    expect(maxDiff).toBeLessThanOrEqual(TOLERANCE);

    // The comparison can fail: image 5 (1024x768, a real downscale) resized with bilinear instead of bicubic is far off.
    const raw0 = await runtime.images.decode(new Uint8Array(readFileSync(images[5].path)));
    const other = preprocessImage(raw0, { ...settings, resample: 'bilinear' });
    const rv5 = ref.get('x.5').toFloat32();
    let otherDiff = 0;
    for (let k = 0; k < rv5.length; k++) otherDiff = Math.max(otherDiff, Math.abs(rv5[k] - other.data[k]));
    expect(otherDiff).toBeGreaterThan(0.01);
  }, 120_000);
});
