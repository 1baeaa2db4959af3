/**
 * The fused resize + centre-crop + normalise + channel-first kernel behind preprocessImage,
 * preprocessBatch and the worker pool. It computes exactly what resizeImage → centerCrop →
 * writeImageTensor compute (Pillow's fixed-point separable resampling), but only for the rows and
 * columns the crop keeps, with filter coefficients cached per (filter, source size, target size),
 * scratch buffers reused between images, and each 8-bit result turned into its float32 value by a
 * 256-entry table as it is written into the [C, H, W] target.
 *
 * The body of `createFusedKernel` must stay self-contained (it names nothing imported or outer), and
 * so must the filter-taps.ts functions it is handed: the worker pool ships their source text to worker threads
 * (`fusedKernelSource`), so the same code runs on every thread. The shared functions come in as an
 * argument rather than by import because an imported name's text differs between bundles and test
 * transforms, while a parameter's does not.
 */
import { type ConvolutionFilter, type FilterTaps, filterTaps, horizontalRgb, pillowFilters } from './filter-taps.js';
import type { ResampleFilter } from './resample.js';

/** Everything the kernel needs for one RGB image; plain data so it can cross a worker boundary. */
export interface FusedSpec {
  /** Source size (RGB, interleaved). */
  inW: number;
  inH: number;
  /** Resized size (equal to the source size when there is no resize). */
  outW: number;
  outH: number;
  /** A Pillow filter other than nearest. */
  filter: Exclude<ResampleFilter, 'nearest'>;
  /** Crop box inside the resized image. */
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A kernel instance: coefficient cache and scratch buffers owned by one thread. */
export interface FusedKernel {
  /** Write the processed image as float32 [3, height, width] into `target` at `offset`; `tables` is 3 × 256 values. */
  run(spec: FusedSpec, src: Uint8Array, tables: Float32Array, target: Float32Array, offset: number): void;
}

/** The self-contained resampling functions a kernel is built from (see the file comment). */
export interface FusedKernelParts {
  pillowFilters: typeof pillowFilters;
  filterTaps: typeof filterTaps;
  horizontalRgb: typeof horizontalRgb;
}

/** The parts from filter-taps.ts, as every kernel uses them. */
export const FUSED_KERNEL_PARTS: FusedKernelParts = { pillowFilters, filterTaps, horizontalRgb };

/** A fresh kernel built from `parts` (see the file comment for why it takes no outer names). */
export function createFusedKernel(parts: FusedKernelParts): FusedKernel {
  const PRECISION_BITS = 22;
  const HALF = 1 << (PRECISION_BITS - 1);
  const filters = parts.pillowFilters();
  // Real batches repeat a handful of source sizes, so the coefficients are worth keeping.
  const cache = new Map<string, FilterTaps>();
  const coefficients = (filterName: ConvolutionFilter, inSize: number, outSize: number): FilterTaps => {
    const key = `${filterName}|${inSize}|${outSize}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const c = parts.filterTaps(inSize, outSize, filters[filterName]);
    if (cache.size >= 256) cache.clear();
    cache.set(key, c);
    return c;
  };

  let tmp = new Uint8Array(0);

  const run = (spec: FusedSpec, src: Uint8Array, tables: Float32Array, target: Float32Array, offset: number): void => {
    const { inW, inH, outW, outH, left, top, width: cw, height: chh } = spec;
    const needH = outW !== inW;
    const needV = outH !== inH;
    const vc = needV ? coefficients(spec.filter, inH, outH) : null;
    // Source rows the kept output rows read (Pillow also limits the horizontal pass to these).
    const rowFirst = vc ? vc.bounds[top * 2] : top;
    const rowLast = vc ? vc.bounds[(top + chh - 1) * 2] + vc.bounds[(top + chh - 1) * 2 + 1] : top + chh;
    let rows: Uint8Array;
    let rowStride: number;
    let colOff: number;
    let rowBase: number;
    if (needH) {
      const hc = coefficients(spec.filter, inW, outW);
      const nRows = rowLast - rowFirst;
      rowStride = cw * 3;
      if (tmp.length < nRows * rowStride) tmp = new Uint8Array(nRows * rowStride);
      parts.horizontalRgb(src, rowFirst * inW * 3, inW * 3, nRows, hc, left, cw, tmp);
      rows = tmp;
      colOff = 0;
      rowBase = rowFirst;
    } else {
      rows = src;
      rowStride = inW * 3;
      colOff = left * 3;
      rowBase = 0;
    }
    const plane = cw * chh;
    const t0 = 0;
    const t1 = 256;
    const t2 = 512;
    const S = cw * 3;
    if (vc) {
      const { ksize, bounds, weights } = vc;
      for (let yy = top; yy < top + chh; yy++) {
        const ymin = bounds[yy * 2];
        const n = bounds[yy * 2 + 1];
        const kOff = yy * ksize;
        // Per pixel, the three channel sums stay in registers; the n source rows are a few KB, so
        // the strided reads hit the cache.
        const p0 = (ymin - rowBase) * rowStride + colOff;
        let o = offset + (yy - top) * cw;
        for (let i = 0; i < S; i += 3, o++) {
          let s0 = HALF;
          let s1 = HALF;
          let s2 = HALF;
          let p = p0 + i;
          for (let t = 0; t < n; t++, p += rowStride) {
            const w = weights[kOff + t];
            s0 += rows[p] * w;
            s1 += rows[p + 1] * w;
            s2 += rows[p + 2] * w;
          }
          let a = s0 >> PRECISION_BITS;
          let b = s1 >> PRECISION_BITS;
          let c = s2 >> PRECISION_BITS;
          a = a < 0 ? 0 : a > 255 ? 255 : a;
          b = b < 0 ? 0 : b > 255 ? 255 : b;
          c = c < 0 ? 0 : c > 255 ? 255 : c;
          target[o] = tables[t0 + a];
          target[o + plane] = tables[t1 + b];
          target[o + 2 * plane] = tables[t2 + c];
        }
      }
    } else {
      for (let yy = top; yy < top + chh; yy++) {
        let p = (yy - rowBase) * rowStride + colOff;
        let o = offset + (yy - top) * cw;
        for (let x = 0; x < cw; x++, o++, p += 3) {
          target[o] = tables[t0 + rows[p]];
          target[o + plane] = tables[t1 + rows[p + 1]];
          target[o + 2 * plane] = tables[t2 + rows[p + 2]];
        }
      }
    }
  };
  return { run };
}

/** JavaScript expression text that evaluates to a fresh kernel, for a worker thread to evaluate. */
export function fusedKernelSource(): string {
  const parts = Object.entries(FUSED_KERNEL_PARTS).map(([name, fn]) => `${name}: ${fn.toString()}`);
  return `(${createFusedKernel.toString()})({ ${parts.join(', ')} })`;
}
