/**
 * Plain TypeScript float64 references for the conformance graphs, written from the ONNX operator
 * definitions and the textbook formulas, sharing no code with the graph builder or any runtime.
 */

/** Error function to ~1e-15: Taylor series near zero, continued fraction for the tail. */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  if (a < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = a;
    let sum = a;
    for (let n = 1; n < 100; n++) {
      term *= (-a * a) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (sign * 2 * sum) / Math.sqrt(Math.PI);
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated from the back.
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return sign * (1 - erfc);
}

/** GELU with the exact erf form (ONNX Gelu, approximate='none'). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** [m,k] x [k,n] row-major matrix product. */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      out[i * n + j] = s;
    }
  }
  return out;
}

/** Add a length-n bias to every row of an [m,n] matrix. */
export function addBias(x: Float64Array, bias: ArrayLike<number>, n: number): Float64Array {
  return x.map((v, i) => v + bias[i % n]);
}

/** Two-layer MLP projector: gelu(x W1 + b1) W2 + b2 (LLaVA-1.5's connector). */
export function mlpReference(
  x: ArrayLike<number>,
  w1: ArrayLike<number>,
  b1: ArrayLike<number>,
  w2: ArrayLike<number>,
  b2: ArrayLike<number>,
  tokens: number,
  dIn: number,
  dHidden: number,
  dOut: number,
): Float64Array {
  const h = addBias(matmul(x, w1, tokens, dIn, dHidden), b1, dHidden).map(gelu);
  return addBias(matmul(h, w2, tokens, dHidden, dOut), b2, dOut);
}

/**
 * Conv patch embedding: Conv with kernel = stride = patch, no padding, on NCHW (N=1), then
 * flattened to tokens [patches, outChannels] in row-major patch order (as ViTs do).
 */
export function patchEmbedReference(
  image: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  channels: number,
  height: number,
  width: number,
  outChannels: number,
  patch: number,
): Float64Array {
  const gh = Math.floor(height / patch);
  const gw = Math.floor(width / patch);
  const out = new Float64Array(gh * gw * outChannels);
  for (let py = 0; py < gh; py++) {
    for (let px = 0; px < gw; px++) {
      for (let o = 0; o < outChannels; o++) {
        let s = bias[o];
        for (let c = 0; c < channels; c++) {
          for (let ky = 0; ky < patch; ky++) {
            for (let kx = 0; kx < patch; kx++) {
              const iv = image[c * height * width + (py * patch + ky) * width + (px * patch + kx)];
              const wv = weight[((o * channels + c) * patch + ky) * patch + kx];
              s += iv * wv;
            }
          }
        }
        out[(py * gw + px) * outChannels + o] = s;
      }
    }
  }
  return out;
}

/** LayerNorm over the last axis of [rows, n]: (x - mean) / sqrt(var + eps) * scale + bias (biased variance). */
export function layerNormReference(
  x: ArrayLike<number>,
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
  rows: number,
  n: number,
  eps: number,
): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[r * n + i];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[r * n + i] - mean) ** 2;
    v /= n;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < n; i++) out[r * n + i] = (x[r * n + i] - mean) * inv * scale[i] + bias[i];
  }
  return out;
}

/** Softmax over each row of [rows, n], shifted by the row max for stability. */
export function softmaxRows(x: ArrayLike<number>, rows: number, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, x[r * n + i]);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += out[r * n + i] = Math.exp(x[r * n + i] - max);
    for (let i = 0; i < n; i++) out[r * n + i] /= sum;
  }
  return out;
}

/** Weights of one multi-head self-attention block, row-major [d, d] matrices and [d] biases. */
export interface AttentionWeights {
  wq: ArrayLike<number>;
  bq: ArrayLike<number>;
  wk: ArrayLike<number>;
  bk: ArrayLike<number>;
  wv: ArrayLike<number>;
  bv: ArrayLike<number>;
  wo: ArrayLike<number>;
  bo: ArrayLike<number>;
}

/** Multi-head self-attention on x [tokens, d]: softmax(q k^T / sqrt(dh)) v per head, heads concatenated, then Wo. */
export function attentionReference(x: ArrayLike<number>, w: AttentionWeights, tokens: number, d: number, heads: number): Float64Array {
  const dh = d / heads;
  const q = addBias(matmul(x, w.wq, tokens, d, d), w.bq, d);
  const k = addBias(matmul(x, w.wk, tokens, d, d), w.bk, d);
  const v = addBias(matmul(x, w.wv, tokens, d, d), w.bv, d);
  const concat = new Float64Array(tokens * d);
  for (let h = 0; h < heads; h++) {
    const scores = new Float64Array(tokens * tokens);
    for (let i = 0; i < tokens; i++) {
      for (let j = 0; j < tokens; j++) {
        let s = 0;
        for (let c = 0; c < dh; c++) s += q[i * d + h * dh + c] * k[j * d + h * dh + c];
        scores[i * tokens + j] = s / Math.sqrt(dh);
      }
    }
    const p = softmaxRows(scores, tokens, tokens);
    for (let i = 0; i < tokens; i++) {
      for (let c = 0; c < dh; c++) {
        let s = 0;
        for (let j = 0; j < tokens; j++) s += p[i * tokens + j] * v[j * d + h * dh + c];
        concat[i * d + h * dh + c] = s;
      }
    }
  }
  return addBias(matmul(concat, w.wo, tokens, d, d), w.bo, d);
}
