/**
 * The conformance cases' float64 expectations, composed from @vlit/test-kit's plain references
 * (written from the ONNX operator definitions and the textbook formulas, sharing no code with the
 * graph builder or any runtime). Weights here are in the ONNX MatMul layout [in, out].
 */
import { addBias, attention, gelu, matmul } from '@vlit/test-kit';

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
  const q = addBias(matmul(x, w.wq, tokens, d, d), w.bq, d);
  const k = addBias(matmul(x, w.wk, tokens, d, d), w.bk, d);
  const v = addBias(matmul(x, w.wv, tokens, d, d), w.bv, d);
  const concat = attention(q, k, v, { queries: tokens, keys: tokens, heads, headDim: d / heads });
  return addBias(matmul(concat, w.wo, tokens, d, d), w.bo, d);
}
