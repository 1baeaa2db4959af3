/**
 * The fused resize + centre-crop + normalise + channel-first kernel behind preprocessImage,
 * preprocessBatch and the worker pool. It computes exactly what resizeImage → centerCrop →
 * writeImageTensor compute (Pillow's fixed-point separable resampling), but only for the rows and
 * columns the crop keeps, with filter coefficients cached per (filter, source size, target size),
 * scratch buffers reused between images, and each 8-bit result turned into its float32 value by a
 * 256-entry table as it is written into the [C, H, W] target.
 *
 * `createFusedKernel` must stay self-contained (no imports, no outer names): the worker pool ships
 * its source text to worker threads, so the same code runs on every thread.
 */

/** Everything the kernel needs for one RGB image; plain data so it can cross a worker boundary. */
export interface FusedSpec {
  /** Source size (RGB, interleaved). */
  inW: number;
  inH: number;
  /** Resized size (equal to the source size when there is no resize). */
  outW: number;
  outH: number;
  /** A Pillow filter other than nearest. */
  filter: 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';
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

/** A fresh kernel (see the file comment for why it takes no outer names). */
export function createFusedKernel(): FusedKernel {
  const PRECISION_BITS = 22;
  const HALF = 1 << (PRECISION_BITS - 1);
  const H054 = Math.fround(0.54);
  const H046 = Math.fround(0.46);
  const sinc = (x: number): number => {
    if (x === 0) return 1;
    const px = x * Math.PI;
    return Math.sin(px) / px;
  };
  const filters: Record<string, { support: number; fn: (x: number) => number }> = {
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
      fn: (x) => {
        const a = Math.abs(x);
        if (a < 1) return (1.5 * a - 2.5) * a * a + 1;
        if (a < 2) return (((a - 5) * a + 8) * a - 4) * -0.5;
        return 0;
      },
    },
    lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  };

  interface Coeffs {
    ksize: number;
    bounds: Int32Array;
    weights: Int32Array;
  }
  // Real batches repeat a handful of source sizes, so the coefficients are worth keeping.
  const cache = new Map<string, Coeffs>();
  const coefficients = (filterName: string, inSize: number, outSize: number): Coeffs => {
    const key = `${filterName}|${inSize}|${outSize}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const filter = filters[filterName];
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
    const c = { ksize, bounds, weights };
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
      const { ksize, bounds, weights } = hc;
      const inStride = inW * 3;
      for (let y = 0; y < nRows; y++) {
        const rowIn = (y + rowFirst) * inStride;
        let o = y * rowStride;
        for (let xx = left; xx < left + cw; xx++) {
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
          tmp[o++] = s0 < 0 ? 0 : s0 > 255 ? 255 : s0;
          tmp[o++] = s1 < 0 ? 0 : s1 > 255 ? 255 : s1;
          tmp[o++] = s2 < 0 ? 0 : s2 > 255 ? 255 : s2;
        }
      }
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
