/**
 * A plain TypeScript float64 forward of the ViT, written from CLIPVisionTransformer's definition
 * (not from the ONNX graph) on top of @vlit/test-kit's primitives, as the independent expectation
 * for tests. Test-only: not exported.
 */
import { attention, gelu, geluTanh, layerNorm, linear, patchEmbed, quickGelu } from '@vlit/test-kit';
import type { VitConfig } from '../vit/config.js';
import type { VitWeights } from '../vit/weights.js';

/** HF's hidden_act names to their formulas: exact erf GELU, the tanh approximation, QuickGELU. */
const ACTIVATIONS: Record<VitConfig['hiddenAct'], (x: number) => number> = { gelu, gelu_tanh: geluTanh, quick_gelu: quickGelu };

/** All hidden states (L + 1, each [T, D]) and the pooled output of one image [C, S, S]. */
export function vitReference(config: VitConfig, weights: VitWeights, pixels: Float32Array): { hidden: Float64Array[]; pooled: Float64Array } {
  const W = (n: string) => weights.get(n)!.data;
  /** HF Linear `${name}.weight` [out, in] and `${name}.bias`. */
  const lin = (x: Float64Array, rows: number, name: string) => linear(x, rows, weights.get(`${name}.weight`)!, W(`${name}.bias`));
  const { imageSize: S, patchSize: p, hiddenSize: D, numHeads: H, numChannels: C } = config;
  const g = S / p;
  const T = g * g + (config.clsToken ? 1 : 0);
  const off = config.clsToken ? 1 : 0;
  let x: Float64Array = new Float64Array(T * D);
  // CLIP's patch embedding is a bias-free Conv; patch tokens follow the class token when there is one.
  x.set(patchEmbed(pixels, W('vision_model.embeddings.patch_embedding.weight'), undefined, C, S, S, D, p), off * D);
  if (config.clsToken) {
    const cls = W('vision_model.embeddings.class_embedding');
    for (let o = 0; o < D; o++) x[o] = cls[o];
  }
  const pos = W('vision_model.embeddings.position_embedding.weight');
  for (let i = 0; i < T * D; i++) x[i] += pos[i];
  x = layerNorm(x, T, D, W('vision_model.pre_layrnorm.weight'), W('vision_model.pre_layrnorm.bias'), config.layerNormEps);
  const hidden = [x];
  const act = ACTIVATIONS[config.hiddenAct];
  for (let l = 0; l < config.numLayers; l++) {
    const L = `vision_model.encoder.layers.${l}`;
    const h = layerNorm(x, T, D, W(`${L}.layer_norm1.weight`), W(`${L}.layer_norm1.bias`), config.layerNormEps);
    const q = lin(h, T, `${L}.self_attn.q_proj`);
    const k = lin(h, T, `${L}.self_attn.k_proj`);
    const v = lin(h, T, `${L}.self_attn.v_proj`);
    const ctx = attention(q, k, v, { queries: T, keys: T, heads: H, headDim: D / H });
    const a = lin(ctx, T, `${L}.self_attn.out_proj`);
    const x1 = new Float64Array(T * D);
    for (let i = 0; i < T * D; i++) x1[i] = x[i] + a[i];
    const h2 = layerNorm(x1, T, D, W(`${L}.layer_norm2.weight`), W(`${L}.layer_norm2.bias`), config.layerNormEps);
    const f1 = lin(h2, T, `${L}.mlp.fc1`);
    for (let i = 0; i < f1.length; i++) f1[i] = act(f1[i]);
    const f2 = lin(f1, T, `${L}.mlp.fc2`);
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
