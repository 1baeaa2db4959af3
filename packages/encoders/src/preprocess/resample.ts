/**
 * Resampling that reproduces Pillow's `Image.resize` on 8-bit images bit for bit: separable
 * convolution with the filter's support widened by the scale when downsampling (antialiasing),
 * coefficients normalised per output pixel and quantised to 22-bit fixed point, a horizontal pass
 * then a vertical pass, each rounding and clipping to 0..255. Hugging Face image processors resize
 * through Pillow, so matching it is what makes preprocessing agree with theirs.
 */
import { InvalidArgumentError, type RawImage } from '@vlit/core';
import { type FilterTaps, filterTaps, horizontalRgb, pillowFilters } from './filter-taps.js';

/** Resampling filters, named as Pillow names them. */
export type ResampleFilter = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

/** Pillow's integer codes for the filters (`PIL.Image.Resampling`), as `preprocessor_config.json` stores them. */
export const PIL_RESAMPLE_CODES: Readonly<Record<number, ResampleFilter>> = {
  0: 'nearest',
  1: 'lanczos',
  2: 'bilinear',
  3: 'bicubic',
  4: 'box',
  5: 'hamming',
};

const FILTERS = pillowFilters();

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

function clip8(v: number): number {
  // v fits in int32 (Pillow reserves two bits of headroom), so >> is an exact floor division.
  const q = v >> PRECISION_BITS;
  return q < 0 ? 0 : q > 255 ? 255 : q;
}

function horizontal(src: Uint8Array, inW: number, rows: number, ch: number, outW: number, c: FilterTaps): Uint8Array {
  const out = new Uint8Array(outW * rows * ch);
  if (ch === 3) {
    horizontalRgb(src, 0, inW * 3, rows, c, 0, outW, out);
    return out;
  }
  const { ksize, bounds, weights } = c;
  for (let y = 0; y < rows; y++) {
    const rowIn = y * inW * ch;
    const rowOut = y * outW * ch;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2];
      const n = bounds[xx * 2 + 1];
      const kOff = xx * ksize;
      for (let b = 0; b < ch; b++) {
        let s = HALF;
        let p = rowIn + xmin * ch + b;
        for (let x = 0; x < n; x++, p += ch) s += src[p] * weights[kOff + x];
        out[rowOut + xx * ch + b] = clip8(s);
      }
    }
  }
  return out;
}

function vertical(src: Uint8Array, w: number, ch: number, outH: number, c: FilterTaps): Uint8Array {
  const out = new Uint8Array(w * outH * ch);
  const { ksize, bounds, weights } = c;
  const stride = w * ch;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2];
    const n = bounds[yy * 2 + 1];
    const kOff = yy * ksize;
    const base = ymin * stride;
    const o = yy * stride;
    // The taps of one output row span a few source rows (small enough to stay in cache).
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      let p = base + i;
      for (let y = 0; y < n; y++, p += stride) s += src[p] * weights[kOff + y];
      out[o + i] = clip8(s);
    }
  }
  return out;
}

function checkImage(image: RawImage, where: string): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InvalidArgumentError(`${where}: image size ${width}x${height} is not a positive integer size`, { details: { field: 'width/height' } });
  }
  if (data.length !== width * height * channels) {
    throw new InvalidArgumentError(`${where}: data holds ${data.length} bytes but ${width}x${height}x${channels} needs ${width * height * channels}`, {
      details: { field: 'data' },
    });
  }
}

/** Options of resizeImage. */
export interface ResizeOptions {
  width: number;
  height: number;
  /** Default `bicubic`. */
  filter?: ResampleFilter;
}

/** Resize an 8-bit image exactly as Pillow's `Image.resize((width, height), filter)` does. */
export function resizeImage(image: RawImage, options: ResizeOptions): RawImage {
  checkImage(image, 'resizeImage');
  const { width: outW, height: outH } = options;
  const filter = options.filter ?? 'bicubic';
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW <= 0 || outH <= 0) {
    throw new InvalidArgumentError(`resizeImage: target size ${outW}x${outH} is not a positive integer size`, { details: { field: 'width/height' } });
  }
  const { width: inW, height: inH, channels: ch } = image;
  if (outW === inW && outH === inH) return { width: inW, height: inH, channels: ch, data: image.data.slice() };
  if (filter === 'nearest') return nearest(image, outW, outH);
  const f = FILTERS[filter];
  if (!f) throw new InvalidArgumentError(`resizeImage: unknown filter ${String(filter)}`, { details: { field: 'filter' } });
  const vc = filterTaps(inH, outH, f);
  let data = image.data;
  let rows = inH;
  if (outW !== inW) {
    // Like Pillow, only the source rows the vertical pass reads are resampled horizontally.
    const first = vc.bounds[0];
    const last = vc.bounds[outH * 2 - 2] + vc.bounds[outH * 2 - 1];
    rows = last - first;
    for (let i = 0; i < outH; i++) vc.bounds[i * 2] -= first;
    data = horizontal(data.subarray(first * inW * ch, last * inW * ch), inW, rows, ch, outW, filterTaps(inW, outW, f));
    if (outH === inH) return { width: outW, height: outH, channels: ch, data };
  }
  return { width: outW, height: outH, channels: ch, data: vertical(data, outW, ch, outH, vc) };
}

/** Pillow's nearest resize: each output pixel takes the input pixel under its centre. */
function nearest(image: RawImage, outW: number, outH: number): RawImage {
  const { width: inW, height: inH, channels: ch, data } = image;
  const out = new Uint8Array(outW * outH * ch);
  const sx = inW / outW;
  const sy = inH / outH;
  for (let y = 0; y < outH; y++) {
    const iy = Math.min(inH - 1, Math.floor((y + 0.5) * sy));
    for (let x = 0; x < outW; x++) {
      const ix = Math.min(inW - 1, Math.floor((x + 0.5) * sx));
      const s = (iy * inW + ix) * ch;
      const d = (y * outW + x) * ch;
      for (let b = 0; b < ch; b++) out[d + b] = data[s + b];
    }
  }
  return { width: outW, height: outH, channels: ch, data: out };
}
