/**
 * The image processor: settings in, channel-first float32 tensors out, every step a pure function
 * over RawImage. Order as Hugging Face's CLIPImageProcessor: convert to RGB, (LLaVA pad to square),
 * resize, centre crop, rescale, normalise.
 */
import { InvalidArgumentError, createTensor, type RawImage, type Tensor } from '@vlit/core';
import { centerCrop, convertToRgb, padToSquare, writeImageTensor } from './ops.js';
import { resizeImage } from './resample.js';
import type { ImageProcessorSettings, ResizeSpec } from './config.js';

/** Image size. */
export interface ImageSize {
  width: number;
  height: number;
}

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

/** One image through the whole pipeline: a float32 tensor [channels, height, width]. */
export function preprocessImage(image: RawImage, settings: ImageProcessorSettings): Tensor<'float32'> {
  const px = preprocessPixels(image, settings);
  const out = createTensor('float32', [px.channels, px.height, px.width]);
  writeImageTensor(px, settings, out.data, 0);
  return out;
}

/** Several images into one batch tensor [N, channels, height, width]; every processed image must have the same size. */
export function preprocessBatch(images: readonly RawImage[], settings: ImageProcessorSettings): Tensor<'float32'> {
  if (images.length === 0) throw new InvalidArgumentError('preprocessBatch: no images', { details: { field: 'images' } });
  const pixels = images.map((im) => preprocessPixels(im, settings));
  const { width, height, channels } = pixels[0];
  pixels.forEach((p, i) => {
    if (p.width !== width || p.height !== height || p.channels !== channels) {
      throw new InvalidArgumentError(
        `preprocessBatch: image ${i} becomes ${p.channels}x${p.height}x${p.width} but image 0 becomes ${channels}x${height}x${width}; use a fixed size or centre crop to batch`,
        { details: { record: i, field: 'images' } },
      );
    }
  });
  const out = createTensor('float32', [pixels.length, channels, height, width]);
  const per = channels * height * width;
  pixels.forEach((p, i) => writeImageTensor(p, settings, out.data, i * per));
  return out;
}

/** A stable string for settings (keys sorted), for cache keys and encoder ids. */
export function settingsKey(settings: ImageProcessorSettings): string {
  return stableStringify(settings);
}

/** JSON with object keys sorted, so equal values always give equal strings. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}
