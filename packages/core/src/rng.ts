/**
 * A seeded, deterministic random number generator for data sampling, shuffling and weight init.
 *
 * Algorithm: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c),
 * a 128-bit state generator using only 32-bit integer operations. The state is seeded from a
 * 64-bit seed with splitmix64 (https://prng.di.unimi.it/splitmix64.c), as the authors recommend:
 * two splitmix64 outputs x0, x1 give s = [lo(x0), hi(x0), lo(x1), hi(x1)]. splitmix64's 64-bit
 * arithmetic is emulated with pairs of 32-bit halves (no BigInt on the hot path).
 *
 * Seeds: a safe-integer number is taken as a 64-bit two's complement value (so `1` and `1n`
 * agree); other finite numbers use their IEEE-754 bit pattern; a bigint is taken modulo 2^64; a
 * string is hashed to 64 bits with FNV-1a over its UTF-8 bytes.
 */
import { InvalidArgumentError } from './errors.js';

/** Serializable generator state, for checkpoints; restore it with createRngFromState. */
export interface RngState {
  readonly algorithm: 'xoshiro128**';
  /** The four 32-bit state words (unsigned). */
  readonly s: readonly [number, number, number, number];
  /** The cached second Box–Muller normal, or null. */
  readonly spareNormal: number | null;
}

/** A deterministic random stream. */
export interface Rng {
  /** Next raw 32-bit output as an unsigned integer. */
  nextUint32(): number;
  /** Uniform float in [0, 1) with 53 random bits (consumes two outputs). */
  float(): number;
  /** Uniform integer in [min, maxExclusive), unbiased (rejection sampling); the range may reach 2^53. */
  int(min: number, maxExclusive: number): number;
  /** Normal sample (Box–Muller; the second value of each pair is cached for the next call). */
  normal(mean?: number, std?: number): number;
  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(array: T[]): T[];
  /** One uniformly chosen element; throws InvalidArgumentError on an empty array. */
  choice<T>(array: readonly T[]): T;
  /** k distinct positions of `array`, uniformly, in random order (without replacement). */
  sample<T>(array: readonly T[], k: number): T[];
  /**
   * An independent child stream derived from this stream's current state and `label`. Does not
   * advance this stream, so the same label at the same point always gives the same child.
   */
  fork(label: string | number): Rng;
  /** Fill with normal samples N(mean, std²); returns the same array. */
  fillNormal<A extends Float32Array | Float64Array>(array: A, std?: number, mean?: number): A;
  /** Fill with uniform samples in [low, high); returns the same array. */
  fillUniform<A extends Float32Array | Float64Array>(array: A, low?: number, high?: number): A;
  /** An identical copy that continues independently from the same point. */
  clone(): Rng;
  /** Snapshot of the state (JSON-serializable). */
  getState(): RngState;
}

// ---------------------------------------------------------------------------------------------
// 64-bit helpers on [hi, lo] pairs of unsigned 32-bit numbers.

const TWO_32 = 4294967296;

/** (a * b) mod 2^64 for a = ah:al, b = bh:bl; returns [hi, lo]. */
function mul64(ah: number, al: number, bh: number, bl: number): [number, number] {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33, exact
  const low = a0 * b0 + (mid % 65536) * 65536; // < 2^33, exact
  const carry = Math.floor(low / TWO_32);
  const hi = a1 * b1 + Math.floor(mid / 65536) + carry + Math.imul(ah, bl) + Math.imul(al, bh);
  return [hi >>> 0, low >>> 0];
}

/** splitmix64 step on a mutable [hi, lo] state; returns the output as [hi, lo]. */
function splitmix64(state: [number, number]): [number, number] {
  const lo = state[1] + 0x7f4a7c15;
  state[1] = lo >>> 0;
  state[0] = (state[0] + 0x9e3779b9 + (lo >= TWO_32 ? 1 : 0)) >>> 0;
  let zh = state[0];
  let zl = state[1];
  // z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
  zl = (zl ^ ((zl >>> 30) | (zh << 2))) >>> 0;
  zh = (zh ^ (zh >>> 30)) >>> 0;
  [zh, zl] = mul64(zh, zl, 0xbf58476d, 0x1ce4e5b9);
  // z = (z ^ (z >> 27)) * 0x94d049bb133111eb
  zl = (zl ^ ((zl >>> 27) | (zh << 5))) >>> 0;
  zh = (zh ^ (zh >>> 27)) >>> 0;
  [zh, zl] = mul64(zh, zl, 0x94d049bb, 0x133111eb);
  // z ^ (z >> 31)
  zl = (zl ^ ((zl >>> 31) | (zh << 1))) >>> 0;
  zh = (zh ^ (zh >>> 31)) >>> 0;
  return [zh, zl];
}

/** FNV-1a 64-bit hash of bytes; returns [hi, lo]. */
function fnv1a64(bytes: Uint8Array): [number, number] {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]) >>> 0;
    [hi, lo] = mul64(hi, lo, 0x00000100, 0x000001b3);
  }
  return [hi, lo];
}

const encoder = new TextEncoder();
const f64 = new Float64Array(1);
const f64words = new Uint32Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function seedTo64(seed: number | string | bigint): [number, number] {
  if (typeof seed === 'string') return fnv1a64(encoder.encode(seed));
  if (typeof seed === 'bigint') {
    const v = BigInt.asUintN(64, seed);
    return [Number(v >> 32n), Number(v & 0xffffffffn)];
  }
  if (typeof seed === 'number' && Number.isFinite(seed)) {
    if (Number.isSafeInteger(seed)) return [Math.floor(seed / TWO_32) >>> 0, seed >>> 0];
    f64[0] = seed;
    return LITTLE_ENDIAN ? [f64words[1], f64words[0]] : [f64words[0], f64words[1]];
  }
  throw new InvalidArgumentError(`seed must be a finite number, a bigint or a string, got ${String(seed)}`, {
    details: { field: 'seed' },
  });
}

function stateFromSeed64(seed: [number, number]): [number, number, number, number] {
  const sm: [number, number] = [seed[0], seed[1]];
  const [h0, l0] = splitmix64(sm);
  const [h1, l1] = splitmix64(sm);
  const s: [number, number, number, number] = [l0, h0, l1, h1];
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1; // unreachable with splitmix64, but xoshiro forbids all-zero
  return s;
}

function checkFinite(value: number, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(`${field} must be a finite number, got ${String(value)}`, { details: { field } });
  }
}

class Xoshiro128 implements Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null;

  constructor(s: readonly [number, number, number, number], spare: number | null) {
    this.s0 = s[0] >>> 0;
    this.s1 = s[1] >>> 0;
    this.s2 = s[2] >>> 0;
    this.s3 = s[3] >>> 0;
    this.spare = spare;
  }

  nextUint32(): number {
    const s1 = this.s1;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  float(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  int(min: number, maxExclusive: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(maxExclusive)) {
      throw new InvalidArgumentError(`int(min, maxExclusive) needs safe integers, got ${min}, ${maxExclusive}`, {
        details: { field: 'min' },
      });
    }
    const range = maxExclusive - min;
    if (!(range > 0) || !Number.isSafeInteger(range)) {
      throw new InvalidArgumentError(`int(min, maxExclusive) needs min < maxExclusive within 2^53, got ${min}, ${maxExclusive}`, {
        details: { field: 'maxExclusive' },
      });
    }
    if (range <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % range);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return min + (x % range);
      }
    }
    const TWO_53 = 9007199254740992;
    const limit = TWO_53 - (TWO_53 % range);
    for (;;) {
      const x = (this.nextUint32() >>> 11) * TWO_32 + this.nextUint32();
      if (x < limit) return min + (x % range);
    }
  }

  normal(mean = 0, std = 1): number {
    checkFinite(mean, 'mean');
    checkFinite(std, 'std');
    if (std < 0) throw new InvalidArgumentError(`std must be non-negative, got ${std}`, { details: { field: 'std' } });
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    const u1 = 1 - this.float(); // (0, 1]: log is finite
    const u2 = this.float();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return mean + std * r * Math.cos(theta);
  }

  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  choice<T>(array: readonly T[]): T {
    if (array.length === 0) {
      throw new InvalidArgumentError('choice() needs a non-empty array', { details: { field: 'array' } });
    }
    return array[this.int(0, array.length)];
  }

  sample<T>(array: readonly T[], k: number): T[] {
    const n = array.length;
    if (!Number.isSafeInteger(k) || k < 0 || k > n) {
      throw new InvalidArgumentError(`sample() needs 0 <= k <= ${n}, got ${k}`, { details: { field: 'k' } });
    }
    // Partial Fisher–Yates over indices, with the swaps kept sparse: O(k) time and memory.
    const moved = new Map<number, number>();
    const out: T[] = new Array<T>(k);
    for (let i = 0; i < k; i++) {
      const j = this.int(i, n);
      const atI = moved.get(i) ?? i;
      const atJ = moved.get(j) ?? j;
      moved.set(j, atI);
      out[i] = array[atJ];
    }
    return out;
  }

  fork(label: string | number): Rng {
    if (typeof label !== 'string' && typeof label !== 'number') {
      throw new InvalidArgumentError('fork() needs a string or number label', { details: { field: 'label' } });
    }
    const text = encoder.encode(String(label));
    const bytes = new Uint8Array(17 + text.length);
    const dv = new DataView(bytes.buffer);
    dv.setUint32(0, this.s0, true);
    dv.setUint32(4, this.s1, true);
    dv.setUint32(8, this.s2, true);
    dv.setUint32(12, this.s3, true);
    bytes[16] = 0xff; // separator: no UTF-8 text contains 0xFF
    bytes.set(text, 17);
    return new Xoshiro128(stateFromSeed64(fnv1a64(bytes)), null);
  }

  fillNormal<A extends Float32Array | Float64Array>(array: A, std = 1, mean = 0): A {
    checkFinite(std, 'std');
    checkFinite(mean, 'mean');
    if (std < 0) throw new InvalidArgumentError(`std must be non-negative, got ${std}`, { details: { field: 'std' } });
    for (let i = 0; i < array.length; i++) array[i] = this.normal(mean, std);
    return array;
  }

  fillUniform<A extends Float32Array | Float64Array>(array: A, low = 0, high = 1): A {
    checkFinite(low, 'low');
    checkFinite(high, 'high');
    if (!(low <= high)) {
      throw new InvalidArgumentError(`fillUniform needs low <= high, got ${low}, ${high}`, { details: { field: 'low' } });
    }
    const span = high - low;
    for (let i = 0; i < array.length; i++) array[i] = low + span * this.float();
    return array;
  }

  clone(): Rng {
    return new Xoshiro128([this.s0, this.s1, this.s2, this.s3], this.spare);
  }

  getState(): RngState {
    return { algorithm: 'xoshiro128**', s: [this.s0, this.s1, this.s2, this.s3], spareNormal: this.spare };
  }
}

/** Create a deterministic generator (xoshiro128**, seeded through splitmix64) from a seed. */
export function createRng(seed: number | string | bigint): Rng {
  return new Xoshiro128(stateFromSeed64(seedTo64(seed)), null);
}

/** Restore a generator from a state snapshot taken with getState(). */
export function createRngFromState(state: RngState): Rng {
  const s = state?.s;
  const valid =
    state?.algorithm === 'xoshiro128**' &&
    Array.isArray(s) &&
    s.length === 4 &&
    s.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_32) &&
    (s[0] | s[1] | s[2] | s[3]) !== 0 &&
    (state.spareNormal === null || Number.isFinite(state.spareNormal));
  if (!valid) {
    throw new InvalidArgumentError('not a valid xoshiro128** RNG state', { details: { field: 'state' } });
  }
  return new Xoshiro128(s, state.spareNormal);
}
