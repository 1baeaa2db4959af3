/**
 * Pillow's convolution filters, their fixed-point taps and the RGB horizontal pass, written once for
 * resizeImage and the fused kernel. Every function here must stay self-contained (no outer names at run
 * time, not even constants; type imports are erased): the worker pool ships their source text to worker
 * threads next to the kernel's (see `fusedKernelSource` in kernel.ts), so the same code runs on every thread.
 */
import type { ResampleFilter } from './resample.js';

/** The resampling filters that convolve (all of Pillow's but nearest). */
export type ConvolutionFilter = Exclude<ResampleFilter, 'nearest'>;

/** A filter's weight function and its half-width in source pixels at scale 1. */
export interface FilterShape {
  fn: (x: number) => number;
  support: number;
}

/** Per-output filter taps in Pillow's 22-bit fixed point. */
export interface FilterTaps {
  ksize: number;
  /** Per output index: first input index and number of taps. */
  bounds: Int32Array;
  /** Fixed-point weights, ksize per output index. */
  weights: Int32Array;
}

/** Pillow's convolution filters by name (a fresh table per call, since the function may hold no outer names). */
export function pillowFilters(): Record<ConvolutionFilter, FilterShape> {
  const sinc = (x: number): number => {
    if (x === 0) return 1;
    const px = x * Math.PI;
    return Math.sin(px) / px;
  };
  // Pillow's hamming window multiplies by float constants (0.54f, 0.46f); Math.fround keeps that.
  const H054 = Math.fround(0.54);
  const H046 = Math.fround(0.46);
  return {
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
}

/** Per-output filter taps, as Pillow's precompute_coeffs + normalize_coeffs_8bpc. */
export function filterTaps(inSize: number, outSize: number, filter: FilterShape): FilterTaps {
  const PRECISION_BITS = 22;
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

/**
 * Pillow's horizontal pass over interleaved RGB rows, for the output columns `first .. first + count`:
 * `rows` rows of `src` from `srcOffset` (each `inStride` bytes) into `out` (each `count * 3` bytes).
 */
export function horizontalRgb(
  src: Uint8Array,
  srcOffset: number,
  inStride: number,
  rows: number,
  taps: FilterTaps,
  first: number,
  count: number,
  out: Uint8Array,
): void {
  const PRECISION_BITS = 22;
  const HALF = 1 << (PRECISION_BITS - 1);
  const { ksize, bounds, weights } = taps;
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const rowIn = srcOffset + y * inStride;
    // The three channel sums accumulate in one pass over the taps.
    for (let xx = first; xx < first + count; xx++) {
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
      // The sums fit in int32 (Pillow keeps two bits of headroom), so >> is an exact floor.
      s0 >>= PRECISION_BITS;
      s1 >>= PRECISION_BITS;
      s2 >>= PRECISION_BITS;
      out[o++] = s0 < 0 ? 0 : s0 > 255 ? 255 : s0;
      out[o++] = s1 < 0 ? 0 : s1 > 255 ? 255 : s1;
      out[o++] = s2 < 0 ? 0 : s2 > 255 ? 255 : s2;
    }
  }
}
