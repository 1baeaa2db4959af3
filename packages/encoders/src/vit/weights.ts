/**
 * ViT weights under Hugging Face CLIPVisionModel tensor names, so a real `model.safetensors`
 * loads as is. Linear weights keep PyTorch's [out, in] layout.
 */
import { NotFoundError, TensorShapeError, createTensor, sameDims, seededTensors, type SafetensorsFile, type Tensor } from '@vlit/core';
import { vitTokenCounts, type VitConfig } from './config.js';

/** Weights by Hugging Face name. */
export type VitWeights = Map<string, Tensor<'float32'>>;

const P = 'vision_model';

/** Every tensor a config needs, with its shape, in a stable order. */
export function vitWeightShapes(config: VitConfig): [string, number[]][] {
  const D = config.hiddenSize;
  const I = config.intermediateSize;
  const { tokens } = vitTokenCounts(config);
  const out: [string, number[]][] = [];
  if (config.clsToken) out.push([`${P}.embeddings.class_embedding`, [D]]);
  out.push([`${P}.embeddings.patch_embedding.weight`, [D, config.numChannels, config.patchSize, config.patchSize]]);
  out.push([`${P}.embeddings.position_embedding.weight`, [tokens, D]]);
  out.push([`${P}.pre_layrnorm.weight`, [D]], [`${P}.pre_layrnorm.bias`, [D]]);
  for (let i = 0; i < config.numLayers; i++) {
    const L = `${P}.encoder.layers.${i}`;
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) out.push([`${L}.self_attn.${p}.weight`, [D, D]], [`${L}.self_attn.${p}.bias`, [D]]);
    out.push([`${L}.layer_norm1.weight`, [D]], [`${L}.layer_norm1.bias`, [D]]);
    out.push([`${L}.mlp.fc1.weight`, [I, D]], [`${L}.mlp.fc1.bias`, [I]]);
    out.push([`${L}.mlp.fc2.weight`, [D, I]], [`${L}.mlp.fc2.bias`, [D]]);
    out.push([`${L}.layer_norm2.weight`, [D]], [`${L}.layer_norm2.bias`, [D]]);
  }
  out.push([`${P}.post_layernorm.weight`, [D]], [`${P}.post_layernorm.bias`, [D]]);
  return out;
}

/**
 * Deterministic weights from a seed: each tensor from its own stream (`rng.fork(name)`), so a
 * tensor's values do not depend on which others exist. Linear and conv weights ~ N(0, 1/fan_in),
 * biases ~ N(0, 0.02²), LayerNorm scales 1 + N(0, 0.05²), embeddings ~ N(0, 0.5²).
 */
export function createVitWeights(config: VitConfig, seed: number | string = 0): VitWeights {
  const tensors = seededTensors(Object.fromEntries(vitWeightShapes(config)), seed, (name, shape) => {
    if (name.endsWith('norm1.weight') || name.endsWith('norm2.weight') || name.endsWith('layrnorm.weight') || name.endsWith('layernorm.weight')) {
      return { std: 0.05, mean: 1 };
    }
    if (name.endsWith('.bias')) return { std: 0.02 };
    if (name.includes('embedding') && !name.includes('patch_embedding')) return { std: 0.5 };
    return { std: 1 / Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1)) };
  });
  return new Map(Object.entries(tensors));
}

/** Check that weights hold every tensor of the config with the right shape; errors name the tensor (and file). */
export function checkVitWeights(config: VitConfig, weights: ReadonlyMap<string, Tensor>, options: { file?: string } = {}): void {
  for (const [name, shape] of vitWeightShapes(config)) {
    const t = weights.get(name);
    if (!t) throw new NotFoundError(`ViT weight ${name} is missing`, { details: { file: options.file, field: name } });
    if (!sameDims(t.dims, shape)) {
      throw new TensorShapeError(`ViT weight ${name} is [${t.dims.join(', ')}], expected [${shape.join(', ')}]`, {
        details: { file: options.file, field: name },
      });
    }
  }
}

/** Weights from a parsed safetensors file (F32, F16, BF16, ... widened to float32); extra tensors (a text tower) are ignored. */
export function vitWeightsFromSafetensors(config: VitConfig, file: SafetensorsFile, options: { file?: string } = {}): VitWeights {
  const weights: VitWeights = new Map();
  for (const [name, shape] of vitWeightShapes(config)) {
    const entry = file.tensors.get(name);
    if (!entry) {
      throw new NotFoundError(`safetensors has no tensor ${name}`, { details: { file: options.file, field: name } });
    }
    if (!sameDims(entry.shape, shape)) {
      throw new TensorShapeError(`tensor ${name} is [${entry.shape.join(', ')}], the config needs [${shape.join(', ')}]`, {
        details: { file: options.file, field: name },
      });
    }
    weights.set(name, createTensor('float32', [...shape], entry.toFloat32()));
  }
  return weights;
}
