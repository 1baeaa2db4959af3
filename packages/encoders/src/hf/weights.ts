/**
 * The tensors a CLIP / SigLIP tower needs, under Hugging Face's names relative to the tower's root
 * (transformers 5 saves a CLIPVisionModel as `embeddings.…`; CLIPModel, older checkpoints and LLaVA
 * put a prefix such as `vision_model.` or `vision_tower.` in front), with their shapes, and
 * reading them from any named-tensor source with shape checks that name the tensor and both shapes.
 */
import { NotFoundError, TensorShapeError, createTensor, type Tensor } from '@vlit/core';
import { visionTowerTokens, type HfDualEncoderSpec, type HfTextTowerSpec, type HfVisionTowerSpec } from './config.js';

/** Float32 weights by Hugging Face name. */
export type HfWeights = ReadonlyMap<string, Tensor<'float32'>>;

/** Where tensors come from: a checkpoint folder, a parsed safetensors file, a map. */
export interface HfTensorSource {
  /** Every tensor name the source holds. */
  tensorNames(): string[];
  /** Shape of a tensor, or undefined when absent. */
  shapeOf(name: string): readonly number[] | undefined;
  /** The tensor widened to float32. */
  readFloat32(name: string): Promise<Float32Array>;
  /** File the tensors come from, named in errors. */
  readonly file?: string;
}

function encoderLayerShapes(prefix: string, layers: number, D: number, I: number): [string, number[]][] {
  const out: [string, number[]][] = [];
  for (let i = 0; i < layers; i++) {
    const L = `${prefix}encoder.layers.${i}`;
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) out.push([`${L}.self_attn.${p}.weight`, [D, D]], [`${L}.self_attn.${p}.bias`, [D]]);
    out.push([`${L}.layer_norm1.weight`, [D]], [`${L}.layer_norm1.bias`, [D]]);
    out.push([`${L}.mlp.fc1.weight`, [I, D]], [`${L}.mlp.fc1.bias`, [I]]);
    out.push([`${L}.mlp.fc2.weight`, [D, I]], [`${L}.mlp.fc2.bias`, [D]]);
    out.push([`${L}.layer_norm2.weight`, [D]], [`${L}.layer_norm2.bias`, [D]]);
  }
  return out;
}

/** Every tensor of a vision tower (post-LayerNorm and SigLIP's head included), relative names, stable order. */
export function visionTowerWeightShapes(spec: HfVisionTowerSpec): [string, number[]][] {
  const D = spec.hiddenSize;
  const I = spec.intermediateSize;
  const { tokens } = visionTowerTokens(spec);
  const out: [string, number[]][] = [];
  if (spec.family === 'clip') out.push(['embeddings.class_embedding', [D]]);
  out.push(['embeddings.patch_embedding.weight', [D, spec.numChannels, spec.patchSize, spec.patchSize]]);
  if (spec.family === 'siglip') out.push(['embeddings.patch_embedding.bias', [D]]);
  out.push(['embeddings.position_embedding.weight', [tokens, D]]);
  if (spec.family === 'clip') out.push(['pre_layrnorm.weight', [D]], ['pre_layrnorm.bias', [D]]);
  out.push(...encoderLayerShapes('', spec.numLayers, D, I));
  out.push(['post_layernorm.weight', [D]], ['post_layernorm.bias', [D]]);
  if (spec.useHead) {
    out.push(['head.probe', [1, 1, D]]);
    out.push(['head.attention.in_proj_weight', [3 * D, D]], ['head.attention.in_proj_bias', [3 * D]]);
    out.push(['head.attention.out_proj.weight', [D, D]], ['head.attention.out_proj.bias', [D]]);
    out.push(['head.layernorm.weight', [D]], ['head.layernorm.bias', [D]]);
    out.push(['head.mlp.fc1.weight', [I, D]], ['head.mlp.fc1.bias', [I]]);
    out.push(['head.mlp.fc2.weight', [D, I]], ['head.mlp.fc2.bias', [D]]);
  }
  return out;
}

/** Every tensor of a text tower, relative names. */
export function textTowerWeightShapes(spec: HfTextTowerSpec): [string, number[]][] {
  const D = spec.hiddenSize;
  const out: [string, number[]][] = [
    ['embeddings.token_embedding.weight', [spec.vocabSize, D]],
    ['embeddings.position_embedding.weight', [spec.maxPositions, D]],
    ...encoderLayerShapes('', spec.numLayers, D, spec.intermediateSize),
    ['final_layer_norm.weight', [D]],
    ['final_layer_norm.bias', [D]],
  ];
  if (spec.family === 'siglip') out.push(['head.weight', [spec.projectionSize, D]], ['head.bias', [spec.projectionSize]]);
  return out;
}

/** Every tensor of a CLIPModel / SiglipModel under its full checkpoint name. */
export function dualEncoderWeightShapes(spec: HfDualEncoderSpec): [string, number[]][] {
  const out: [string, number[]][] = [
    ...visionTowerWeightShapes(spec.vision).map(([n, s]) => [`vision_model.${n}`, s] as [string, number[]]),
    ...textTowerWeightShapes(spec.text).map(([n, s]) => [`text_model.${n}`, s] as [string, number[]]),
  ];
  if (spec.family === 'clip') {
    out.push(['visual_projection.weight', [spec.projectionDim, spec.vision.hiddenSize]]);
    out.push(['text_projection.weight', [spec.projectionDim, spec.text.hiddenSize]]);
    out.push(['logit_scale', []]);
  } else {
    out.push(['logit_scale', [1]], ['logit_bias', [1]]);
  }
  return out;
}

/**
 * The prefix in front of a vision tower's tensor names: '' (transformers 5 CLIPVisionModel),
 * `vision_model.` (CLIPModel, transformers 4), `vision_tower.` (LLaVA, as transformers 5 saves it), ….
 * Found from the patch embedding, the one tensor every tower has exactly once.
 */
export function findVisionTowerPrefix(names: readonly string[], options: { file?: string } = {}): string {
  const key = 'embeddings.patch_embedding.weight';
  const found = names.filter((n) => n === key || n.endsWith(`.${key}`)).map((n) => n.slice(0, n.length - key.length));
  if (found.length === 1) return found[0];
  if (found.length === 0) {
    throw new NotFoundError(`the checkpoint has no vision tower: no tensor named ${key} under any prefix`, { details: { file: options.file, field: key } });
  }
  throw new NotFoundError(`the checkpoint has several vision towers (${found.map((p) => p || '<root>').join(', ')}); pass the prefix to use`, {
    details: { file: options.file, field: key, prefixes: found },
  });
}

/**
 * Read the listed tensors (names relative to `prefix`) into float32, checking each shape first: a
 * missing tensor is a NotFoundError naming it, a wrong shape a TensorShapeError naming it and both shapes.
 */
export async function readHfWeights(
  source: HfTensorSource,
  shapes: readonly (readonly [string, readonly number[]])[],
  options: { prefix?: string } = {},
): Promise<Map<string, Tensor<'float32'>>> {
  const prefix = options.prefix ?? '';
  const file = source.file;
  const out = new Map<string, Tensor<'float32'>>();
  for (const [name, shape] of shapes) {
    const full = prefix + name;
    const actual = source.shapeOf(full);
    if (!actual) throw new NotFoundError(`the checkpoint has no tensor ${full}`, { details: { file, field: full } });
    // A scalar saved as [1] (or the reverse) is the same value; transformers loads either.
    const sameScalar = shape.reduce((a, b) => a * b, 1) === 1 && actual.reduce((a, b) => a * b, 1) === 1 && shape.length <= 1 && actual.length <= 1;
    if (!sameScalar && (actual.length !== shape.length || actual.some((d, i) => d !== shape[i]))) {
      throw new TensorShapeError(`tensor ${full} is [${actual.join(', ')}] but the config needs [${shape.join(', ')}]`, {
        details: { file, field: full, expected: [...shape], actual: [...actual] },
      });
    }
    out.set(name, createTensor('float32', [...shape], await source.readFloat32(full)));
  }
  return out;
}

/** Check that a weight map holds every listed tensor with its shape (for weights built in code). */
export function checkHfWeights(weights: HfWeights, shapes: readonly (readonly [string, readonly number[]])[], options: { file?: string } = {}): void {
  for (const [name, shape] of shapes) {
    const t = weights.get(name);
    if (!t) throw new NotFoundError(`weight ${name} is missing`, { details: { file: options.file, field: name } });
    if (t.dims.length !== shape.length || t.dims.some((d, i) => d !== shape[i])) {
      throw new TensorShapeError(`weight ${name} is [${t.dims.join(', ')}] but the config needs [${shape.join(', ')}]`, {
        details: { file: options.file, field: name, expected: [...shape], actual: [...t.dims] },
      });
    }
  }
}

/** A tensor source over an in-memory map (e.g. tensors parsed from one safetensors file). */
export function mapTensorSource(tensors: ReadonlyMap<string, { shape: readonly number[]; toFloat32(): Float32Array }>, file?: string): HfTensorSource {
  return {
    file,
    tensorNames: () => [...tensors.keys()],
    shapeOf: (name) => tensors.get(name)?.shape,
    readFloat32: async (name) => {
      const t = tensors.get(name);
      if (!t) throw new NotFoundError(`the checkpoint has no tensor ${name}`, { details: { file, field: name } });
      return t.toFloat32();
    },
  };
}
