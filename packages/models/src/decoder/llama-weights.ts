/**
 * Weights of the Llama-style decoder under Hugging Face Llama tensor names (torch layout: Linear
 * weights are [out, in]), from a seed or from safetensors.
 */
import {
  NotFoundError,
  seededTensors,
  float32TensorOfShape,
  assertFloat32Weight,
  parseSafetensors,
  serializeSafetensors,
  type SafetensorsFile,
  type Tensor,
} from '@vlit/core';
import { normalizeLlamaConfig, toHfLlamaConfig, type LlamaConfig, type LlamaConfigInput } from './llama-config.js';

/** Decoder weights by Hugging Face name. */
export type LlamaWeights = Record<string, Tensor<'float32'>>;

/** Metadata key under which saved decoder weights record the Hugging Face config. */
export const LLAMA_METADATA_KEY = 'vlit.llama_config';

/** Shape of every weight, by Hugging Face Llama name. */
export function llamaWeightShapes(config: LlamaConfig): Record<string, number[]> {
  const { hiddenSize: h, intermediateSize: m, vocabSize: v, numAttentionHeads: nh, numKeyValueHeads: kv, headDim: hd } = config;
  const shapes: Record<string, number[]> = { 'model.embed_tokens.weight': [v, h] };
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    shapes[`${p}.input_layernorm.weight`] = [h];
    shapes[`${p}.self_attn.q_proj.weight`] = [nh * hd, h];
    shapes[`${p}.self_attn.k_proj.weight`] = [kv * hd, h];
    shapes[`${p}.self_attn.v_proj.weight`] = [kv * hd, h];
    shapes[`${p}.self_attn.o_proj.weight`] = [h, nh * hd];
    if (config.qkvBias) {
      shapes[`${p}.self_attn.q_proj.bias`] = [nh * hd];
      shapes[`${p}.self_attn.k_proj.bias`] = [kv * hd];
      shapes[`${p}.self_attn.v_proj.bias`] = [kv * hd];
    }
    if (config.oProjBias) shapes[`${p}.self_attn.o_proj.bias`] = [h];
    shapes[`${p}.post_attention_layernorm.weight`] = [h];
    shapes[`${p}.mlp.gate_proj.weight`] = [m, h];
    shapes[`${p}.mlp.up_proj.weight`] = [m, h];
    shapes[`${p}.mlp.down_proj.weight`] = [h, m];
    if (config.mlpBias) {
      shapes[`${p}.mlp.gate_proj.bias`] = [m];
      shapes[`${p}.mlp.up_proj.bias`] = [m];
      shapes[`${p}.mlp.down_proj.bias`] = [h];
    }
  }
  shapes['model.norm.weight'] = [h];
  if (!config.tieWordEmbeddings) shapes['lm_head.weight'] = [v, h];
  return shapes;
}

/**
 * Deterministic weights: embeddings ~ N(0, 1), Linear ~ N(0, 1/fan_in), RMSNorm scales 1 + N(0, 0.1²)
 * (not exactly 1, so tests see them). Wider than Hugging Face's 0.02 init on purpose: a tiny random
 * model then has well-separated logits, so greedy decoding is stable across runtimes.
 */
export function initLlamaWeights(config: LlamaConfigInput, seed: number | string = 0): LlamaWeights {
  const c = normalizeLlamaConfig(config);
  return seededTensors(llamaWeightShapes(c), seed, (name, dims) => {
    if (name.endsWith('.bias')) return { std: 0.1 };
    // 1 + N(0, 0.1²), the offset added after the float32 draw.
    if (dims.length === 1) return { std: 0.1, offset: 1 };
    if (name === 'model.embed_tokens.weight') return { std: 1 };
    return { std: 1 / Math.sqrt(dims[1]) };
  });
}

/** Check every weight is present with its shape; CompatibilityError names the tensor and both shapes. */
export function checkLlamaWeights(config: LlamaConfig, weights: Readonly<Record<string, Tensor>>, file?: string): void {
  for (const [name, dims] of Object.entries(llamaWeightShapes(config))) {
    const t = weights[name];
    if (!t) throw new NotFoundError(`decoder weight '${name}' is missing`, { details: { file, field: name } });
    assertFloat32Weight(t, dims, { label: `decoder weight '${name}'`, neededBy: 'the configuration', field: name, file });
  }
}

/** Safetensors bytes with Hugging Face names and the config.json in the metadata. */
export function llamaWeightsToSafetensors(config: LlamaConfig, weights: LlamaWeights): Uint8Array {
  checkLlamaWeights(config, weights);
  const tensors: Record<string, Tensor> = {};
  for (const name of Object.keys(llamaWeightShapes(config))) tensors[name] = weights[name];
  return serializeSafetensors(tensors, { format: 'pt', [LLAMA_METADATA_KEY]: JSON.stringify(toHfLlamaConfig(config)) });
}

/**
 * Weights from a parsed safetensors file with Hugging Face Llama names (F16/BF16/F64 widen to float32).
 * A `language_model.` prefix (LLaVA checkpoints) is accepted; other tensors are ignored.
 */
export function llamaWeightsFromSafetensors(source: Uint8Array | SafetensorsFile, config: LlamaConfig, fileName?: string): LlamaWeights {
  const file = source instanceof Uint8Array ? parseSafetensors(source, { file: fileName }) : source;
  const out: LlamaWeights = {};
  for (const [name, dims] of Object.entries(llamaWeightShapes(config))) {
    const entry = file.tensors.get(name) ?? file.tensors.get(`language_model.${name}`);
    if (!entry) throw new NotFoundError(`decoder weight '${name}' is missing from the checkpoint`, { details: { file: fileName, field: name } });
    out[name] = float32TensorOfShape(entry, dims, { neededBy: 'the configuration', file: fileName, field: name });
  }
  return out;
}
