/**
 * Resampling that reproduces Pillow's `Image.resize` on 8-bit images bit for bit: separable
 * convolution with the filter's support widened by the scale when downsampling (antialiasing),
 * coefficients normalised per output pixel and quantised to 22-bit fixed point, a horizontal pass
 * then a vertical pass, each rounding and clipping to 0..255. Hugging Face image processors resize
 * through Pillow, so matching it is what makes preprocessing agree with theirs.
 */
import { InvalidArgumentError, type RawImage } from '@vlit/core';

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

interface Filter {
  fn: (x: number) => number;
  support: number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

// Pillow's hamming window multiplies by float constants (0.54f, 0.46f); Math.fround keeps that.
const H054 = Math.fround(0.54);
const H046 = Math.fround(0.46);

const FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, Filter> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      return (Math.sin(px) / px) * (H054 + H046 * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    // Keys' cubic convolution with a = -0.5, as Pillow (and not the a = -0.75 of OpenCV).
    fn: (x) => {
      const a = Math.abs(x);
      if (a < 1) return (1.5 * a - 2.5) * a * a + 1;
      if (a < 2) return (((a - 5) * a + 8) * a - 4) * -0.5;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

interface Coefficients {
  ksize: number;
  /** Per output index: first input index and number of taps. */
  bounds: Int32Array;
  /** Fixed-point weights, ksize per output index. */
  weights: Int32Array;
}

/** Per-output filter taps, as Pillow's precompute_coeffs + normalize_coeffs_8bpc. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

function clip8(v: number): number {
  // v fits in int32 (Pillow reserves two bits of headroom), so >> is an exact floor division.
  const q = v >> PRECISION_BITS;
  return q < 0 ? 0 : q > 255 ? 255 : q;
}

function horizontal(src: Uint8Array, inW: number, rows: number, ch: number, outW: number, c: Coefficients): Uint8Array {
  const out = new Uint8Array(outW * rows * ch);
  const { ksize, bounds, weights } = c;
  if (ch === 3) {
    // The common case, with the three channel sums in one pass over the taps.
    for (let y = 0; y < rows; y++) {
      const rowIn = y * inW * 3;
      let o = y * outW * 3;
      for (let xx = 0; xx < outW; xx++) {
        const n = bounds[xx * 2 + 1];
        const kOff = xx * ksize;
        let p = rowIn + bounds[xx * 2] * 3;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0; x < n; x++, p += 3) {
          const wgt = weights[kOff + x];
          s0 += src[p] * wgt;
          s1 += src[p + 1] * wgt;
          s2 += src[p + 2] * wgt;
        }
        out[o++] = clip8(s0);
        out[o++] = clip8(s1);
        out[o++] = clip8(s2);
      }
    }
    return out;
  }
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

function vertical(src: Uint8Array, w: number, ch: number, outH: number, c: Coefficients): Uint8Array {
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
  const vc = coefficients(inH, outH, f);
  let data = image.data;
  let rows = inH;
  if (outW !== inW) {
    // Like Pillow, only the source rows the vertical pass reads are resampled horizontally.
    const first = vc.bounds[0];
    const last = vc.bounds[outH * 2 - 2] + vc.bounds[outH * 2 - 1];
    rows = last - first;
    for (let i = 0; i < outH; i++) vc.bounds[i * 2] -= first;
    data = horizontal(data.subarray(first * inW * ch, last * inW * ch), inW, rows, ch, outW, coefficients(inW, outW, f));
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
