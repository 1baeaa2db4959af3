/**
 * The ViT as an ONNX graph built with @vlit/graph, in the layout Vlit's ONNX encoder loads:
 * input `pixel_values` [batch, C, S, S]; outputs `last_hidden_state` [batch, T, D],
 * `pooler_output` [batch, D] and every hidden state `hidden_states.{i}` (i = 0 is the embeddings
 * after the pre-LayerNorm, i = L the last block), as CLIPVisionModel with output_hidden_states.
 * Initializers keep the Hugging Face names and [out, in] layout (Transpose nodes, folded by the runtime).
 */
import { createTensor } from '@vlit/core';
import { createGraph, type GraphBuilder, type OnnxModel, type Value } from '@vlit/graph';
import { vitTokenCounts, type VitConfig } from './config.js';
import { checkVitWeights, type VitWeights } from './weights.js';

/** Input name of the ViT layout. */
export const VIT_INPUT = 'pixel_values';
/** Output name of the last block's hidden state. */
export const VIT_LAST_HIDDEN = 'last_hidden_state';
/** Output name of the pooled (post-LayerNorm CLS, or mean) vector. */
export const VIT_POOLER = 'pooler_output';
/** Name of hidden state `i` (0 = embeddings). */
export function hiddenStateName(i: number): string {
  return `hidden_states.${i}`;
}

function activation(g: GraphBuilder, x: Value, act: VitConfig['hiddenAct'], name: string): Value {
  if (act === 'gelu') return g.gelu(x, { name: `${name}.gelu` });
  if (act === 'gelu_tanh') return g.gelu(x, { name: `${name}.gelu`, approximate: 'tanh' });
  return g.mul(x, g.sigmoid(g.mul(x, 1.702)), { name: `${name}.quick_gelu` });
}

/** Build the ViT graph for a config and its weights (checked by name and shape first). */
export function buildVitModel(config: VitConfig, weights: VitWeights, options: { name?: string } = {}): OnnxModel {
  checkVitWeights(config, weights);
  const D = config.hiddenSize;
  const H = config.numHeads;
  const dh = D / H;
  const { patches, tokens: T } = vitTokenCounts(config);
  const g = createGraph({ name: options.name ?? 'vlit-vit', opset: 20, producerName: 'vlit' });
  const added = new Map<string, Value>();
  const w = (name: string): Value => {
    let v = added.get(name);
    if (!v) added.set(name, (v = g.initializer(name, weights.get(name)!)));
    return v;
  };
  const linear = (x: Value, prefix: string) => g.add(g.matMul(x, g.transpose(w(`${prefix}.weight`), [1, 0])), w(`${prefix}.bias`), { name: prefix });
  const ln = (x: Value, prefix: string) =>
    g.layerNormalization(x, w(`${prefix}.weight`), w(`${prefix}.bias`), { axis: -1, epsilon: config.layerNormEps, name: prefix });

  const pixels = g.input(VIT_INPUT, 'float32', ['batch', config.numChannels, config.imageSize, config.imageSize]);
  const conv = g.conv(pixels, w('vision_model.embeddings.patch_embedding.weight'), null, {
    strides: [config.patchSize, config.patchSize],
    kernelShape: [config.patchSize, config.patchSize],
    name: 'vision_model.embeddings.patch_embedding',
  });
  // [B, D, g, g] -> [B, D, g²] -> [B, g², D]; 0 copies the batch dim.
  let x = g.transpose(g.reshape(conv, [0, D, patches]), [0, 2, 1]);
  if (config.clsToken) {
    const cls = g.reshape(w('vision_model.embeddings.class_embedding'), [1, 1, D]);
    const batch = g.shape(pixels, { start: 0, end: 1 });
    const shape = g.concat([batch, g.constant(createTensor('int64', [2], [1n, BigInt(D)]))], 0);
    x = g.concat([g.expand(cls, shape), x], 1);
  }
  x = g.add(x, w('vision_model.embeddings.position_embedding.weight'));
  x = ln(x, 'vision_model.pre_layrnorm');
  g.output(x, hiddenStateName(0));

  const scale = 1 / Math.sqrt(dh);
  for (let i = 0; i < config.numLayers; i++) {
    const L = `vision_model.encoder.layers.${i}`;
    const h = ln(x, `${L}.layer_norm1`);
    const heads = (v: Value, perm: number[]) => g.transpose(g.reshape(v, [0, T, H, dh]), perm);
    // CLIPAttention scales the queries before the product.
    const q = heads(g.mul(linear(h, `${L}.self_attn.q_proj`), scale), [0, 2, 1, 3]);
    const k = heads(linear(h, `${L}.self_attn.k_proj`), [0, 2, 3, 1]);
    const v = heads(linear(h, `${L}.self_attn.v_proj`), [0, 2, 1, 3]);
    const probs = g.softmax(g.matMul(q, k), { axis: -1 });
    const ctx = g.reshape(g.transpose(g.matMul(probs, v), [0, 2, 1, 3]), [0, T, D]);
    x = g.add(x, linear(ctx, `${L}.self_attn.out_proj`));
    const m = linear(activation(g, linear(ln(x, `${L}.layer_norm2`), `${L}.mlp.fc1`), config.hiddenAct, `${L}.mlp`), `${L}.mlp.fc2`);
    x = g.add(x, m);
    g.output(x, hiddenStateName(i + 1));
  }
  g.output(x, VIT_LAST_HIDDEN);
  // CLIP pools the CLS token; without one, the mean of the patch tokens.
  const pooled = config.clsToken ? g.squeeze(g.slice(x, { starts: [0], ends: [1], axes: [1] }), [1]) : g.reduceMean(x, [1], { keepdims: false });
  g.output(ln(pooled, 'vision_model.post_layernorm'), VIT_POOLER);
  return g.toModel();
}
