/**
 * Plain float64 references written as loops over row-major arrays, from the textbook formulas and
 * the ONNX / PyTorch operator definitions. They share no code with @vlit/graph, any runtime or any
 * package under test, so a test that compares against them has an independent expectation.
 */

/** A weight as stored by the packages: dims and row-major data. */
export interface WeightLike {
  dims: readonly number[];
  data: ArrayLike<number>;
}

/** Error function to double precision: Maclaurin series below 2.5, the erfc continued fraction (Lentz) above. */
export function erf(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = a;
    let sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), by the modified Lentz method.
    let f = a;
    let c = a;
    let d = 0;
    for (let n = 1; n < 300; n++) {
      d = 1 / (a + (n / 2) * d);
      c = a + n / 2 / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-a * a) / (f * Math.sqrt(Math.PI));
  }
  return x < 0 ? -r : r;
}

/** GELU, exact erf form: x * Phi(x) (ONNX Gelu approximate='none', torch gelu, HF "gelu"). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** GELU, tanh approximation (ONNX Gelu approximate='tanh', HF "gelu_pytorch_tanh" / "gelu_new"). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** QuickGELU, x * sigmoid(1.702 x) (OpenAI CLIP, HF "quick_gelu"). */
export function quickGelu(x: number): number {
  return x / (1 + Math.exp(-1.702 * x));
}

/** SiLU / swish, x * sigmoid(x) (HF "silu", Llama's gate). */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** [m,k] x [k,n] row-major matrix product (ONNX MatMul layout). */
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

/** torch Linear on the rows of x: y[r, o] = sum_i x[r, i] * W[o, i] + b[o], W in the [out, in] layout. */
export function linear(x: ArrayLike<number>, rows: number, weight: WeightLike, bias?: ArrayLike<number>): Float64Array {
  const [out, inp] = weight.dims;
  const w = weight.data;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w[o * inp + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

/** LayerNorm over the last axis of [rows, n]: (x - mean) / sqrt(var + eps) * scale + bias (biased variance). */
export function layerNorm(x: ArrayLike<number>, rows: number, n: number, scale: ArrayLike<number>, bias: ArrayLike<number>, eps: number): Float64Array {
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

/** Shapes for {@link attention}. */
export interface AttentionShape {
  /** Rows of q. */
  queries: number;
  /** Rows of k and v. */
  keys: number;
  /** Query heads. */
  heads: number;
  /** Channels per head. */
  headDim: number;
  /** Key/value heads (grouped-query attention); defaults to `heads`. */
  kvHeads?: number;
  /** Causal mask aligned to the end: query i sees keys 0..i + keys - queries. */
  causal?: boolean;
}

/**
 * Multi-head scaled dot-product attention: softmax(q kᵀ / sqrt(dh)) v per head, heads concatenated.
 * q is [queries, heads * dh], k and v are [keys, kvHeads * dh]; query head h reads key/value head
 * floor(h / (heads / kvHeads)), as HF's repeat_kv does.
 */
export function attention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, shape: AttentionShape): Float64Array {
  const { queries, keys, heads, headDim: dh } = shape;
  const kvHeads = shape.kvHeads ?? heads;
  const group = heads / kvHeads;
  const out = new Float64Array(queries * heads * dh);
  const scores = new Float64Array(keys);
  for (let h = 0; h < heads; h++) {
    const kh = Math.floor(h / group);
    for (let i = 0; i < queries; i++) {
      const seen = shape.causal ? Math.min(keys, i + keys - queries + 1) : keys;
      for (let j = 0; j < seen; j++) {
        let s = 0;
        for (let c = 0; c < dh; c++) s += q[(i * heads + h) * dh + c] * k[(j * kvHeads + kh) * dh + c];
        scores[j] = s / Math.sqrt(dh);
      }
      const p = softmaxRows(scores.subarray(0, seen), 1, seen);
      for (let c = 0; c < dh; c++) {
        let s = 0;
        for (let j = 0; j < seen; j++) s += p[j] * v[(j * kvHeads + kh) * dh + c];
        out[(i * heads + h) * dh + c] = s;
      }
    }
  }
  return out;
}

/**
 * Conv patch embedding: Conv with kernel = stride = patch, no padding, on one CHW image, flattened
 * to tokens [patches, outChannels] in row-major patch order (as ViTs do). Weight is [out, C, p, p].
 */
export function patchEmbed(
  image: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | undefined,
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
        let s = bias ? bias[o] : 0;
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
