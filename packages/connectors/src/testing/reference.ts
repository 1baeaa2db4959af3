/**
 * Independent float64 references of every connector, written as plain loops over row-major arrays
 * (no graph code), for the tests. Not exported from the package.
 */
type W = Record<string, { dims: readonly number[]; data: ArrayLike<number> }>;

/** Exact erf to double precision (W. J. Cody's rational approximations via the complementary function). */
export function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse; use a series / continued fraction split.
  const ax = Math.abs(x);
  let r: number;
  if (ax < 2.5) {
    // Maclaurin series: erf x = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // Continued fraction for erfc (Lentz), converges fast for x >= 2.5.
    let f = ax;
    let c = ax;
    let d = 0;
    for (let n = 1; n < 300; n++) {
      const an = n / 2;
      d = ax + an * d;
      d = 1 / d;
      c = ax + an / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  }
  return x < 0 ? -r : r;
}

/** Exact GELU, x * Phi(x). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** y[r, o] = sum_i x[r, i] * W[o, i] + b[o], torch Linear layout. */
export function linear(x: Float64Array, rows: number, w: W[string], b: W[string] | undefined): Float64Array {
  const [out, inp] = w.dims;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o] : 0;
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[o * inp + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, rows: number, dim: number, scale: ArrayLike<number>, bias: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[r * dim + i];
    mean /= dim;
    let v = 0;
    for (let i = 0; i < dim; i++) v += (x[r * dim + i] - mean) ** 2;
    v /= dim;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = (x[r * dim + i] - mean) * inv * scale[i] + bias[i];
  }
  return y;
}

function mlp(x: Float64Array, rows: number, w: W, prefix = ''): Float64Array {
  const h = linear(x, rows, w[`${prefix}linear_1.weight`], w[`${prefix}linear_1.bias`]).map(gelu);
  return linear(h, rows, w[`${prefix}linear_2.weight`], w[`${prefix}linear_2.bias`]);
}

/** Per image: features [T, C] -> output rows. */
export function linearRef(x: Float64Array, tokens: number, w: W): Float64Array {
  return linear(x, tokens, w['linear.weight'], w['linear.bias']);
}

/** LLaVA-1.5 mlp2x_gelu. */
export function mlpRef(x: Float64Array, tokens: number, w: W): Float64Array {
  return mlp(x, tokens, w);
}

/** Average pool a side x side grid (row-major tokens) by f, then the MLP. */
export function avgPoolRef(x: Float64Array, tokens: number, dim: number, f: number, w: W): Float64Array {
  const side = Math.sqrt(tokens);
  const out = side / f;
  const pooled = new Float64Array(out * out * dim);
  for (let oi = 0; oi < out; oi++) {
    for (let oj = 0; oj < out; oj++) {
      for (let c = 0; c < dim; c++) {
        let s = 0;
        for (let a = 0; a < f; a++) for (let b = 0; b < f; b++) s += x[((oi * f + a) * side + (oj * f + b)) * dim + c];
        pooled[(oi * out + oj) * dim + c] = s / (f * f);
      }
    }
  }
  return mlp(pooled, out * out, w);
}

/** Pixel shuffle: token (oi, oj) concatenates the f x f block in (row a, column b, channel) order, then the MLP. */
export function pixelShuffleRef(x: Float64Array, tokens: number, dim: number, f: number, w: W): Float64Array {
  const side = Math.sqrt(tokens);
  const out = side / f;
  const width = f * f * dim;
  const shuffled = new Float64Array(out * out * width);
  for (let oi = 0; oi < out; oi++) {
    for (let oj = 0; oj < out; oj++) {
      let k = 0;
      for (let a = 0; a < f; a++) {
        for (let b = 0; b < f; b++) {
          for (let c = 0; c < dim; c++) shuffled[(oi * out + oj) * width + k++] = x[((oi * f + a) * side + (oj * f + b)) * dim + c];
        }
      }
    }
  }
  return mlp(shuffled, out * out, w);
}

/** Perceiver resampler for one image. */
export function resamplerRef(
  x: Float64Array,
  tokens: number,
  w: W,
  c: { outputDim: number; numQueries: number; numHeads: number; depth: number; epsilon: number },
): Float64Array {
  const d = c.outputDim;
  const q = c.numQueries;
  const dh = d / c.numHeads;
  const kv = linear(x, tokens, w['kv_proj.weight'], undefined);
  let h = Float64Array.from(w.queries.data);
  for (let l = 0; l < c.depth; l++) {
    const p = `layers.${l}`;
    const hq = layerNorm(h, q, d, w[`${p}.norm_q.weight`].data, w[`${p}.norm_q.bias`].data, c.epsilon);
    const hk = layerNorm(kv, tokens, d, w[`${p}.norm_kv.weight`].data, w[`${p}.norm_kv.bias`].data, c.epsilon);
    const Q = linear(hq, q, w[`${p}.attn.q_proj.weight`], w[`${p}.attn.q_proj.bias`]);
    const K = linear(hk, tokens, w[`${p}.attn.k_proj.weight`], w[`${p}.attn.k_proj.bias`]);
    const V = linear(hk, tokens, w[`${p}.attn.v_proj.weight`], w[`${p}.attn.v_proj.bias`]);
    const ctx = new Float64Array(q * d);
    for (let head = 0; head < c.numHeads; head++) {
      for (let i = 0; i < q; i++) {
        const s = new Float64Array(tokens);
        let max = -Infinity;
        for (let j = 0; j < tokens; j++) {
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += Q[i * d + head * dh + e] * K[j * d + head * dh + e];
          s[j] = dot / Math.sqrt(dh);
          max = Math.max(max, s[j]);
        }
        let z = 0;
        for (let j = 0; j < tokens; j++) z += (s[j] = Math.exp(s[j] - max));
        for (let e = 0; e < dh; e++) {
          let acc = 0;
          for (let j = 0; j < tokens; j++) acc += (s[j] / z) * V[j * d + head * dh + e];
          ctx[i * d + head * dh + e] = acc;
        }
      }
    }
    const o = linear(ctx, q, w[`${p}.attn.o_proj.weight`], w[`${p}.attn.o_proj.bias`]);
    h = h.map((v, i) => v + o[i]);
    const f = mlp(layerNorm(h, q, d, w[`${p}.norm_ffn.weight`].data, w[`${p}.norm_ffn.bias`].data, c.epsilon), q, w, `${p}.ffn.`);
    h = h.map((v, i) => v + f[i]);
  }
  return layerNorm(h, q, d, w['norm_out.weight'].data, w['norm_out.bias'].data, c.epsilon);
}
