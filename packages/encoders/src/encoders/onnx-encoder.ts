/**
 * Any ONNX image encoder (CLIP/SigLIP-style exports) as a core VisionEncoder: preprocessing from a
 * Hugging Face `preprocessor_config.json`, then one hidden layer chosen and the CLS token dropped
 * or kept, as LLaVA's feature selection does (`mm_vision_select_layer = -2`, `patch` / `cls_patch`).
 *
 * Model layout: one float32 image input (`pixel_values` by convention) [batch, 3, H, W]; hidden
 * states as outputs `hidden_states.{i}` (i = 0 the embeddings), and/or `last_hidden_state`. A model
 * exported without hidden-state outputs can still be used by naming an inner tensor
 * (`exposeTensor`, made an output with @vlit/graph) or an existing output (`outputName`).
 */
import {
  InvalidArgumentError,
  NotFoundError,
  TensorShapeError,
  UnsupportedError,
  canonicalJson,
  createTensor,
  type EncodeImagesOptions,
  type InferenceBackend,
  type ImageSize,
  type RawImage,
  type SessionOptions,
  type Tensor,
  type VisionEncoder,
} from '@vlit/core';
import { decodeModel, encodeModel, exposeOutput } from '@vlit/graph';
import { isProcessorSettings, settingsFromPreprocessorConfig, type ImageProcessorSettings, type PreprocessorConfig } from '../preprocess/config.js';
import { convertToRgb, type Rgb } from '../preprocess/ops.js';
import { preprocessPixels, processedSize } from '../preprocess/pipeline.js';
import { anyresViews, type HeightWidth } from '../preprocess/tiling.js';
import { planVisualTokens, type FeatureSelect, type TokenPlan } from '../planner.js';
import { contentHash } from './hash.js';
import { pixelBatch, runPixelBatches, throwIfAborted } from './pixel-batches.js';

/** High-resolution tiling applied before the encoder (each view is encoded at the model's input size). */
export type EncoderTiling = { kind: 'anyres'; gridPinpoints: readonly HeightWidth[] };

/** Options of createOnnxVisionEncoder. */
export interface OnnxVisionEncoderOptions {
  backend: InferenceBackend;
  /** ONNX bytes, or a path (node) / URL (web) the backend loads. */
  model: Uint8Array | string;
  /** A parsed `preprocessor_config.json`, or resolved settings. */
  preprocessor: PreprocessorConfig | ImageProcessorSettings;
  /** Index into the hidden states, negative from the end (LLaVA's default -2: the penultimate block). */
  featureLayer?: number;
  /** `patch` drops the CLS token (LLaVA default), `cls_patch` keeps it. Default `patch`. */
  featureSelect?: FeatureSelect;
  /** Use this model output as the features instead of `hidden_states.{featureLayer}`. */
  outputName?: string;
  /** Make this inner tensor an output and use it as the features (needs the model as bytes). */
  exposeTensor?: string;
  /** Whether token 0 is a CLS token; by default inferred from the token count and the patch size. */
  clsToken?: boolean;
  /** Patch size; by default inferred from the token count (square grids). */
  patchSize?: number;
  /** LLaVA `image_aspect_ratio: pad`: pad to square with the mean colour (true) or a colour, before resizing. */
  padToSquare?: boolean | Rgb;
  tiling?: EncoderTiling;
  /** Largest batch per session run (default 8; 1 when the model's batch dim is fixed to 1). */
  maxBatch?: number;
  session?: SessionOptions;
  /** Stable id; default derived from the model bytes (or path), layer and selection. */
  id?: string;
}

/** What the loader found out about the model. */
export interface OnnxEncoderInfo {
  inputName: string;
  /** The output the features come from. */
  outputName: string;
  inputSize: ImageSize;
  patchSize: number;
  clsToken: boolean;
  /** Tokens the model emits per view (CLS included). */
  modelTokens: number;
  hiddenSize: number;
  /** Number of `hidden_states.{i}` outputs (0 when the model has none). */
  hiddenStates: number;
}

/** A VisionEncoder over an ONNX session, with the facts composition and caching need. */
export interface OnnxVisionEncoder extends VisionEncoder {
  readonly info: OnnxEncoderInfo;
  readonly settings: ImageProcessorSettings;
  /** Stable string of the preprocessing (settings, feature selection, tiling), for cache keys. */
  readonly preprocessingKey: string;
  /** The token plan behind tokensPerImage, for planVisualTokens / planBatch. */
  readonly plan: TokenPlan;
  /** Run already-preprocessed pixels [N, 3, H, W] and return the selected features [N, tokens, D]. */
  encodePixels(pixels: Tensor<'float32'>): Promise<Tensor<'float32'>>;
  /** The views an image becomes (one, or the anyres base + tiles), as 8-bit images at the input size. */
  views(image: RawImage): RawImage[];
  release(): Promise<void>;
}

const HIDDEN = /^hidden_states[._](\d+)$/;

/** Load an ONNX image encoder as a VisionEncoder; a probe run on a blank image fixes tokens and width exactly. */
export async function createOnnxVisionEncoder(options: OnnxVisionEncoderOptions): Promise<OnnxVisionEncoder> {
  const { backend } = options;
  const featureSelect = options.featureSelect ?? 'patch';
  if (isProcessorSettings(options.preprocessor) && options.padToSquare !== undefined) {
    throw new InvalidArgumentError('padToSquare applies to a preprocessor config; set settings.padToSquare instead', { details: { field: 'padToSquare' } });
  }
  const settings = isProcessorSettings(options.preprocessor)
    ? { ...options.preprocessor }
    : settingsFromPreprocessorConfig(options.preprocessor, { padToSquare: options.padToSquare });
  const inputSize = fixedInputSize(settings);

  let model: Uint8Array | string = options.model;
  if (options.exposeTensor) {
    if (typeof model === 'string') {
      throw new UnsupportedError('exposeTensor needs the model as bytes (use @vlit/encoders/node to load a path)', { details: { field: 'exposeTensor' } });
    }
    const decoded = decodeModel(model, { file: options.id ?? '<model>' });
    exposeOutput(decoded, options.exposeTensor);
    model = encodeModel(decoded);
  }
  const session = await backend.createSession(model, options.session);
  try {
    const inputName = session.inputNames[0];
    if (session.inputNames.length !== 1) {
      throw new UnsupportedError(`image encoder must have one input, this model has ${session.inputNames.join(', ')}`, { details: { field: 'inputs' } });
    }
    const hiddenNames = session.outputNames.filter((n) => HIDDEN.test(n)).sort((a, b) => Number(HIDDEN.exec(a)![1]) - Number(HIDDEN.exec(b)![1]));
    const featureLayer = options.featureLayer ?? -2;
    const outputName = options.exposeTensor ?? options.outputName ?? pickOutput(session.outputNames, hiddenNames, featureLayer);
    if (!session.outputNames.includes(outputName)) {
      throw new NotFoundError(`model has no output ${outputName}; outputs: ${session.outputNames.join(', ')}`, { details: { field: 'outputName' } });
    }
    // Probe: one blank image gives the exact token count and width, whatever the export declares.
    const probe = await session.run({ [inputName]: createTensor('float32', [1, 3, inputSize.height, inputSize.width]) }, { outputs: [outputName] });
    const dims = probe[outputName].dims;
    if (dims.length !== 3 || dims[0] !== 1) {
      throw new TensorShapeError(`feature output ${outputName} is [${dims.join(', ')}]; expected [batch, tokens, width]`, { details: { field: outputName } });
    }
    const [, modelTokens, hiddenSize] = dims;
    const { patchSize, clsToken } = tokenLayout(inputSize, modelTokens, options);
    const meta = session.inputMetadata.find((m) => m.name === inputName);
    const fixedBatch = meta?.dims?.[0] === 1;
    const maxBatch = fixedBatch ? 1 : Math.max(1, options.maxBatch ?? 8);
    const info: OnnxEncoderInfo = { inputName, outputName, inputSize, patchSize, clsToken, modelTokens, hiddenSize, hiddenStates: hiddenNames.length };
    const plan: TokenPlan = options.tiling
      ? { kind: 'anyres', tileSize: inputSize.width, patchSize, gridPinpoints: options.tiling.gridPinpoints, clsToken, featureSelect }
      : { kind: 'fixed', inputSize, patchSize, clsToken, featureSelect };
    if (options.tiling && inputSize.width !== inputSize.height) {
      throw new InvalidArgumentError('anyres tiling needs a square encoder input', { details: { field: 'tiling' } });
    }
    const drop = clsToken && featureSelect === 'patch' ? 1 : 0;
    const perView = modelTokens - drop;
    const layerTag = options.exposeTensor ? `tensor:${options.exposeTensor}` : options.outputName ? `output:${outputName}` : `layer:${featureLayer}`;
    const modelTag = typeof options.model === 'string' ? `path:${options.model}` : contentHash(options.model);
    const id = options.id ?? `onnx:${modelTag}:${layerTag}:${featureSelect}${options.tiling ? ':anyres' : ''}`;
    const preprocessingKey = canonicalJson({ settings, featureSelect, tiling: options.tiling ?? null });

    const run = {
      session,
      input: inputName,
      output: outputName,
      imageDims: [3, inputSize.height, inputSize.width],
      features: [modelTokens, hiddenSize],
      dropTokens: drop,
      maxBatch,
      what: 'encoder',
    } as const;
    const encodePixels = (pixels: Tensor<'float32'>): Promise<Tensor<'float32'>> => runPixelBatches(pixels, run);

    const views = (image: RawImage): RawImage[] => {
      if (!options.tiling) return [preprocessPixels(image, settings)];
      const rgb = settings.convertRgb ? convertToRgb(image) : image;
      return anyresViews(rgb, { gridPinpoints: options.tiling.gridPinpoints, tileSize: inputSize.width, resample: settings.resample }).map((v) =>
        preprocessPixels(v, { ...settings, padToSquare: null }),
      );
    };

    const encoder: OnnxVisionEncoder = {
      id,
      outputDim: hiddenSize,
      info,
      settings,
      preprocessingKey,
      plan,
      tokensPerImage: (size) => planVisualTokens(size, plan).tokens,
      encodePixels,
      views,
      async encode(images: readonly RawImage[], opts?: EncodeImagesOptions): Promise<Tensor<'float32'>> {
        if (images.length === 0) return createTensor('float32', [0, tokensOf(plan, inputSize), hiddenSize]);
        const all = images.map((im) => views(im));
        const nViews = all[0].length;
        all.forEach((v, i) => {
          if (v.length !== nViews) {
            throw new InvalidArgumentError(
              `image ${i} gives ${v.length} views but image 0 gives ${nViews}; encode images with different anyres grids in separate calls`,
              {
                details: { record: i, field: 'images' },
              },
            );
          }
        });
        const pixels = pixelBatch(all.flat(), settings, [3, inputSize.height, inputSize.width], 'encoder');
        throwIfAborted(opts);
        const feats = await encodePixels(pixels);
        // [N·views, perView, D] is already [N, views·perView, D] in memory.
        return createTensor('float32', [images.length, nViews * perView, hiddenSize], feats.data);
      },
      release: () => session.release(),
    };
    return encoder;
  } catch (err) {
    await session.release();
    throw err;
  }
}

function tokensOf(plan: TokenPlan, size: ImageSize): number {
  return planVisualTokens(size, plan).tokens;
}

function fixedInputSize(settings: ImageProcessorSettings): ImageSize {
  if (settings.centerCrop) return { ...settings.centerCrop };
  if (settings.resize && 'height' in settings.resize) return { width: settings.resize.width, height: settings.resize.height };
  // Padding to square then resizing the shortest edge also fixes the size.
  if (settings.padToSquare && settings.resize) {
    const s = processedSize({ width: 1, height: 1 }, settings);
    return s;
  }
  throw new InvalidArgumentError('the preprocessor does not give a fixed input size (set crop_size, or size {height, width})', {
    details: { field: 'crop_size' },
  });
}

function pickOutput(outputs: readonly string[], hidden: readonly string[], layer: number): string {
  if (hidden.length > 0) {
    const idx = layer < 0 ? hidden.length + layer : layer;
    if (idx < 0 || idx >= hidden.length) {
      throw new InvalidArgumentError(`featureLayer ${layer} is outside the model's ${hidden.length} hidden states`, { details: { field: 'featureLayer' } });
    }
    return hidden[idx];
  }
  if (layer === -1 && outputs.includes('last_hidden_state')) return 'last_hidden_state';
  throw new NotFoundError(
    `model exports no hidden_states.{i} outputs, so featureLayer ${layer} cannot be selected; outputs: ${outputs.join(', ')}. Use featureLayer -1 with last_hidden_state, outputName, or exposeTensor`,
    { details: { field: 'featureLayer' } },
  );
}

function tokenLayout(
  size: ImageSize,
  tokens: number,
  options: Pick<OnnxVisionEncoderOptions, 'clsToken' | 'patchSize'>,
): { patchSize: number; clsToken: boolean } {
  const fits = (p: number, cls: boolean) => size.width % p === 0 && size.height % p === 0 && (size.width / p) * (size.height / p) + (cls ? 1 : 0) === tokens;
  const candidates: { patchSize: number; clsToken: boolean }[] = [];
  const patches = options.patchSize ? [options.patchSize] : Array.from({ length: Math.min(size.width, size.height) }, (_, i) => i + 1);
  const clsOptions = options.clsToken === undefined ? [true, false] : [options.clsToken];
  for (const p of patches) for (const cls of clsOptions) if (fits(p, cls)) candidates.push({ patchSize: p, clsToken: cls });
  if (candidates.length !== 1) {
    throw new TensorShapeError(
      candidates.length === 0
        ? `${tokens} tokens do not fit a ${size.width}x${size.height} input with ${options.patchSize ? `patch ${options.patchSize}` : 'any patch size'}${options.clsToken === undefined ? '' : options.clsToken ? ' plus a CLS token' : ' and no CLS token'}`
        : `${tokens} tokens fit several layouts; pass patchSize and clsToken`,
      { details: { field: 'tokens' } },
    );
  }
  return candidates[0];
}
