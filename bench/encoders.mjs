// Encoders: the same ViT on the native vs web runtime (images/s), and Vlit's CLIP preprocessing
// (decode + shortest-edge 336 bicubic + centre crop + normalise) vs the Python PIL + numpy
// reference of Hugging Face's CLIPImageProcessor on the same image files. Ratios are against
// baselines measured in this same run, on this machine.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng, createTensor } from '@vlit/core';
import { createVitEncoder, parsePreprocessorConfig, preprocessImage, settingsFromPreprocessorConfig } from '@vlit/encoders';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createWebRuntime } from '@vlit/runtime/web';

const here = dirname(fileURLToPath(import.meta.url));
const threads = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// --- 1. ViT-S/16 at 224 px (6 layers), batch of 8, native vs web
const config = { imageSize: 224, patchSize: 16, hiddenSize: 384, numHeads: 6, numLayers: 6 };
const batch = 8;
const nativeRt = createNodeRuntime({ session: { intraOpThreads: threads } });
const webRt = createWebRuntime({ wasm: { numThreads: threads } });
const pixels = createTensor('float32', [batch, 3, 224, 224]);
createRng('bench-encoders').fillNormal(pixels.data, 1);

async function imagesPerSecond(encoder, runs) {
  await encoder.encodePixels(pixels); // warm-up
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await encoder.encodePixels(pixels);
    times.push(performance.now() - t0);
  }
  return (batch * 1000) / median(times);
}
const nativeEnc = await createVitEncoder({ backend: nativeRt.backend, config, seed: 1, maxBatch: batch });
const webEnc = await createVitEncoder({ backend: webRt.backend, config, seed: 1, maxBatch: batch });
const nativeIps = await imagesPerSecond(nativeEnc, 7);
const webIps = await imagesPerSecond(webEnc, 7);
await nativeEnc.release();
await webEnc.release();
console.log(`ViT encoder: ${config.numLayers} layers, width ${config.hiddenSize}, ${config.imageSize}px / patch ${config.patchSize} (197 tokens), batch ${batch}, ${threads} thread(s), median of 7:`);
console.table([
  { runtime: 'onnxruntime-node (native)', 'images/s': +nativeIps.toFixed(1), 'x native': 1 },
  { runtime: 'onnxruntime-web (wasm)', 'images/s': +webIps.toFixed(1), 'x native': +(webIps / nativeIps).toFixed(2) },
]);

// --- 2. Preprocessing: Vlit (sharp decode + TypeScript) vs Python PIL + numpy, same files
const dir = mkdtempSync(join(os.tmpdir(), 'vlit-bench-enc-'));
try {
  const rng = createRng('bench-preprocess');
  const files = [];
  for (let i = 0; i < 40; i++) {
    const width = 480 + rng.int(0, 800);
    const height = 360 + rng.int(0, 600);
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (y * width + x) * 3;
        data[o] = (x * 255) / width;
        data[o + 1] = (y * 255) / height;
        data[o + 2] = ((x ^ y) & 255) / 2 + rng.int(0, 64);
      }
    }
    const format = i % 4 === 3 ? 'png' : 'jpeg';
    const path = join(dir, `img${i}.${format === 'png' ? 'png' : 'jpg'}`);
    writeFileSync(path, await nativeRt.images.encode({ width, height, channels: 3, data }, format, { quality: 85 }));
    files.push(path);
  }
  const clip336 = {
    crop_size: { height: 336, width: 336 }, do_center_crop: true, do_convert_rgb: true, do_normalize: true, do_rescale: true,
    do_resize: true, image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711],
    resample: 3, rescale_factor: 0.00392156862745098, size: { shortest_edge: 336 },
  };
  const configPath = join(dir, 'preprocessor_config.json');
  writeFileSync(configPath, JSON.stringify(clip336));
  const settings = settingsFromPreprocessorConfig(parsePreprocessorConfig(clip336));
  const passes = 3;

  const vlitOnce = async () => {
    for (const f of files) preprocessImage(await nativeRt.images.decode(new Uint8Array(readFileSync(f))), settings);
  };
  await vlitOnce(); // warm-up
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) await vlitOnce();
  const vlitIps = (passes * files.length * 1000) / (performance.now() - t0);

  const script = join(here, '..', 'packages', 'encoders', 'parity', 'clip_reference.py');
  const py = spawnSync('/usr/bin/python3', [script, '--bench', String(passes), configPath, ...files], { encoding: 'utf8' });
  const rows = [{ pipeline: 'Vlit (sharp decode + TypeScript, exact PIL resampling)', 'images/s': +vlitIps.toFixed(1), 'x PIL': null }];
  if (py.status === 0) {
    const { images, seconds } = JSON.parse(py.stdout.trim().split('\n').pop());
    const pilIps = images / seconds;
    rows[0]['x PIL'] = +(vlitIps / pilIps).toFixed(2);
    rows.push({ pipeline: 'Python PIL + numpy reference (CLIPImageProcessor steps)', 'images/s': +pilIps.toFixed(1), 'x PIL': 1 });
  } else {
    rows.push({ pipeline: `Python reference unavailable (${(py.stderr || py.error?.message || '').trim().split('\n').pop()})`, 'images/s': null, 'x PIL': null });
  }
  console.log(`\nCLIP preprocessing to 336x336 (decode included), ${files.length} images 480-1280 px wide (JPEG + PNG), ${passes} passes, one thread each:`);
  console.table(rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
