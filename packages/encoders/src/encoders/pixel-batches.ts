/**
 * What every ONNX image encoder does around its model: preprocessed images into one [N, C, H, W]
 * batch, the caller's abort signal checked before the session runs, and the session run a few images
 * at a time (its memory grows with the batch) into per-image features [N, tokens, width].
 */
import {
  InvalidArgumentError,
  TensorShapeError,
  createTensor,
  toFloat32,
  type EncodeImagesOptions,
  type InferenceSession,
  type RawImage,
  type Tensor,
} from '@vlit/core';
import type { ImageProcessorSettings } from '../preprocess/config.js';
import { type NormalizeOptions, writeImageTensor } from '../preprocess/ops.js';
import { preprocessPixels } from '../preprocess/pipeline.js';

/**
 * Images as one [N, C, H, W] batch, each through `prepare` (the geometric preprocessing, one image at
 * a time so only one 8-bit copy is alive) then normalised; an image that comes out another shape is
 * a TensorShapeError whose message names `what` (`tower`, `encoder`).
 */
export function pixelBatch(
  images: readonly RawImage[],
  settings: NormalizeOptions,
  imageDims: readonly [number, number, number],
  what: string,
  prepare: (image: RawImage) => RawImage = (image) => image,
): Tensor<'float32'> {
  const [C, H, W] = imageDims;
  const out = createTensor('float32', [images.length, C, H, W]);
  images.forEach((image, i) => {
    const im = prepare(image);
    if (im.channels !== C || im.height !== H || im.width !== W) {
      throw new TensorShapeError(`image ${i} is ${im.channels}x${im.height}x${im.width} after preprocessing; the ${what} takes ${C}x${H}x${W}`, {
        details: { record: i, field: 'images', expected: [C, H, W], actual: [im.channels, im.height, im.width] },
      });
    }
    writeImageTensor(im, settings, out.data, i * C * H * W);
  });
  return out;
}

/** Stop an `encode` whose caller has aborted (checked after the preprocessing, before the session runs). */
export function throwIfAborted(opts?: EncodeImagesOptions): void {
  if (opts?.signal?.aborted) throw new InvalidArgumentError('encode aborted', { cause: opts.signal.reason, details: { field: 'signal' } });
}

/** How one encoder runs pixels through its session. */
export interface PixelBatchRun {
  session: Pick<InferenceSession, 'run'>;
  /** The session's pixel input and the output the features come from. */
  input: string;
  output: string;
  /** [channels, height, width] of one image. */
  imageDims: readonly [number, number, number];
  /** [tokens, width] of one image's features in the session's output. */
  features: readonly [number, number];
  /** Leading tokens of each image's features to leave out (a CLS token the selection drops); default 0. */
  dropTokens?: number;
  /** Largest number of images per session run. */
  maxBatch: number;
  /** What takes the pixels, for the error message (`tower`, `encoder`). */
  what: string;
}

/** Run pixels [N, C, H, W] through the session `maxBatch` images at a time; features [N, tokens - dropTokens, width]. */
export async function runPixelBatches(pixels: Tensor<'float32'>, run: PixelBatchRun): Promise<Tensor<'float32'>> {
  const [C, H, W] = run.imageDims;
  const [n, c, h, w] = pixels.dims;
  if (pixels.dims.length !== 4 || c !== C || h !== H || w !== W) {
    throw new TensorShapeError(`pixels are [${pixels.dims.join(', ')}]; this ${run.what} takes [N, ${C}, ${H}, ${W}]`, {
      details: { field: 'pixels', expected: [null, C, H, W], actual: [...pixels.dims] },
    });
  }
  const [tokens, width] = run.features;
  const drop = run.dropTokens ?? 0;
  const kept = (tokens - drop) * width;
  const out = createTensor('float32', [n, tokens - drop, width]);
  const per = C * H * W;
  for (let start = 0; start < n; start += run.maxBatch) {
    const m = Math.min(run.maxBatch, n - start);
    const chunk = createTensor('float32', [m, C, H, W], pixels.data.subarray(start * per, (start + m) * per));
    const res = await run.session.run({ [run.input]: chunk }, { outputs: [run.output] });
    const f = toFloat32(res[run.output]);
    if (f.length !== m * tokens * width) {
      throw new TensorShapeError(`${run.output} holds ${f.length} values for ${m} images; expected ${m} x ${tokens} x ${width}`, {
        details: { field: run.output, expected: [m, tokens, width], actual: [...res[run.output].dims] },
      });
    }
    for (let i = 0; i < m; i++) out.data.set(f.subarray((i * tokens + drop) * width, (i + 1) * tokens * width), (start + i) * kept);
  }
  return out;
}

/** The `encode` of an encoder whose `settings` bring every image to one [C, H, W] input: preprocess, batch, check the signal, run. */
export function encodeFixedSize(
  settings: ImageProcessorSettings,
  imageDims: readonly [number, number, number],
  what: string,
  encodePixels: (pixels: Tensor<'float32'>) => Promise<Tensor<'float32'>>,
): (images: readonly RawImage[], opts?: EncodeImagesOptions) => Promise<Tensor<'float32'>> {
  return async (images, opts) => {
    const pixels = pixelBatch(images, settings, imageDims, what, (im) => preprocessPixels(im, settings));
    throwIfAborted(opts);
    return encodePixels(pixels);
  };
}
