/**
 * Independent float64 forward pass of the Llama architecture, written as plain loops from the
 * Hugging Face modeling_llama definitions (RMSNorm, rotate_half RoPE, repeat_kv GQA, causal softmax,
 * SwiGLU), for tests, on top of @vlit/test-kit's linear and attention. No graph code. Not exported
 * from the package.
 */
import { attention, linear, silu, type WeightLike } from '@vlit/test-kit';
import type { LlamaConfig } from '../llama-config.js';

type W = Record<string, WeightLike>;

/** RMSNorm per row: x / sqrt(mean(x²) + eps) * weight. */
export function rmsNorm(x: Float64Array, rows: number, dim: number, weight: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ms = 0;
    for (let i = 0; i < dim; i++) ms += x[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(ms / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * inv * weight[i];
  }
  return y;
}

/** Rotate one head vector in place: channels j and j + d/2 by angle pos * theta^(-2j/d). */
export function ropeInPlace(v: Float64Array, offset: number, d: number, pos: number, theta: number): void {
  const half = d / 2;
  for (let j = 0; j < half; j++) {
    const a = pos * theta ** (-(2 * j) / d);
    const x1 = v[offset + j];
    const x2 = v[offset + j + half];
    v[offset + j] = x1 * Math.cos(a) - x2 * Math.sin(a);
    v[offset + j + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
  }
}

/** Logits [seq, vocab] of one sequence of embeddings [seq, hidden] at the given positions (default 0..seq-1). */
export function llamaReference(config: LlamaConfig, w: W, embeds: Float64Array, seq: number, positions?: readonly number[]): Float64Array {
  const { hiddenSize: h, numAttentionHeads: nh, numKeyValueHeads: kvh, headDim: hd, intermediateSize: m } = config;
  const pos = positions ?? Array.from({ length: seq }, (_, i) => i);
  let x = Float64Array.from(embeds);
  for (let l = 0; l < config.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    const n = rmsNorm(x, seq, h, w[`${p}.input_layernorm.weight`].data, config.rmsNormEps);
    const q = linear(n, seq, w[`${p}.self_attn.q_proj.weight`]);
    const k = linear(n, seq, w[`${p}.self_attn.k_proj.weight`]);
    const v = linear(n, seq, w[`${p}.self_attn.v_proj.weight`]);
    for (let t = 0; t < seq; t++) {
      for (let head = 0; head < nh; head++) ropeInPlace(q, t * nh * hd + head * hd, hd, pos[t], config.ropeTheta);
      for (let head = 0; head < kvh; head++) ropeInPlace(k, t * kvh * hd + head * hd, hd, pos[t], config.ropeTheta);
    }
    // Causal softmax(q kᵀ / sqrt(hd)) v; query head h reads key/value head floor(h / (nh / kvh)) (repeat_kv).
    const ctx = attention(q, k, v, { queries: seq, keys: seq, heads: nh, kvHeads: kvh, headDim: hd, causal: true });
    const o = linear(ctx, seq, w[`${p}.self_attn.o_proj.weight`]);
    x = x.map((val, i) => val + o[i]);
    const n2 = rmsNorm(x, seq, h, w[`${p}.post_attention_layernorm.weight`].data, config.rmsNormEps);
    const gate = linear(n2, seq, w[`${p}.mlp.gate_proj.weight`]);
    const up = linear(n2, seq, w[`${p}.mlp.up_proj.weight`]);
    const act = new Float64Array(seq * m);
    for (let i = 0; i < act.length; i++) act[i] = silu(gate[i]) * up[i];
    const down = linear(act, seq, w[`${p}.mlp.down_proj.weight`]);
    x = x.map((val, i) => val + down[i]);
  }
  const final = rmsNorm(x, seq, h, w['model.norm.weight'].data, config.rmsNormEps);
  return linear(final, seq, w[config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight']);
}

/** Embedding rows of token ids. */
export function embedReference(w: W, ids: readonly number[], hidden: number): Float64Array {
  const out = new Float64Array(ids.length * hidden);
  const table = w['model.embed_tokens.weight'].data;
  ids.forEach((id, t) => {
    for (let i = 0; i < hidden; i++) out[t * hidden + i] = table[id * hidden + i];
  });
  return out;
}
