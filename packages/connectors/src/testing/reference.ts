/**
 * Independent float64 references of every connector, written as plain loops over row-major arrays
 * (no graph code) on top of @vlit/test-kit's primitives, for the tests. Not exported from the package.
 */
import { attention, gelu, layerNorm, linear, type WeightLike } from '@vlit/test-kit';

type W = Record<string, WeightLike>;

function mlp(x: Float64Array, rows: number, w: W, prefix = ''): Float64Array {
  const h = linear(x, rows, w[`${prefix}linear_1.weight`], w[`${prefix}linear_1.bias`]?.data).map(gelu);
  return linear(h, rows, w[`${prefix}linear_2.weight`], w[`${prefix}linear_2.bias`]?.data);
}

/** Per image: features [T, C] -> output rows. */
export function linearRef(x: Float64Array, tokens: number, w: W): Float64Array {
  return linear(x, tokens, w['linear.weight'], w['linear.bias']?.data);
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
  const kv = linear(x, tokens, w['kv_proj.weight']);
  let h = Float64Array.from(w.queries.data);
  for (let l = 0; l < c.depth; l++) {
    const p = `layers.${l}`;
    const hq = layerNorm(h, q, d, w[`${p}.norm_q.weight`].data, w[`${p}.norm_q.bias`].data, c.epsilon);
    const hk = layerNorm(kv, tokens, d, w[`${p}.norm_kv.weight`].data, w[`${p}.norm_kv.bias`].data, c.epsilon);
    const Q = linear(hq, q, w[`${p}.attn.q_proj.weight`], w[`${p}.attn.q_proj.bias`]?.data);
    const K = linear(hk, tokens, w[`${p}.attn.k_proj.weight`], w[`${p}.attn.k_proj.bias`]?.data);
    const V = linear(hk, tokens, w[`${p}.attn.v_proj.weight`], w[`${p}.attn.v_proj.bias`]?.data);
    const ctx = attention(Q, K, V, { queries: q, keys: tokens, heads: c.numHeads, headDim: d / c.numHeads });
    const o = linear(ctx, q, w[`${p}.attn.o_proj.weight`], w[`${p}.attn.o_proj.bias`]?.data);
    h = h.map((v, i) => v + o[i]);
    const f = mlp(layerNorm(h, q, d, w[`${p}.norm_ffn.weight`].data, w[`${p}.norm_ffn.bias`].data, c.epsilon), q, w, `${p}.ffn.`);
    h = h.map((v, i) => v + f[i]);
  }
  return layerNorm(h, q, d, w['norm_out.weight'].data, w['norm_out.bias'].data, c.epsilon);
}
