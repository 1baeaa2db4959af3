/**
 * Decoders of the sub-16-bit float formats that checkpoints store and core has no native dtype for:
 * OCP 8-bit (E4M3, E5M2, E8M0 scales) and 4-bit (E2M1) floats, one encoded value to a number.
 */

/** Decode an OCP FP8 E4M3 ("e4m3fn": bias 7, no infinities, NaN at 0x7F/0xFF, max 448) byte to a number. */
export function float8E4M3ToFloat32(bits: number): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exp = (bits >> 3) & 0xf;
  const mant = bits & 0x7;
  if (exp === 0xf && mant === 0x7) return Number.NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

/** Decode an FP8 E5M2 (bias 15, IEEE-style infinities and NaNs) byte to a number. */
export function float8E5M2ToFloat32(bits: number): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exp = (bits >> 2) & 0x1f;
  const mant = bits & 0x3;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  if (exp === 0) return sign * mant * 2 ** -16;
  return sign * (1 + mant / 4) * 2 ** (exp - 15);
}

/** Decode an OCP E8M0 scale byte (unsigned power of two 2^(bits-127); 0xFF is NaN) to a number. */
export function float8E8M0ToFloat32(bits: number): number {
  const b = bits & 0xff;
  return b === 0xff ? Number.NaN : 2 ** (b - 127);
}

/** Decode an OCP FP4 E2M1 nibble (bias 1, values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}) to a number. */
export function float4E2M1ToFloat32(bits: number): number {
  const sign = bits & 0x8 ? -1 : 1;
  const exp = (bits >> 1) & 0x3;
  const mant = bits & 0x1;
  if (exp === 0) return sign * mant * 0.5;
  return sign * (1 + mant / 2) * 2 ** (exp - 1);
}
