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
import { RESAMPLE_WASM } from './resample-wasm.js';

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
  /** Which implementation runs: WebAssembly SIMD, or plain JavaScript where the engine lacks SIMD (or no module was given). */
  readonly backend: 'wasm-simd' | 'js';
  /** Bytes the SIMD module's memory holds now (0 for the JavaScript kernel); at most 64 MiB between calls. */
  memoryBytes(): number;
  /** Write the processed image as float32 [3, height, width] into `target` at `offset`; `tables` is 3 × 256 values. */
  run(spec: FusedSpec, src: Uint8Array, tables: Float32Array, target: Float32Array, offset: number): void;
}

/** The self-contained resampling functions a kernel is built from (see the file comment). */
export interface FusedKernelParts {
  pillowFilters: typeof pillowFilters;
  filterTaps: typeof filterTaps;
  horizontalRgb: typeof horizontalRgb;
  /** The SIMD module (resample.wat, base64); without it the kernel runs in JavaScript. */
  wasm?: string;
}

/** The parts from filter-taps.ts, as every kernel uses them. */
export const FUSED_KERNEL_PARTS: FusedKernelParts = { pillowFilters, filterTaps, horizontalRgb, wasm: RESAMPLE_WASM };

/** The same parts without the SIMD module: the plain JavaScript kernel (the fallback, and the reference the tests hold the SIMD one to). */
export const FUSED_KERNEL_PARTS_JS: FusedKernelParts = { pillowFilters, filterTaps, horizontalRgb };

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

  const runJs = (spec: FusedSpec, src: Uint8Array, tables: Float32Array, target: Float32Array, offset: number): void => {
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
  let memoryBytes = (): number => 0;
  const wasm = parts.wasm === undefined ? null : instantiateWasm(parts.wasm);
  return { run: wasm ?? runJs, backend: wasm ? 'wasm-simd' : 'js', memoryBytes: () => memoryBytes() };

  /**
   * The same computation in WebAssembly SIMD (resample.wat), or null where the engine lacks SIMD.
   * The 22-bit weights are split as w = hi * 2048 + lo (lo in 0..2047) so both halves fit the 16-bit
   * lanes of i32x4.dot_i16x8_s; hi * 2048 + lo summed in int32 is the exact sum Pillow forms.
   */
  function instantiateWasm(base64: string): FusedKernel['run'] | null {
    type Exports = {
      memory: WebAssembly.Memory;
      hpass(src: number, inStride: number, nRows: number, rec: number, recStride: number, count: number, out: number): void;
      vpass(src: number, rowStride: number, width: number, rec: number, recStride: number, nOut: number, out: number): void;
      planes(src: number, rowStride: number, cw: number, ch: number, tab: number, dst: number): void;
    };
    let module: WebAssembly.Module;
    let ex: Exports;
    try {
      const bin = atob(base64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      if (!WebAssembly.validate(bytes)) return null;
      module = new WebAssembly.Module(bytes);
      ex = new WebAssembly.Instance(module, {}).exports as Exports;
    } catch {
      return null;
    }
    // A module's memory only grows: after an image that needed more than this, the instance is
    // replaced by a fresh one, so one huge photo does not stay resident for the life of the thread.
    const RETAIN_BYTES = 64 * 1024 * 1024;
    memoryBytes = () => ex.memory.buffer.byteLength;
    // Arithmetic, not bitwise: sizes past 2 GB must stay numbers for the check below.
    const align = (n: number): number => Math.ceil(n / 16) * 16;
    /** Write the pair records of taps `first .. first + count` at byte `at`: [offset, pairs, (hi, lo) per pair]. */
    const writeRecords = (i32: Int32Array, at: number, taps: FilterTaps, first: number, count: number, stride: number, unit: number, base: number): void => {
      const { ksize, bounds, weights } = taps;
      const perRec = stride >> 2;
      let r = at >> 2;
      for (let o = first; o < first + count; o++, r += perRec) {
        const n = bounds[o * 2 + 1];
        i32[r] = (bounds[o * 2] - base) * unit;
        i32[r + 1] = (n + 1) >> 1;
        for (let t = 0; t < n; t += 2) {
          const w0 = weights[o * ksize + t];
          const w1 = t + 1 < n ? weights[o * ksize + t + 1] : 0;
          i32[r + 2 + t] = ((w0 >> 11) & 0xffff) | ((w1 >> 11) << 16);
          i32[r + 3 + t] = (w0 & 2047) | ((w1 & 2047) << 16);
        }
      }
    };
    // Whether every weight's high half fits 16 bits, decided once per (cached) set of taps, not per image.
    const fitted = new WeakMap<FilterTaps, boolean>();
    const fits = (taps: FilterTaps): boolean => {
      let ok = fitted.get(taps);
      if (ok === undefined) {
        ok = taps.weights.every((w) => w < 1 << 26 && w >= -(1 << 26));
        fitted.set(taps, ok);
      }
      return ok;
    };
    return (spec, src, tables, target, offset) => {
      const { inW, inH, outW, outH, left, top, width: cw, height: chh } = spec;
      const hc = outW !== inW ? coefficients(spec.filter, inW, outW) : null;
      const vc = outH !== inH ? coefficients(spec.filter, inH, outH) : null;
      if ((hc && !fits(hc)) || (vc && !fits(vc))) {
        runJs(spec, src, tables, target, offset);
        return;
      }
      // The source rows the kept output rows read.
      const rowFirst = vc ? vc.bounds[top * 2] : top;
      const rowLast = vc ? vc.bounds[(top + chh - 1) * 2] + vc.bounds[(top + chh - 1) * 2 + 1] : top + chh;
      const nRows = rowLast - rowFirst;
      const inStride = inW * 3;
      const cStride = cw * 3;
      // Layout: source rows, horizontal result, vertical result, records, tables, planes. Each
      // buffer a pass reads has a spare row and 32 bytes after it: the passes read (with zero
      // weight) one tap row past an odd tap count and write up to 15 bytes past a row's end.
      const aSrc = 0;
      const aTmp = align(aSrc + (nRows + 1) * inStride + 32);
      const aOut8 = align(aTmp + (hc ? (nRows + 1) * cStride + 32 : 0));
      const aHrec = align(aOut8 + (vc ? chh * cStride + 32 : 0));
      const hStride = hc ? 8 + 8 * ((hc.ksize + 1) >> 1) : 0;
      const aVrec = align(aHrec + (hc ? cw * hStride : 0));
      const vStride = vc ? 8 + 8 * ((vc.ksize + 1) >> 1) : 0;
      const aTab = align(aVrec + (vc ? chh * vStride : 0));
      const aDst = align(aTab + 768 * 4);
      const end = aDst + 12 * cw * chh;
      // Past 2 GB the module's 32-bit addresses (and its memory limit) end: such images take the JavaScript path.
      if (end > 2 ** 31) {
        runJs(spec, src, tables, target, offset);
        return;
      }
      const memory = ex.memory;
      try {
        if (memory.buffer.byteLength < end) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
      } catch {
        // The engine refused the memory (a browser's cap): the JavaScript path needs less.
        runJs(spec, src, tables, target, offset);
        return;
      }
      const buf = memory.buffer;
      new Uint8Array(buf, aSrc, nRows * inStride).set(src.subarray(rowFirst * inStride, rowLast * inStride));
      new Float32Array(buf, aTab, 768).set(tables);
      const i32 = new Int32Array(buf);
      // The 8-bit rows the vertical pass (or the planes) read: the horizontal result or the source.
      let rows = aSrc;
      let rowStride = inStride;
      let colOff = left * 3;
      if (hc) {
        writeRecords(i32, aHrec, hc, left, cw, hStride, 3, 0);
        ex.hpass(aSrc, inStride, nRows, aHrec, hStride, cw, aTmp);
        rows = aTmp;
        rowStride = cStride;
        colOff = 0;
      }
      if (vc) {
        writeRecords(i32, aVrec, vc, top, chh, vStride, rowStride, rowFirst);
        if (colOff) for (let y = 0; y < chh; y++) i32[(aVrec + y * vStride) >> 2] += colOff;
        ex.vpass(rows, rowStride, cStride, aVrec, vStride, chh, aOut8);
        rows = aOut8;
        rowStride = cStride;
        colOff = 0;
      }
      ex.planes(rows + colOff, rowStride, cw, chh, aTab, aDst);
      target.set(new Float32Array(buf, aDst, 3 * cw * chh), offset);
      if (buf.byteLength > RETAIN_BYTES) ex = new WebAssembly.Instance(module, {}).exports as Exports;
    };
  }
}

/** JavaScript expression text that evaluates to a fresh kernel, for a worker thread to evaluate. */
export function fusedKernelSource(): string {
  const parts = Object.entries(FUSED_KERNEL_PARTS).map(([name, v]) => `${name}: ${typeof v === 'string' ? JSON.stringify(v) : v.toString()}`);
  return `(${createFusedKernel.toString()})({ ${parts.join(', ')} })`;
}
