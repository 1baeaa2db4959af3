/**
 * Perceptual image hashes and pixel statistics over core RawImages, in plain TypeScript (the
 * images involved are tiny after downscaling).
 *
 * Grey: ITU-R BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B (alpha ignored).
 * Downscale: area averaging — each output pixel is the mean of the source area it covers, with
 * fractional edge pixels weighted by their covered fraction.
 * dHash (Krawetz): grey 9x8, bit (row r, column c) = 1 when pixel (r, c) < pixel (r, c + 1); 64 bits,
 * row-major, bit 0 first.
 * pHash: grey 32x32, 2-D DCT-II (orthonormal), the 8x8 lowest frequencies (DC included), bit =
 * coefficient > median of those 64 coefficients (by more than 1e-9 (1 + |DC|), so rounding noise sets no bits); row-major (vertical frequency, horizontal frequency).
 */
import { InvalidArgumentError, type RawImage } from '@vlit/core';

/** A single-channel float image. */
export interface GreyImage {
  width: number;
  height: number;
  data: Float64Array;
}

/** Grey (BT.601 luma) version of an image, 0..255. */
export function toGrey(image: RawImage): GreyImage {
  const { width, height, channels, data } = image;
  if (!(width > 0 && height > 0) || data.length !== width * height * channels) {
    throw new InvalidArgumentError(`image data length ${data.length} does not match ${width}x${height}x${channels}`, { details: { field: 'image' } });
  }
  const out = new Float64Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const o = i * channels;
    out[i] = channels >= 3 ? 0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2] : data[o];
  }
  return { width, height, data: out };
}

/** Area-averaging resize of a grey image. */
export function resizeArea(image: GreyImage, width: number, height: number): GreyImage {
  const sx = image.width / width;
  const sy = image.height / height;
  const out = new Float64Array(width * height);
  // Per-axis coverage weights, computed once: weights[o] = [(sourceIndex, fraction)...].
  const axis = (outN: number, scale: number, inN: number): Array<Array<[number, number]>> =>
    Array.from({ length: outN }, (_, o) => {
      const start = o * scale;
      const end = Math.min(inN, (o + 1) * scale);
      const parts: Array<[number, number]> = [];
      for (let s = Math.floor(start); s < end; s++) {
        const w = Math.min(end, s + 1) - Math.max(start, s);
        if (w > 1e-12) parts.push([s, w]);
      }
      return parts;
    });
  const xs = axis(width, sx, image.width);
  const ys = axis(height, sy, image.height);
  for (let oy = 0; oy < height; oy++) {
    for (let ox = 0; ox < width; ox++) {
      let sum = 0;
      let area = 0;
      for (const [yy, wy] of ys[oy]) {
        for (const [xx, wx] of xs[ox]) {
          sum += image.data[yy * image.width + xx] * wx * wy;
          area += wx * wy;
        }
      }
      out[oy * width + ox] = sum / area;
    }
  }
  return { width, height, data: out };
}

/** A 64-bit hash as a bigint (bit i = 2^i). */
export type ImageHash = bigint;

function bitsToHash(bits: readonly boolean[]): ImageHash {
  let h = 0n;
  bits.forEach((b, i) => {
    if (b) h |= 1n << BigInt(i);
  });
  return h;
}

/** dHash of an image (or of an already-grey image): 64 horizontal-gradient bits over a 9x8 grey thumbnail. */
export function dHash(image: RawImage | GreyImage): ImageHash {
  const grey = 'channels' in image ? toGrey(image) : image;
  const small = resizeArea(grey, 9, 8);
  const bits: boolean[] = [];
  for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) bits.push(small.data[r * 9 + c] < small.data[r * 9 + c + 1]);
  return bitsToHash(bits);
}

/** Orthonormal 1-D DCT-II of a vector. */
export function dct1d(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i] * Math.cos((Math.PI * (2 * i + 1) * k) / (2 * n));
    out[k] = s * (k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n));
  }
  return out;
}

/** Orthonormal 2-D DCT-II of a square grey image (rows then columns); out[v * n + u]. */
export function dct2d(image: GreyImage): Float64Array {
  const n = image.width;
  if (image.height !== n) throw new InvalidArgumentError('dct2d needs a square image', { details: { field: 'image' } });
  const rows = new Float64Array(n * n);
  for (let r = 0; r < n; r++) rows.set(dct1d(image.data.subarray(r * n, r * n + n)), r * n);
  const out = new Float64Array(n * n);
  const col = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    for (let r = 0; r < n; r++) col[r] = rows[r * n + c];
    const t = dct1d(col);
    for (let r = 0; r < n; r++) out[r * n + c] = t[r];
  }
  return out;
}

/** pHash of an image: the 8x8 lowest DCT frequencies of a 32x32 grey thumbnail against their median. */
export function pHash(image: RawImage | GreyImage): ImageHash {
  const grey = 'channels' in image ? toGrey(image) : image;
  const coeffs = dct2d(resizeArea(grey, 32, 32));
  const low: number[] = [];
  for (let v = 0; v < 8; v++) for (let u = 0; u < 8; u++) low.push(coeffs[v * 32 + u]);
  const sorted = [...low].sort((a, b) => a - b);
  const median = (sorted[31] + sorted[32]) / 2;
  // Rounding noise (~1e-13) must not set bits on flat images, so "greater" means by more than it.
  const eps = 1e-9 * (1 + Math.abs(low[0]));
  return bitsToHash(low.map((c) => c - median > eps));
}

/** Number of differing bits of two hashes. */
export function hammingDistance(a: ImageHash, b: ImageHash): number {
  let x = a ^ b;
  let n = 0;
  while (x > 0n) {
    x &= x - 1n;
    n++;
  }
  return n;
}

/** A hash as 16 hex digits. */
export function hashToHex(h: ImageHash): string {
  return h.toString(16).padStart(16, '0');
}

/** Mean and standard deviation of pixel values over every colour channel (alpha ignored). */
export function pixelStats(image: RawImage): { mean: number; std: number } {
  const { channels, data } = image;
  const colour = channels === 2 || channels === 4 ? channels - 1 : channels;
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < data.length; i += channels) {
    for (let c = 0; c < colour; c++) {
      const v = data[i + c];
      sum += v;
      sq += v * v;
      n++;
    }
  }
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)) };
}
