/**
 * Node loaders and savers for Hugging Face checkpoint folders of CLIP / SigLIP vision towers and
 * dual encoders: config.json + (sharded) safetensors + preprocessor_config.json in, Vlit encoders
 * out; and a vision tower back out as a folder `CLIPVisionModel.from_pretrained` loads.
 */
import { join } from 'node:path';
import { isVlitError, type SessionOptions, type Tensor, type Tokenizer, type VlitRuntime } from '@vlit/core';
import { openCheckpointFolder, writeCheckpointFolder, type CheckpointFolder } from '@vlit/core/node';
import { parsePreprocessorConfig, preprocessorConfigFromSettings, type PreprocessorConfig } from '../preprocess/config.js';
import { dualEncoderSpecFromConfig, visionTowerSpecFromConfig, visionTowerSpecToConfig, type HfVisionTowerSpec } from './config.js';
import { createHfDualEncoder, type HfDualEncoder } from './dual-encoder.js';
import type { HfSelectStrategy } from './graph.js';
import { createHfVisionEncoder, type HfVisionEncoder } from './vision-encoder.js';
import {
  checkHfWeights,
  dualEncoderWeightShapes,
  findVisionTowerPrefix,
  readHfWeights,
  visionTowerWeightShapes,
  type HfTensorSource,
  type HfWeights,
} from './weights.js';

function folderSource(folder: CheckpointFolder): HfTensorSource {
  return {
    file: folder.dir,
    tensorNames: () => folder.tensorNames(),
    shapeOf: (name) => folder.info(name)?.shape,
    readFloat32: (name) => folder.readFloat32(name),
  };
}

async function withFolder<T>(dir: string, fn: (folder: CheckpointFolder) => Promise<T>): Promise<T> {
  const folder = await openCheckpointFolder(dir);
  try {
    return await fn(folder);
  } finally {
    await folder.close();
  }
}

async function readProcessor(folder: CheckpointFolder): Promise<PreprocessorConfig | undefined> {
  const json = await folder.readJson('preprocessor_config.json');
  return json === undefined ? undefined : parsePreprocessorConfig(json, { file: join(folder.dir, 'preprocessor_config.json') });
}

/** Options of loadHfVisionEncoder. */
export interface LoadHfVisionEncoderOptions {
  runtime: VlitRuntime;
  /** LLaVA's `vision_feature_layer`; default the folder config's `vision_feature_layer` (LLaVA), else -2. */
  featureLayer?: number | readonly number[];
  /** LLaVA's `vision_feature_select_strategy`; default the config's, else `default` for CLIP and `full` for SigLIP. */
  selectStrategy?: HfSelectStrategy;
  /** Prefix of the tower's tensor names; found from the patch embedding when absent. */
  prefix?: string;
  maxBatch?: number;
  session?: SessionOptions;
  id?: string;
}

function featureLayerFromConfig(config: Record<string, unknown>): number | number[] | undefined {
  const v = config.vision_feature_layer;
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
  return undefined;
}

/** The tensors a tower needs to run, plus those it carries for saving (post-LayerNorm, SigLIP head) when present. */
async function readVisionTowerWeights(source: HfTensorSource, spec: HfVisionTowerSpec, prefix: string): Promise<Map<string, Tensor<'float32'>>> {
  const all = visionTowerWeightShapes(spec);
  const optional = (n: string) => n.startsWith('post_layernorm') || n.startsWith('head.');
  const weights = await readHfWeights(
    source,
    all.filter(([n]) => !optional(n)),
    { prefix },
  );
  const extra = all.filter(([n]) => optional(n) && source.shapeOf(prefix + n) !== undefined);
  for (const [k, v] of await readHfWeights(source, extra, { prefix })) weights.set(k, v);
  return weights;
}

/**
 * Load a CLIP / SigLIP vision tower from a checkpoint folder (a CLIPVisionModel, SiglipVisionModel,
 * CLIPModel, SiglipModel or LLaVA folder) as a VisionEncoder with LLaVA's feature selection; the
 * processor comes from the folder's preprocessor_config.json.
 */
export async function loadHfVisionEncoder(dir: string, options: LoadHfVisionEncoderOptions): Promise<HfVisionEncoder> {
  return withFolder(dir, async (folder) => {
    const configFile = join(dir, 'config.json');
    const spec = visionTowerSpecFromConfig(folder.config, { file: configFile });
    const source = folderSource(folder);
    const prefix = options.prefix ?? findVisionTowerPrefix(folder.tensorNames(), { file: dir });
    const weights = await readVisionTowerWeights(source, spec, prefix);
    const strategy = folder.config.vision_feature_select_strategy;
    return createHfVisionEncoder({
      backend: options.runtime.backend,
      spec,
      weights,
      preprocessor: await readProcessor(folder),
      featureLayer: options.featureLayer ?? featureLayerFromConfig(folder.config),
      selectStrategy: options.selectStrategy ?? (strategy === 'default' || strategy === 'full' ? strategy : undefined),
      maxBatch: options.maxBatch,
      session: options.session,
      id: options.id,
    });
  });
}

/** Options of loadHfDualEncoder. */
export interface LoadHfDualEncoderOptions {
  runtime: VlitRuntime;
  /** The model's tokenizer, for `text.embed(strings)`; without one only `text.embedIds` works. */
  tokenizer?: Tokenizer;
  maxBatch?: number;
  session?: SessionOptions;
  id?: string;
}

/** Load a CLIPModel / SiglipModel folder as a TextEmbedder + VisionEncoder pair sharing one space. */
export async function loadHfDualEncoder(dir: string, options: LoadHfDualEncoderOptions): Promise<HfDualEncoder> {
  return withFolder(dir, async (folder) => {
    const spec = dualEncoderSpecFromConfig(folder.config, { file: join(dir, 'config.json') });
    const weights = await readHfWeights(folderSource(folder), dualEncoderWeightShapes(spec));
    return createHfDualEncoder({
      backend: options.runtime.backend,
      spec,
      weights,
      tokenizer: options.tokenizer,
      preprocessor: await readProcessor(folder),
      maxBatch: options.maxBatch,
      session: options.session,
      id: options.id,
    });
  });
}

/** A vision tower to save: a loaded encoder, or a spec and its weights. */
export type HfVisionTowerToSave = Pick<HfVisionEncoder, 'spec' | 'weights'> & { settings?: HfVisionEncoder['settings'] };

/** Options of saveHfVisionTower. */
export interface SaveHfVisionTowerOptions {
  /** Dtype of the float tensors (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  maxShardBytes?: number;
}

/**
 * Write a vision tower as a CLIPVisionModel / SiglipVisionModel folder (config.json, safetensors
 * under `vision_model.` names, which transformers 4 and 5 both load, and preprocessor_config.json).
 * Every tensor must be there, post-LayerNorm and SigLIP's head included, so nothing loads as random.
 */
export async function saveHfVisionTower(dir: string, tower: HfVisionTowerToSave, options: SaveHfVisionTowerOptions = {}): Promise<void> {
  const shapes = visionTowerWeightShapes(tower.spec);
  try {
    checkHfWeights(tower.weights, shapes);
  } catch (err) {
    if (isVlitError(err) && err.details.file === undefined) err.details.file = dir;
    throw err;
  }
  const tensors = new Map<string, Tensor>(shapes.map(([n]) => [`vision_model.${n}`, tower.weights.get(n)!]));
  const files: Record<string, string> = {};
  if (tower.settings) {
    const pp = preprocessorConfigFromSettings(tower.settings);
    if (tower.spec.family === 'siglip') pp.image_processor_type = 'SiglipImageProcessor';
    files['preprocessor_config.json'] = JSON.stringify(pp, null, 2) + '\n';
  }
  await writeCheckpointFolder(dir, { config: visionTowerSpecToConfig(tower.spec), tensors, dtype: options.dtype, maxShardBytes: options.maxShardBytes, files });
}

/** Weights of a tower as read from a folder (relative names), for building graphs without a session. */
export async function readHfVisionTowerWeights(dir: string, options: { prefix?: string } = {}): Promise<{ spec: HfVisionTowerSpec; weights: HfWeights }> {
  return withFolder(dir, async (folder) => {
    const spec = visionTowerSpecFromConfig(folder.config, { file: join(dir, 'config.json') });
    const prefix = options.prefix ?? findVisionTowerPrefix(folder.tensorNames(), { file: dir });
    return { spec, weights: await readVisionTowerWeights(folderSource(folder), spec, prefix) };
  });
}
