/**
 * Pure image operations over core's RawImage (8-bit, interleaved), with Hugging Face's semantics
 * where they have one: centre crop with floor division and zero padding, LLaVA's pad-to-square,
 * rescale + normalise in float32 into a channel-first tensor.
 */
import { InvalidArgumentError, createTensor, type RawImage, type Tensor } from '@vlit/core';

/** An RGB colour, 0..255 per channel. */
export type Rgb = readonly [number, number, number];

function checkImage(image: RawImage, where: string): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InvalidArgumentError(`${where}: image size ${width}x${height} is not a positive integer size`, { details: { field: 'width/height' } });
  }
  if (![1, 2, 3, 4].includes(channels) || data.length !== width * height * channels) {
    throw new InvalidArgumentError(`${where}: ${channels} channels and ${data.length} bytes do not make a ${width}x${height} image`, {
      details: { field: 'data' },
    });
  }
}

/** Three-channel RGB, as Pillow's `convert('RGB')`: grey is replicated, alpha is dropped (not composited). */
export function convertToRgb(image: RawImage): RawImage {
  checkImage(image, 'convertToRgb');
  const { width, height, channels, data } = image;
  if (channels === 3) return image;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    if (channels === 1 || channels === 2) {
      const v = data[p * channels];
      out[p * 3] = v;
      out[p * 3 + 1] = v;
      out[p * 3 + 2] = v;
    } else {
      out[p * 3] = data[p * 4];
      out[p * 3 + 1] = data[p * 4 + 1];
      out[p * 3 + 2] = data[p * 4 + 2];
    }
  }
  return { width, height, channels: 3, data: out };
}

/** A blank image of one colour. */
function filled(width: number, height: number, channels: RawImage['channels'], fill: readonly number[]): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  if (fill.every((v) => v === 0)) return out;
  for (let p = 0; p < width * height; p++) for (let c = 0; c < channels; c++) out[p * channels + c] = fill[Math.min(c, fill.length - 1)];
  return out;
}

/** Copy `src` into `dst` at (left, top), clipping whatever falls outside. */
function paste(dst: RawImage, src: RawImage, left: number, top: number): void {
  const ch = dst.channels;
  const x0 = Math.max(0, left);
  const x1 = Math.min(dst.width, left + src.width);
  const y0 = Math.max(0, top);
  const y1 = Math.min(dst.height, top + src.height);
  if (x1 <= x0) return;
  for (let y = y0; y < y1; y++) {
    const s = ((y - top) * src.width + (x0 - left)) * ch;
    dst.data.set(src.data.subarray(s, s + (x1 - x0) * ch), (y * dst.width + x0) * ch);
  }
}

/** Options of cropImage. */
export interface CropOptions {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Cut a rectangle out of an image; the rectangle must lie inside it. */
export function cropImage(image: RawImage, box: CropOptions): RawImage {
  checkImage(image, 'cropImage');
  const { left, top, width, height } = box;
  if (
    ![left, top, width, height].every(Number.isInteger) ||
    width <= 0 ||
    height <= 0 ||
    left < 0 ||
    top < 0 ||
    left + width > image.width ||
    top + height > image.height
  ) {
    throw new InvalidArgumentError(`cropImage: box ${width}x${height}+${left}+${top} does not lie inside a ${image.width}x${image.height} image`, {
      details: { field: 'box' },
    });
  }
  const out: RawImage = { width, height, channels: image.channels, data: new Uint8Array(width * height * image.channels) };
  paste(out, image, -left, -top);
  return out;
}

/**
 * Centre crop as Hugging Face's `center_crop`: offsets are `(size - crop) // 2` (floor division,
 * so an odd excess leaves the extra pixel on the right/bottom), and an image smaller than the crop
 * is first padded with zeros, centred with the extra pixel on the left/top.
 */
export function centerCrop(image: RawImage, size: { width: number; height: number }): RawImage {
  checkImage(image, 'centerCrop');
  const { width: cw, height: ch } = size;
  if (!Number.isInteger(cw) || !Number.isInteger(ch) || cw <= 0 || ch <= 0) {
    throw new InvalidArgumentError(`centerCrop: crop size ${cw}x${ch} is not a positive integer size`, { details: { field: 'size' } });
  }
  const { width: w, height: h } = image;
  const top = Math.floor((h - ch) / 2);
  const left = Math.floor((w - cw) / 2);
  if (top >= 0 && left >= 0) return cropImage(image, { left, top, width: cw, height: ch });
  // Too small on some side: pad to max(crop, image) with zeros, then crop, as the reference does.
  const nh = Math.max(ch, h);
  const nw = Math.max(cw, w);
  const padTop = Math.ceil((nh - h) / 2);
  const padLeft = Math.ceil((nw - w) / 2);
  const canvas: RawImage = { width: nw, height: nh, channels: image.channels, data: new Uint8Array(nw * nh * image.channels) };
  paste(canvas, image, padLeft, padTop);
  const t = Math.max(0, top + padTop);
  const l = Math.max(0, left + padLeft);
  const b = Math.min(nh, top + padTop + ch);
  const r = Math.min(nw, left + padLeft + cw);
  return cropImage(canvas, { left: l, top: t, width: r - l, height: b - t });
}

/** Place an image on a canvas of the given size filled with `fill`, at (left, top). */
export function padImage(image: RawImage, options: { width: number; height: number; left: number; top: number; fill?: Rgb | readonly number[] }): RawImage {
  checkImage(image, 'padImage');
  const { width, height, left, top } = options;
  if (left < 0 || top < 0 || left + image.width > width || top + image.height > height) {
    throw new InvalidArgumentError(`padImage: a ${image.width}x${image.height} image at +${left}+${top} does not fit a ${width}x${height} canvas`, {
      details: { field: 'size' },
    });
  }
  const out: RawImage = { width, height, channels: image.channels, data: filled(width, height, image.channels, options.fill ?? [0, 0, 0]) };
  paste(out, image, left, top);
  return out;
}

/** LLaVA's `expand2square`: pad the short side to a square with `fill`, the image centred with floor division. */
export function padToSquare(image: RawImage, fill: Rgb | readonly number[]): RawImage {
  const { width: w, height: h } = image;
  if (w === h) return image;
  const s = Math.max(w, h);
  return padImage(image, { width: s, height: s, left: Math.floor((s - w) / 2), top: Math.floor((s - h) / 2), fill });
}

/** LLaVA's pad colour: the processor's mean scaled to 0..255 and truncated (`int(x * 255)`). */
export function meanFillColor(mean: readonly number[]): Rgb {
  const m = mean.length === 1 ? [mean[0], mean[0], mean[0]] : mean;
  return [Math.trunc(m[0] * 255), Math.trunc(m[1] * 255), Math.trunc(m[2] * 255)];
}

/** How pixel values become tensor values. */
export interface NormalizeOptions {
  /** Multiply by this first (Hugging Face `rescale_factor`, usually 1/255); null skips it. */
  rescaleFactor?: number | null;
  /** Per-channel mean and std subtracted and divided after rescaling; null skips normalisation. */
  mean?: readonly number[] | null;
  std?: readonly number[] | null;
}

/**
 * A channel-first float32 tensor [C, H, W] of an image, computed as Hugging Face does: rescale in
 * float64 and store as float32, then `(x - mean) / std` in float32.
 */
export function imageToTensor(image: RawImage, options: NormalizeOptions = {}): Tensor<'float32'> {
  const out = createTensor('float32', [image.channels, image.height, image.width]);
  writeImageTensor(image, options, out.data, 0);
  return out;
}

/** The per-channel value of every 8-bit sample: the whole normalisation is a 256-entry table per channel. */
export function normalizeTable(channels: number, options: NormalizeOptions): Float32Array[] {
  const { rescaleFactor = 1 / 255, mean = null, std = null } = options;
  if (mean && std && (mean.length !== std.length || (mean.length !== 1 && mean.length !== channels))) {
    throw new InvalidArgumentError(`imageToTensor: mean has ${mean.length} values and std ${std.length}; the image has ${channels} channels`, {
      details: { field: 'mean/std' },
    });
  }
  const tables: Float32Array[] = [];
  for (let c = 0; c < channels; c++) {
    const t = new Float32Array(256);
    const m = mean ? Math.fround(mean[mean.length === 1 ? 0 : c]) : 0;
    const s = std ? Math.fround(std[std.length === 1 ? 0 : c]) : 1;
    for (let v = 0; v < 256; v++) {
      const x = rescaleFactor == null ? v : Math.fround(v * rescaleFactor);
      t[v] = mean && std ? Math.fround(Math.fround(x - m) / s) : x;
    }
    tables.push(t);
  }
  return tables;
}

/** Write an image as channel-first floats into `target` at `offset` (for batched tensors). */
export function writeImageTensor(image: RawImage, options: NormalizeOptions, target: Float32Array, offset: number): void {
  checkImage(image, 'imageToTensor');
  const { width, height, channels, data } = image;
  const tables = normalizeTable(channels, options);
  const plane = width * height;
  if (offset + plane * channels > target.length) {
    throw new InvalidArgumentError(`imageToTensor: target holds ${target.length} values, too few for ${channels}x${height}x${width} at ${offset}`, {
      details: { field: 'target' },
    });
  }
  for (let c = 0; c < channels; c++) {
    const t = tables[c];
    const base = offset + c * plane;
    for (let p = 0; p < plane; p++) target[base + p] = t[data[p * channels + c]];
  }
}
