// Encoders: the same ViT on the native vs web runtime (images/s), and Vlit's CLIP preprocessing
// (decode + shortest-edge 336 bicubic + centre crop + normalise) vs the Python PIL + numpy
// reference of Hugging Face's CLIPImageProcessor on the same image files. Ratios are against
// baselines measured in this same run, on this machine.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng, createTensor } from '@vlit/core';
import {
  createVitEncoder,
  parsePreprocessorConfig,
  preprocessBackend,
  preprocessEncodedBatch,
  preprocessImage,
  preprocessPixels,
  settingsFromPreprocessorConfig,
  writeImageTensor,
} from '@vlit/encoders';
import { createPreprocessPool } from '@vlit/encoders/node';
import { parseSafetensors } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createWebRuntime } from '@vlit/runtime/web';

const here = dirname(fileURLToPath(import.meta.url));
const threads = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// VLIT_BENCH_PREPROCESS_ONLY=1 skips the encoder section (for quick preprocessing runs).
const preprocessOnly = process.env.VLIT_BENCH_PREPROCESS_ONLY === '1';
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
if (!preprocessOnly) {
  const nativeEnc = await createVitEncoder({ backend: nativeRt.backend, config, seed: 1, maxBatch: batch });
  const webEnc = await createVitEncoder({ backend: webRt.backend, config, seed: 1, maxBatch: batch });
  const nativeIps = await imagesPerSecond(nativeEnc, 7);
  const webIps = await imagesPerSecond(webEnc, 7);
  await nativeEnc.release();
  await webEnc.release();
  console.log(
    `ViT encoder: ${config.numLayers} layers, width ${config.hiddenSize}, ${config.imageSize}px / patch ${config.patchSize} (197 tokens), batch ${batch}, ${threads} thread(s), median of 7:`,
  );
  console.table([
    { runtime: 'onnxruntime-node (native)', 'images/s': +nativeIps.toFixed(1), 'x native': 1 },
    { runtime: 'onnxruntime-web (wasm)', 'images/s': +webIps.toFixed(1), 'x native': +(webIps / nativeIps).toFixed(2) },
  ]);
}

// --- 2. Preprocessing: Vlit (sharp decode + WebAssembly SIMD resampling) vs Python PIL + numpy, same files.
// Two sets: the issue's own (100 JPEGs 640x480) and a mixed one (40 JPEG + PNG, 480-1280 px wide).
const clip336 = {
  crop_size: { height: 336, width: 336 },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { shortest_edge: 336 },
};
const settings = settingsFromPreprocessorConfig(parsePreprocessorConfig(clip336));
const script = join(here, '..', 'packages', 'encoders', 'parity', 'clip_reference.py');
const passes = 3;

/** Write `count` generated images (gradients plus seeded noise) into `dir`; sizes and formats from `shape(i)`. */
async function writeImages(dir, count, seed, shape) {
  const rng = createRng(seed);
  const files = [];
  for (let i = 0; i < count; i++) {
    const { width, height, format } = shape(i, rng);
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (y * width + x) * 3;
        data[o] = (x * 255) / width;
        data[o + 1] = (y * 255) / height;
        data[o + 2] = ((x ^ y) & 255) / 2 + rng.int(0, 64);
      }
    }
    const path = join(dir, `img${i}.${format === 'png' ? 'png' : 'jpg'}`);
    writeFileSync(path, await nativeRt.images.encode({ width, height, channels: 3, data }, format, { quality: 85 }));
    files.push(path);
  }
  return files;
}

/** Time every Vlit variant and the PIL reference on `files`; print one table and the outputs' max difference. */
async function preprocessingTable(title, dir, files) {
  const configPath = join(dir, 'preprocessor_config.json');
  writeFileSync(configPath, JSON.stringify(clip336));
  const bytes = files.map((f) => new Uint8Array(readFileSync(f)));
  // The machine is shared and oversubscribed, so each variant is timed per pass, passes of all
  // variants interleaved, and the best pass counts; CPU time (all threads of the process, so sharp's
  // decoding too) is reported beside wall time as the steadier single-process measure.
  const variants = [];
  const variant = (name, fn) => variants.push({ name, fn, wall: Infinity, cpu: Infinity });
  // Before: the step-by-step path (resize the whole image, crop, then normalise), one image at a time.
  variant('Vlit before: step by step (resize all, crop, normalise)', async () => {
    for (const b of bytes) {
      const px = preprocessPixels(await nativeRt.images.decode(b), settings);
      writeImageTensor(px, settings, new Float32Array(3 * px.width * px.height), 0);
    }
  });
  // One core: the fused kernel, each image decoded and then resampled before the next starts.
  variant('Vlit fused kernel, one image at a time (one core)', async () => {
    for (const b of bytes) preprocessImage(await nativeRt.images.decode(b), settings);
  });
  // Both cores: sharp decodes the next images on its threads while the main thread resamples.
  const outs = {};
  variant('Vlit preprocessEncodedBatch (both cores), bytes in memory', async () => {
    outs.batch = await preprocessEncodedBatch(nativeRt.images, bytes, settings);
  });
  // The same, reading the files inside the timed region (as PIL's row reads them).
  variant('Vlit read files + preprocessEncodedBatch (both cores)', async () => {
    outs.files = await preprocessEncodedBatch(nativeRt.images, await Promise.all(files.map((f) => readFile(f))), settings);
  });
  // The same, writing into one batch tensor reused from call to call (a data loader's steady state).
  const reused = createTensor('float32', [files.length, 3, 336, 336]);
  variant('Vlit read files + preprocessEncodedBatch, output reused', async () => {
    outs.reused = await preprocessEncodedBatch(nativeRt.images, await Promise.all(files.map((f) => readFile(f))), settings, { out: reused });
  });
  // The pool over file paths: its default (on up to 4 cores the kernel stays on the calling thread), and worker threads.
  const pool = createPreprocessPool({ codec: nativeRt.images });
  variant(`Vlit createPreprocessPool, default (${pool.workers} workers), files`, async () => {
    outs.pool = await pool.preprocess(files, settings);
  });
  const workerPool = createPreprocessPool({ codec: nativeRt.images, workers: Math.max(2, threads) });
  variant(`Vlit createPreprocessPool, ${workerPool.workers} worker threads, files`, async () => {
    outs.workerPool = await workerPool.preprocess(files, settings);
  });
  try {
    for (const v of variants) await v.fn(); // warm-up
    for (let p = 0; p < passes; p++) {
      for (const v of variants) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await v.fn();
        v.wall = Math.min(v.wall, performance.now() - t0);
        const c = process.cpuUsage(c0);
        v.cpu = Math.min(v.cpu, (c.user + c.system) / 1000);
      }
    }
  } finally {
    await pool.close();
    await workerPool.close();
  }

  // Outputs compared: the reference's tensors for every file against every batch output.
  const refPath = join(dir, 'reference.safetensors');
  const refRun = spawnSync('/usr/bin/python3', [script, configPath, refPath, ...files], { encoding: 'utf8' });
  let maxDiff = null;
  if (refRun.status === 0) {
    const ref = parseSafetensors(new Uint8Array(readFileSync(refPath)));
    const per = 3 * 336 * 336;
    maxDiff = 0;
    for (let i = 0; i < files.length; i++) {
      const r = ref.get(`x.${i}`).toFloat32();
      for (const out of Object.values(outs)) {
        for (let k = 0; k < per; k++) maxDiff = Math.max(maxDiff, Math.abs(r[k] - out.data[i * per + k]));
      }
    }
  }

  // Python: the reference's own preprocess(), timed per pass (wall and process CPU time), best pass.
  const PY_BENCH = [
    'import json, sys, time',
    'sys.path.insert(0, sys.argv[1])',
    'import clip_reference as ref',
    'cfg = ref.load_config(sys.argv[2])',
    'paths = sys.argv[4:]',
    'for p in paths[:2]: ref.preprocess(p, cfg)',
    'wall = cpu = 1e9',
    'for _ in range(int(sys.argv[3])):',
    '    t0 = time.perf_counter(); c0 = time.process_time()',
    '    for p in paths: ref.preprocess(p, cfg)',
    '    wall = min(wall, time.perf_counter() - t0); cpu = min(cpu, time.process_time() - c0)',
    'print(json.dumps({"images": len(paths), "wall": wall, "cpu": cpu}))',
  ].join('\n');
  const pyArgs = (list) => ['-c', PY_BENCH, dirname(script), configPath, String(passes), ...list];
  const pyOut = (text) => JSON.parse(text.trim().split('\n').pop());
  const py1r = spawnSync('/usr/bin/python3', pyArgs(files), { encoding: 'utf8' });
  const py1 = py1r.status === 0 ? pyOut(py1r.stdout) : null;
  // Both cores for PIL: two processes, each on half of the files, started together.
  const runAsync = (list) =>
    new Promise((resolve) => {
      const child = spawn('/usr/bin/python3', pyArgs(list));
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('close', (code) => resolve(code === 0 ? pyOut(out) : null));
    });
  const half = Math.ceil(files.length / 2);
  const py2 = await Promise.all([runAsync(files.slice(0, half)), runAsync(files.slice(half))]);
  // A batch is done when both halves are: the slower half's best pass sets the rate.
  const py2Ips = py2.every(Boolean) ? files.length / Math.max(...py2.map((r) => r.wall)) : null;
  const pilIps = py1 ? files.length / py1.wall : null;
  const pilCpu = py1 ? (py1.cpu * 1000) / files.length : null;
  const x = (v) => (pilIps ? +(v / pilIps).toFixed(2) : null);
  const x2 = (v) => (py2Ips ? +(v / py2Ips).toFixed(2) : null);
  const rows = [
    {
      pipeline: 'Python PIL + numpy reference, 1 process',
      'images/s': pilIps && +pilIps.toFixed(1),
      'x PIL 1 proc': 1,
      'x PIL 2 procs': x2(pilIps ?? 0),
      'CPU ms/img': pilCpu && +pilCpu.toFixed(1),
      'x PIL CPU': 1,
    },
    {
      pipeline: 'Python PIL + numpy reference, 2 processes',
      'images/s': py2Ips && +py2Ips.toFixed(1),
      'x PIL 1 proc': x(py2Ips ?? 0),
      'x PIL 2 procs': 1,
      'CPU ms/img': null,
      'x PIL CPU': null,
    },
  ];
  for (const v of variants) {
    const ips = (files.length * 1000) / v.wall;
    const cpu = v.cpu / files.length;
    rows.push({
      pipeline: v.name,
      'images/s': +ips.toFixed(1),
      'x PIL 1 proc': x(ips),
      'x PIL 2 procs': x2(ips),
      'CPU ms/img': +cpu.toFixed(1),
      'x PIL CPU': pilCpu ? +(pilCpu / cpu).toFixed(2) : null,
    });
  }
  console.log(`\nCLIP preprocessing to 336x336 (decode included), ${title}, best of ${passes} passes; Vlit's resampling kernel: ${preprocessBackend()}:`);
  console.table(rows);
  console.log(
    `outputs compared: max |Vlit - PIL reference| over all ${files.length} images and every Vlit batch output = ${maxDiff ?? 'n/a (reference unavailable)'}. 'x PIL CPU' compares CPU time per image (all threads).`,
  );
}

const dir = mkdtempSync(join(os.tmpdir(), 'vlit-bench-enc-'));
try {
  const jpegDir = join(dir, 'jpeg640');
  const mixedDir = join(dir, 'mixed');
  mkdirSync(jpegDir);
  mkdirSync(mixedDir);
  const jpegs = await writeImages(jpegDir, 100, 'bench-preprocess-640', () => ({ width: 640, height: 480, format: 'jpeg' }));
  await preprocessingTable('100 JPEGs 640x480', jpegDir, jpegs);
  const mixed = await writeImages(mixedDir, 40, 'bench-preprocess', (i, rng) => ({
    width: 480 + rng.int(0, 800),
    height: 360 + rng.int(0, 600),
    format: i % 4 === 3 ? 'png' : 'jpeg',
  }));
  await preprocessingTable('40 images 480-1280 px wide (JPEG + PNG)', mixedDir, mixed);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
