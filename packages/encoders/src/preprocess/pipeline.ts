/**
 * The image processor: settings in, channel-first float32 tensors out, every step a pure function
 * over RawImage. Order as Hugging Face's CLIPImageProcessor: convert to RGB, (LLaVA pad to square),
 * resize, centre crop, rescale, normalise.
 */
import { InvalidArgumentError, canonicalJson, createTensor, type ImageCodec, type ImageSize, type RawImage, type Tensor } from '@vlit/core';
import { centerCrop, convertToRgb, normalizeTable, padToSquare, writeImageTensor } from './ops.js';
import { resizeImage } from './resample.js';
import type { ImageProcessorSettings, ResizeSpec } from './config.js';
import { createFusedKernel, FUSED_KERNEL_PARTS, type FusedSpec } from './kernel.js';

/**
 * The size a resize spec gives an image, as Hugging Face's `get_resize_output_image_size`: the
 * short side becomes `shortestEdge` and the long side `int(shortestEdge * long / short)` (truncated).
 */
export function resizeOutputSize(size: ImageSize, spec: ResizeSpec): ImageSize {
  if (!('shortestEdge' in spec)) return { width: spec.width, height: spec.height };
  const { width, height } = size;
  const s = spec.shortestEdge;
  if (width <= height) return { width: s, height: Math.trunc((s * height) / width) };
  return { width: Math.trunc((s * width) / height), height: s };
}

/** The size of the processed image for an input of this size, without touching pixels. */
export function processedSize(size: ImageSize, settings: ImageProcessorSettings): ImageSize {
  let s = size;
  if (settings.padToSquare) s = { width: Math.max(s.width, s.height), height: Math.max(s.width, s.height) };
  if (settings.resize) s = resizeOutputSize(s, settings.resize);
  if (settings.centerCrop) s = { ...settings.centerCrop };
  return s;
}

/** The 8-bit image after the geometric steps (RGB, pad, resize, crop), before it becomes floats. */
export function preprocessPixels(image: RawImage, settings: ImageProcessorSettings): RawImage {
  let img = settings.convertRgb ? convertToRgb(image) : image;
  if (settings.padToSquare) img = padToSquare(img, settings.padToSquare);
  if (settings.resize) {
    const out = resizeOutputSize(img, settings.resize);
    img = resizeImage(img, { ...out, filter: settings.resample });
  }
  if (settings.centerCrop) img = centerCrop(img, settings.centerCrop);
  return img;
}

// The main thread's kernel: its coefficient cache and scratch buffers live as long as the module.
let mainKernel: ReturnType<typeof createFusedKernel> | undefined;
const tableCache = new WeakMap<ImageProcessorSettings, Float32Array>();

/** The three 256-entry normalisation tables of these settings, packed as one array (cached per settings object). */
export function normalizeTables(settings: ImageProcessorSettings): Float32Array {
  let t = tableCache.get(settings);
  if (!t) {
    t = new Float32Array(768);
    normalizeTable(3, settings).forEach((table, c) => t!.set(table, c * 256));
    tableCache.set(settings, t);
  }
  return t;
}

/**
 * The fused kernel's spec for an image of this size, or null where the fused path does not apply
 * (pad to square, nearest resampling, a crop larger than the resized image, a non-RGB result).
 */
export function fusedSpec(size: ImageSize & { channels: number }, settings: ImageProcessorSettings): FusedSpec | null {
  if (settings.padToSquare || settings.resample === 'nearest') return null;
  if (size.channels !== 3 && !(settings.convertRgb && size.channels >= 1 && size.channels <= 4)) return null;
  const resized = settings.resize ? resizeOutputSize(size, settings.resize) : { width: size.width, height: size.height };
  const crop = settings.centerCrop ?? resized;
  const top = Math.floor((resized.height - crop.height) / 2);
  const left = Math.floor((resized.width - crop.width) / 2);
  if (top < 0 || left < 0 || crop.width <= 0 || crop.height <= 0) return null;
  return {
    inW: size.width,
    inH: size.height,
    outW: resized.width,
    outH: resized.height,
    filter: settings.resample,
    left,
    top,
    width: crop.width,
    height: crop.height,
  };
}

/**
 * Which resampling kernel preprocessing runs on this thread: `'wasm-simd'` (WebAssembly SIMD, Node 16.4+
 * and every current browser), or `'js'` where the engine lacks WebAssembly SIMD or a content security
 * policy forbids WebAssembly. Both give the same bits; the SIMD one is about six times faster.
 */
export function preprocessBackend(): 'wasm-simd' | 'js' {
  mainKernel ??= createFusedKernel(FUSED_KERNEL_PARTS);
  return mainKernel.backend;
}

/** Run the fused kernel on this thread for one image into `target` at `offset` (the caller has checked the spec applies). */
export function runFused(image: RawImage, spec: FusedSpec, settings: ImageProcessorSettings, target: Float32Array, offset: number): void {
  const rgb = image.channels === 3 ? image : convertToRgb(image);
  if (rgb.data.length !== rgb.width * rgb.height * 3) {
    throw new InvalidArgumentError(
      `preprocessImage: data holds ${rgb.data.length} bytes but ${rgb.width}x${rgb.height}x3 needs ${rgb.width * rgb.height * 3}`,
      {
        details: { field: 'data' },
      },
    );
  }
  mainKernel ??= createFusedKernel(FUSED_KERNEL_PARTS);
  mainKernel.run(spec, rgb.data, normalizeTables(settings), target, offset);
}

function checkSize(image: RawImage, where: string): void {
  if (!Number.isInteger(image.width) || !Number.isInteger(image.height) || image.width <= 0 || image.height <= 0) {
    throw new InvalidArgumentError(`${where}: image size ${image.width}x${image.height} is not a positive integer size`, {
      details: { field: 'width/height' },
    });
  }
}

/** One image through the whole pipeline: a float32 tensor [channels, height, width]. */
export function preprocessImage(image: RawImage, settings: ImageProcessorSettings): Tensor<'float32'> {
  checkSize(image, 'preprocessImage');
  const spec = fusedSpec(image, settings);
  if (spec) {
    const out = createTensor('float32', [3, spec.height, spec.width]);
    runFused(image, spec, settings, out.data, 0);
    return out;
  }
  const px = preprocessPixels(image, settings);
  const out = createTensor('float32', [px.channels, px.height, px.width]);
  writeImageTensor(px, settings, out.data, 0);
  return out;
}

/** Several images into one batch tensor [N, channels, height, width]; every processed image must have the same size. */
export function preprocessBatch(images: readonly RawImage[], settings: ImageProcessorSettings): Tensor<'float32'> {
  if (images.length === 0) throw new InvalidArgumentError('preprocessBatch: no images', { details: { field: 'images' } });
  images.forEach((im) => checkSize(im, 'preprocessBatch'));
  const specs = images.map((im) => fusedSpec(im, settings));
  if (specs.every((s) => s !== null)) {
    const { width, height } = specs[0]!;
    specs.forEach((s, i) => checkSameSize(i, 3, s!.height, s!.width, 3, height, width));
    const out = createTensor('float32', [images.length, 3, height, width]);
    const per = 3 * height * width;
    images.forEach((im, i) => runFused(im, specs[i]!, settings, out.data, i * per));
    return out;
  }
  const pixels = images.map((im) => preprocessPixels(im, settings));
  const { width, height, channels } = pixels[0];
  pixels.forEach((p, i) => checkSameSize(i, p.channels, p.height, p.width, channels, height, width));
  const out = createTensor('float32', [pixels.length, channels, height, width]);
  const per = channels * height * width;
  pixels.forEach((p, i) => writeImageTensor(p, settings, out.data, i * per));
  return out;
}

function checkSameSize(i: number, c: number, h: number, w: number, c0: number, h0: number, w0: number): void {
  if (c !== c0 || h !== h0 || w !== w0) {
    throw new InvalidArgumentError(
      `preprocessBatch: image ${i} becomes ${c}x${h}x${w} but image 0 becomes ${c0}x${h0}x${w0}; use a fixed size or centre crop to batch`,
      { details: { record: i, field: 'images' } },
    );
  }
}

/** Options of preprocessEncodedBatch. */
export interface EncodedBatchOptions {
  /** Decodes kept in flight ahead of the resampling (the codec decodes off the main thread); default 4. */
  readAhead?: number;
  /**
   * A tensor [N, 3, height, width] to write into and return instead of a new one, e.g. a data loader's
   * batch buffer reused from batch to batch (a fresh batch of 100 CLIP-336 images is 135 MB the
   * operating system must fault in and zero, about a fifth of the batch's CPU time on 2 cores). Its
   * shape is checked before anything is written; after a failed call its contents are unspecified.
   */
  out?: Tensor<'float32'>;
}

/**
 * Decode and preprocess encoded images (JPEG/PNG/WebP bytes) into one batch tensor
 * [N, 3, height, width]. Decoding of the next images overlaps the resampling of the current one,
 * so a codec that decodes on other threads (sharp) keeps a second core busy.
 */
export async function preprocessEncodedBatch(
  codec: ImageCodec,
  sources: readonly Uint8Array[],
  settings: ImageProcessorSettings,
  options: EncodedBatchOptions = {},
): Promise<Tensor<'float32'>> {
  if (sources.length === 0) throw new InvalidArgumentError('preprocessEncodedBatch: no images', { details: { field: 'sources' } });
  // What can be checked before decoding is: a wrong batch size or dtype never touches `out`.
  const early = options.out;
  if (early && (early.dtype !== 'float32' || early.dims.length !== 4 || early.dims[0] !== sources.length)) {
    throw new InvalidArgumentError(
      `preprocessEncodedBatch: out is ${early.dtype} [${early.dims.join(', ')}] but a batch of ${sources.length} images needs float32 [${sources.length}, channels, height, width]`,
      { details: { field: 'out' } },
    );
  }
  const ahead = Math.max(1, options.readAhead ?? 4);
  const pending: Promise<RawImage>[] = [];
  const start = (i: number) => {
    const p = codec.decode(sources[i], { source: `image ${i}` });
    // A rejection is awaited in order below; this only keeps it from counting as unhandled meanwhile.
    p.catch(() => undefined);
    pending[i] = p;
  };
  for (let i = 0; i < Math.min(ahead, sources.length); i++) start(i);
  let out: Tensor<'float32'> | undefined;
  let per = 0;
  let c0 = 0;
  let h0 = 0;
  let w0 = 0;
  for (let i = 0; i < sources.length; i++) {
    const image = await pending[i];
    delete pending[i];
    if (i + ahead < sources.length) start(i + ahead);
    checkSize(image, 'preprocessEncodedBatch');
    const spec = fusedSpec(image, settings);
    const x = spec ? null : preprocessImage(image, settings);
    const [c, h, w] = spec ? [3, spec.height, spec.width] : x!.dims;
    if (!out) {
      [c0, h0, w0] = [c, h, w];
      out = options.out ? checkOut(options.out, [sources.length, c, h, w]) : createTensor('float32', [sources.length, c, h, w]);
      per = c * h * w;
    }
    checkSameSize(i, c, h, w, c0, h0, w0);
    if (spec) runFused(image, spec, settings, out.data, i * per);
    else out.data.set(x!.data, i * per);
  }
  return out!;
}

function checkOut(out: Tensor<'float32'>, dims: number[]): Tensor<'float32'> {
  if (out.dtype !== 'float32' || out.dims.length !== dims.length || out.dims.some((d, i) => d !== dims[i])) {
    throw new InvalidArgumentError(`preprocessEncodedBatch: out is ${out.dtype} [${out.dims.join(', ')}] but this batch needs float32 [${dims.join(', ')}]`, {
      details: { field: 'out' },
    });
  }
  return out;
}

/** A stable string for settings (keys sorted), for cache keys and encoder ids. */
export function settingsKey(settings: ImageProcessorSettings): string {
  return canonicalJson(settings);
}
