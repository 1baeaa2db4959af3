/**
 * High-resolution strategies: LLaVA-NeXT "anyres" (choose a grid canvas, resize + pad into it, cut
 * it into tiles, plus a base view of the whole image) and Qwen2-VL's pixel-budget "smart resize"
 * (both sides rounded to multiples of patch × merge, total pixels kept within [min, max]).
 */
import { InvalidArgumentError, type RawImage } from '@vlit/core';
import { cropImage, padImage, type Rgb } from './ops.js';
import { resizeImage, type ResampleFilter } from './resample.js';
import type { ImageSize } from '@vlit/core';

/** A [height, width] pair, the order Hugging Face's `image_grid_pinpoints` use. */
export type HeightWidth = readonly [number, number];

/**
 * LLaVA-NeXT's `select_best_resolution`: the canvas that keeps the most of the image's pixels
 * after an aspect-preserving downscale into it, ties broken by the least wasted canvas area.
 */
export function selectBestResolution(size: ImageSize, pinpoints: readonly HeightWidth[]): HeightWidth {
  if (pinpoints.length === 0) throw new InvalidArgumentError('selectBestResolution: no grid pinpoints', { details: { field: 'image_grid_pinpoints' } });
  const { width: ow, height: oh } = size;
  let best: HeightWidth = pinpoints[0];
  let maxEffective = 0;
  let minWasted = Infinity;
  for (const [h, w] of pinpoints) {
    const scale = Math.min(w / ow, h / oh);
    const dw = Math.trunc(ow * scale);
    const dh = Math.trunc(oh * scale);
    const effective = Math.min(dw * dh, ow * oh);
    const wasted = w * h - effective;
    if (effective > maxEffective || (effective === maxEffective && wasted < minWasted)) {
      maxEffective = effective;
      minWasted = wasted;
      best = [h, w];
    }
  }
  return best;
}

/** The size an image is resized to inside an anyres canvas (Hugging Face `_get_patch_output_size`). */
export function anyresResizedSize(size: ImageSize, canvas: HeightWidth): ImageSize {
  const [th, tw] = canvas;
  const sw = tw / size.width;
  const sh = th / size.height;
  if (sw < sh) return { width: tw, height: Math.min(Math.ceil(size.height * sw), th) };
  return { width: Math.min(Math.ceil(size.width * sh), tw), height: th };
}

/** The layout anyres gives an image: the canvas, the grid of tiles, and the resized image inside. */
export interface AnyresLayout {
  canvas: HeightWidth;
  rows: number;
  cols: number;
  resized: ImageSize;
  /** Views encoded per image: the base view plus rows × cols tiles. */
  views: number;
}

/** Plan anyres for an image size without touching pixels. */
export function anyresLayout(size: ImageSize, options: { gridPinpoints: readonly HeightWidth[]; tileSize: number }): AnyresLayout {
  const canvas = selectBestResolution(size, options.gridPinpoints);
  const [h, w] = canvas;
  if (h % options.tileSize !== 0 || w % options.tileSize !== 0) {
    throw new InvalidArgumentError(`anyres: canvas ${h}x${w} is not a multiple of the tile size ${options.tileSize}`, {
      details: { field: 'image_grid_pinpoints' },
    });
  }
  const rows = h / options.tileSize;
  const cols = w / options.tileSize;
  return { canvas, rows, cols, resized: anyresResizedSize(size, canvas), views: 1 + rows * cols };
}

/** Options of anyresViews. */
export interface AnyresOptions {
  gridPinpoints: readonly HeightWidth[];
  /** Side of each square tile (the encoder's input size, e.g. 336). */
  tileSize: number;
  resample?: ResampleFilter;
  /** Canvas fill around the resized image; Hugging Face pads with zeros. */
  fill?: Rgb;
}

/**
 * The views LLaVA-NeXT encodes for one image: first the whole image resized to tileSize², then the
 * tiles of the canvas, row by row. Expects an RGB image.
 */
export function anyresViews(image: RawImage, options: AnyresOptions): RawImage[] {
  const resample = options.resample ?? 'bicubic';
  const layout = anyresLayout(image, options);
  const resized = resizeImage(image, { ...layout.resized, filter: resample });
  const [ch, cw] = layout.canvas;
  const canvas = padImage(resized, {
    width: cw,
    height: ch,
    left: Math.floor((cw - resized.width) / 2),
    top: Math.floor((ch - resized.height) / 2),
    fill: options.fill ?? [0, 0, 0],
  });
  const t = options.tileSize;
  const views = [resizeImage(image, { width: t, height: t, filter: resample })];
  for (let r = 0; r < layout.rows; r++) for (let c = 0; c < layout.cols; c++) views.push(cropImage(canvas, { left: c * t, top: r * t, width: t, height: t }));
  return views;
}

/** Python's `round`: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Options of smartResize (Qwen2-VL defaults: factor 28, min 56·56, max 28·28·1280). */
export interface SmartResizeOptions {
  /** patch size × merge size. */
  factor?: number;
  minPixels?: number;
  maxPixels?: number;
}

/**
 * Qwen2-VL's `smart_resize`: both sides become multiples of `factor`, as close to the original
 * aspect as possible, with height × width in [minPixels, maxPixels].
 */
export function smartResize(size: ImageSize, options: SmartResizeOptions = {}): ImageSize {
  const { factor = 28, minPixels = 56 * 56, maxPixels = 28 * 28 * 1280 } = options;
  const { width, height } = size;
  if (Math.max(width, height) / Math.min(width, height) > 200) {
    throw new InvalidArgumentError(`smartResize: aspect ratio of ${width}x${height} exceeds 200`, { details: { field: 'size' } });
  }
  let hBar = Math.max(factor, roundHalfEven(height / factor) * factor);
  let wBar = Math.max(factor, roundHalfEven(width / factor) * factor);
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return { width: wBar, height: hBar };
}
