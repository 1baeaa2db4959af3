/**
 * A plain TypeScript float64 forward of the ViT, written from CLIPVisionTransformer's definition
 * (not from the ONNX graph), as the independent expectation for tests. Test-only: not exported.
 */
import type { VitConfig } from '../vit/config.js';
import type { VitWeights } from '../vit/weights.js';

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for 1e-6 checks; use a series / continued fraction split.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax;
    let term = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for the tail.
  let f = ax;
  let C = ax;
  let Dd = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    Dd = ax + an * Dd;
    Dd = 1 / Dd;
    C = ax + an / C;
    const delta = C * Dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

function act(x: number, kind: VitConfig['hiddenAct']): number {
  if (kind === 'gelu') return 0.5 * x * (1 + erf(x / Math.SQRT2));
  if (kind === 'gelu_tanh') return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
  return x / (1 + Math.exp(-1.702 * x));
}

function layerNorm(x: Float64Array, rows: number, d: number, w: Float32Array, b: Float32Array, eps: number): Float64Array {
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) out[r * d + i] = (x[r * d + i] - mean) * inv * w[i] + b[i];
  }
  return out;
}

/** y = x Wᵀ + b with W in PyTorch's [out, in] layout. */
function linear(x: Float64Array, rows: number, din: number, w: Float32Array, b: Float32Array, dout: number): Float64Array {
  const out = new Float64Array(rows * dout);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < dout; o++) {
      let s = b[o];
      for (let i = 0; i < din; i++) s += x[r * din + i] * w[o * din + i];
      out[r * dout + o] = s;
    }
  }
  return out;
}

/** All hidden states (L + 1, each [T, D]) and the pooled output of one image [C, S, S]. */
export function vitReference(config: VitConfig, weights: VitWeights, pixels: Float32Array): { hidden: Float64Array[]; pooled: Float64Array } {
  const W = (n: string) => weights.get(n)!.data;
  const { imageSize: S, patchSize: p, hiddenSize: D, numHeads: H, numChannels: C, intermediateSize: I } = config;
  const g = S / p;
  const T = g * g + (config.clsToken ? 1 : 0);
  const off = config.clsToken ? 1 : 0;
  let x: Float64Array = new Float64Array(T * D);
  const pw = W('vision_model.embeddings.patch_embedding.weight');
  for (let gy = 0; gy < g; gy++) {
    for (let gx = 0; gx < g; gx++) {
      const t = off + gy * g + gx;
      for (let o = 0; o < D; o++) {
        let s = 0;
        for (let c = 0; c < C; c++) for (let ky = 0; ky < p; ky++) for (let kx = 0; kx < p; kx++) {
          s += pixels[c * S * S + (gy * p + ky) * S + gx * p + kx] * pw[((o * C + c) * p + ky) * p + kx];
        }
        x[t * D + o] = s;
      }
    }
  }
  if (config.clsToken) {
    const cls = W('vision_model.embeddings.class_embedding');
    for (let o = 0; o < D; o++) x[o] = cls[o];
  }
  const pos = W('vision_model.embeddings.position_embedding.weight');
  for (let i = 0; i < T * D; i++) x[i] += pos[i];
  x = layerNorm(x, T, D, W('vision_model.pre_layrnorm.weight'), W('vision_model.pre_layrnorm.bias'), config.layerNormEps);
  const hidden = [x];
  const dh = D / H;
  for (let l = 0; l < config.numLayers; l++) {
    const L = `vision_model.encoder.layers.${l}`;
    const h = layerNorm(x, T, D, W(`${L}.layer_norm1.weight`), W(`${L}.layer_norm1.bias`), config.layerNormEps);
    const q = linear(h, T, D, W(`${L}.self_attn.q_proj.weight`), W(`${L}.self_attn.q_proj.bias`), D);
    const k = linear(h, T, D, W(`${L}.self_attn.k_proj.weight`), W(`${L}.self_attn.k_proj.bias`), D);
    const v = linear(h, T, D, W(`${L}.self_attn.v_proj.weight`), W(`${L}.self_attn.v_proj.bias`), D);
    const ctx = new Float64Array(T * D);
    const row = new Float64Array(T);
    for (let hh = 0; hh < H; hh++) {
      for (let i = 0; i < T; i++) {
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let s = 0;
          for (let e = 0; e < dh; e++) s += q[i * D + hh * dh + e] * k[j * D + hh * dh + e];
          row[j] = s / Math.sqrt(dh);
          if (row[j] > max) max = row[j];
        }
        let z = 0;
        for (let j = 0; j < T; j++) z += (row[j] = Math.exp(row[j] - max));
        for (let e = 0; e < dh; e++) {
          let s = 0;
          for (let j = 0; j < T; j++) s += (row[j] / z) * v[j * D + hh * dh + e];
          ctx[i * D + hh * dh + e] = s;
        }
      }
    }
    const a = linear(ctx, T, D, W(`${L}.self_attn.out_proj.weight`), W(`${L}.self_attn.out_proj.bias`), D);
    const x1 = new Float64Array(T * D);
    for (let i = 0; i < T * D; i++) x1[i] = x[i] + a[i];
    const h2 = layerNorm(x1, T, D, W(`${L}.layer_norm2.weight`), W(`${L}.layer_norm2.bias`), config.layerNormEps);
    const f1 = linear(h2, T, D, W(`${L}.mlp.fc1.weight`), W(`${L}.mlp.fc1.bias`), I);
    for (let i = 0; i < f1.length; i++) f1[i] = act(f1[i], config.hiddenAct);
    const f2 = linear(f1, T, I, W(`${L}.mlp.fc2.weight`), W(`${L}.mlp.fc2.bias`), D);
    x = new Float64Array(T * D);
    for (let i = 0; i < T * D; i++) x[i] = x1[i] + f2[i];
    hidden.push(x);
  }
  let poolIn: Float64Array;
  if (config.clsToken) poolIn = x.slice(0, D);
  else {
    poolIn = new Float64Array(D);
    for (let t = 0; t < T; t++) for (let o = 0; o < D; o++) poolIn[o] += x[t * D + o] / T;
  }
  const pooled = layerNorm(poolIn, 1, D, W('vision_model.post_layernorm.weight'), W('vision_model.post_layernorm.bias'), config.layerNormEps);
  return { hidden, pooled };
}

/** Largest absolute difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
