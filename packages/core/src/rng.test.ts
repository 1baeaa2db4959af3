import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { createRng, createRngFromState } from './rng.js';

// ------------------------------------------------------------------------------------------------
// Independent BigInt references, transcribed from the authors' C code
// (https://prng.di.unimi.it/splitmix64.c and https://prng.di.unimi.it/xoshiro128starstar.c).

const M64 = (1n << 64n) - 1n;
const M32 = (1n << 32n) - 1n;

function refSplitmix64(seed: bigint): () => bigint {
  let x = seed & M64;
  return () => {
    x = (x + 0x9e3779b97f4a7c15n) & M64;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  };
}

function refXoshiro128ss(state: bigint[]): () => number {
  const s = state.map((v) => v & M32);
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & M32;
  return () => {
    const result = (rotl((s[1] * 5n) & M32, 7n) * 9n) & M32;
    const t = (s[1] << 9n) & M32;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11n);
    return Number(result);
  };
}

/** Seeding as documented: two splitmix64 outputs x0, x1 → [lo(x0), hi(x0), lo(x1), hi(x1)]. */
function refStateFromSeed(seed: bigint): bigint[] {
  const sm = refSplitmix64(seed);
  const x0 = sm();
  const x1 = sm();
  return [x0 & M32, x0 >> 32n, x1 & M32, x1 >> 32n];
}

function draws(rng: { nextUint32(): number }, n: number): number[] {
  return Array.from({ length: n }, () => rng.nextUint32());
}

describe('reference outputs', () => {
  it('splitmix64 reference reproduces the published outputs for seed 0', () => {
    const sm = refSplitmix64(0n);
    expect([sm(), sm(), sm()]).toEqual([0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn]);
  });

  it('seeding from 0 gives the splitmix64 words as state', () => {
    expect(createRng(0).getState().s).toEqual([0x7b1dcdaf, 0xe220a839, 0xa1b965f4, 0x6e789e6a]);
  });

  it('xoshiro128** from state [1,2,3,4] matches hand-worked first outputs and the reference', () => {
    // Hand-worked: rotl(2*5, 7) * 9 = 1280 * 9 = 11520; after one step s[1] = 0, so the next is 0.
    const rng = createRngFromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 4], spareNormal: null });
    const got = draws(rng, 1000);
    expect(got.slice(0, 2)).toEqual([11520, 0]);
    const ref = refXoshiro128ss([1n, 2n, 3n, 4n]);
    expect(got).toEqual(Array.from({ length: 1000 }, ref));
  });

  it.each([0n, 1n, 42n, 0xdeadbeefcafebaben, M64, 2n ** 53n - 1n])('seed %s matches the BigInt reference stream', (seed) => {
    const ref = refXoshiro128ss(refStateFromSeed(seed));
    expect(draws(createRng(seed), 500)).toEqual(Array.from({ length: 500 }, ref));
  });

  it('number seeds are 64-bit two’s complement values; safe integers agree with bigints', () => {
    expect(draws(createRng(42), 20)).toEqual(draws(createRng(42n), 20));
    expect(draws(createRng(-1), 20)).toEqual(draws(createRng(M64), 20));
    expect(draws(createRng(2 ** 53 - 1), 20)).toEqual(draws(createRng(2n ** 53n - 1n), 20));
  });

  it('string seeds hash with FNV-1a 64 (published vectors)', () => {
    expect(draws(createRng(''), 20)).toEqual(draws(createRng(0xcbf29ce484222325n), 20));
    expect(draws(createRng('a'), 20)).toEqual(draws(createRng(0xaf63dc4c8601ec8cn), 20));
    expect(draws(createRng('foobar'), 20)).toEqual(draws(createRng(0x85944171f73967e8n), 20));
  });

  it('non-integer numbers seed from their bit pattern; non-finite seeds are refused', () => {
    const buf = new DataView(new ArrayBuffer(8));
    buf.setFloat64(0, 0.5);
    expect(draws(createRng(0.5), 10)).toEqual(draws(createRng(buf.getBigUint64(0)), 10));
    expect(() => createRng(Number.NaN)).toThrow(InvalidArgumentError);
    expect(() => createRng(Number.POSITIVE_INFINITY)).toThrow(InvalidArgumentError);
  });
});

describe('determinism, forks and state', () => {
  it('same seed → same stream; different seeds → different streams', () => {
    expect(draws(createRng('run-1'), 100)).toEqual(draws(createRng('run-1'), 100));
    expect(draws(createRng('run-1'), 100)).not.toEqual(draws(createRng('run-2'), 100));
  });

  it('fork is deterministic, label-dependent, and leaves the parent untouched', () => {
    const parent = createRng(7);
    const a1 = draws(parent.fork('data'), 50);
    const a2 = draws(parent.fork('data'), 50);
    const b = draws(parent.fork('init'), 50);
    const n = draws(parent.fork(3), 50);
    expect(a1).toEqual(a2);
    expect(a1).not.toEqual(b);
    expect(n).not.toEqual(a1);
    expect(draws(parent, 50)).toEqual(draws(createRng(7), 50));
    // After the parent advances, the same label gives a different child.
    expect(draws(parent.fork('data'), 50)).not.toEqual(a1);
    // A child is not the parent's own continuation.
    const p2 = createRng(7);
    expect(draws(p2.fork('data'), 50)).not.toEqual(draws(p2, 50));
  });

  it('getState / createRngFromState resume exactly, including the cached normal', () => {
    const rng = createRng(99);
    rng.normal(); // leaves a spare
    const state = JSON.parse(JSON.stringify(rng.getState()));
    const resumed = createRngFromState(state);
    const a = [rng.normal(), rng.normal(), rng.float(), rng.nextUint32()];
    const b = [resumed.normal(), resumed.normal(), resumed.float(), resumed.nextUint32()];
    expect(b).toEqual(a);
    const c = createRng(5);
    const d = c.clone();
    expect(draws(d, 10)).toEqual(draws(c, 10));
    expect(() => createRngFromState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0], spareNormal: null })).toThrow(InvalidArgumentError);
    expect(() => createRngFromState({ algorithm: 'pcg' as 'xoshiro128**', s: [1, 2, 3, 4], spareNormal: null })).toThrow(InvalidArgumentError);
  });
});

describe('statistical invariants', () => {
  it('float() lies in [0, 1) with mean ≈ 1/2 and variance ≈ 1/12', () => {
    const rng = createRng('float');
    let sum = 0;
    let sq = 0;
    const n = 100_000;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.float();
      if (!(x >= 0 && x < 1)) outside++;
      sum += x;
      sq += x * x;
    }
    expect(outside).toBe(0);
    const mean = sum / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(sq / n - mean * mean - 1 / 12)).toBeLessThan(0.002);
  });

  it('100k normals have mean ≈ 0, variance ≈ 1, and scale with mean/std', () => {
    const rng = createRng(2024);
    const n = 100_000;
    const xs = Array.from({ length: n }, () => rng.normal());
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(0.015); // ~5 standard errors
    expect(Math.abs(variance - 1)).toBeLessThan(0.025);
    const within1 = xs.filter((x) => Math.abs(x) < 1).length / n;
    expect(Math.abs(within1 - 0.6827)).toBeLessThan(0.01);
    const ys = Array.from({ length: 20_000 }, () => rng.normal(10, 0.5));
    const my = ys.reduce((a, b) => a + b, 0) / ys.length;
    expect(Math.abs(my - 10)).toBeLessThan(0.02);
  });

  it('int() passes a chi-square uniformity test', () => {
    const rng = createRng('chi');
    const k = 10;
    const n = 100_000;
    const counts = new Array<number>(k).fill(0);
    for (let i = 0; i < n; i++) counts[rng.int(0, k)]++;
    const e = n / k;
    const chi2 = counts.reduce((a, c) => a + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(27.88); // df = 9, p = 0.001
    const c3 = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) c3[rng.int(-1, 2) + 1]++;
    expect(c3.reduce((a, c) => a + (c - 10_000) ** 2 / 10_000, 0)).toBeLessThan(13.82); // df = 2
  });

  it('int() rejects the biased tail (range 3·2^30: plain modulo would put 1/2 of the mass below 2^30)', () => {
    const rng = createRng('bias');
    const n = 30_000;
    let low = 0;
    for (let i = 0; i < n; i++) if (rng.int(0, 3 * 2 ** 30) < 2 ** 30) low++;
    expect(Math.abs(low / n - 1 / 3)).toBeLessThan(0.02);
  });

  it('int() covers ranges beyond 2^32 and respects bounds', () => {
    const rng = createRng(1);
    let high = 0;
    for (let i = 0; i < 1000; i++) {
      const x = rng.int(-(2 ** 40), 2 ** 40);
      expect(Number.isInteger(x) && x >= -(2 ** 40) && x < 2 ** 40).toBe(true);
      if (Math.abs(x) > 2 ** 38) high++;
    }
    expect(high).toBeGreaterThan(600);
    expect(rng.int(5, 6)).toBe(5);
    expect(() => rng.int(3, 3)).toThrow(InvalidArgumentError);
    expect(() => rng.int(0.5, 3)).toThrow(InvalidArgumentError);
    expect(() => rng.int(-(2 ** 53), 2 ** 53)).toThrow(InvalidArgumentError);
  });

  it('shuffle is an in-place permutation, and every position is reachable', () => {
    const rng = createRng('shuffle');
    const base = Array.from({ length: 50 }, (_, i) => i);
    const arr = [...base];
    expect(rng.shuffle(arr)).toBe(arr);
    expect([...arr].sort((a, b) => a - b)).toEqual(base);
    expect(arr).not.toEqual(base);
    const firstSeen = new Set<number>();
    for (let i = 0; i < 400; i++) firstSeen.add(rng.shuffle([0, 1, 2, 3, 4])[0]);
    expect(firstSeen.size).toBe(5);
    expect(createRng(3).shuffle([...base])).toEqual(createRng(3).shuffle([...base]));
  });

  it('choice and sample', () => {
    const rng = createRng('pick');
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(rng.choice(['a', 'b', 'c']));
    expect(seen).toEqual(new Set(['a', 'b', 'c']));
    expect(() => rng.choice([])).toThrow(InvalidArgumentError);
    const pool = Array.from({ length: 1000 }, (_, i) => i);
    const s = rng.sample(pool, 100);
    expect(s).toHaveLength(100);
    expect(new Set(s).size).toBe(100);
    expect(s.every((x) => x >= 0 && x < 1000)).toBe(true);
    const all = rng.sample(pool, 1000);
    expect([...all].sort((a, b) => a - b)).toEqual(pool);
    expect(rng.sample(pool, 0)).toEqual([]);
    expect(() => rng.sample(pool, 1001)).toThrow(InvalidArgumentError);
    // each element equally likely to be sampled: 5 of 10, 20k times → each ≈ 10k
    const counts = new Array<number>(10).fill(0);
    const ten = Array.from({ length: 10 }, (_, i) => i);
    for (let i = 0; i < 20_000; i++) for (const x of rng.sample(ten, 5)) counts[x]++;
    expect(counts.reduce((a, c) => a + (c - 10_000) ** 2 / 10_000, 0)).toBeLessThan(27.88);
  });

  it('fillNormal and fillUniform for weight init', () => {
    const rng = createRng('init');
    const w = rng.fillNormal(new Float32Array(50_000), 0.02);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.0005);
    const u = rng.fillUniform(new Float64Array(50_000), -0.1, 0.1);
    expect(u.every((x) => x >= -0.1 && x < 0.1)).toBe(true);
    expect(Math.abs(u.reduce((a, b) => a + b, 0) / u.length)).toBeLessThan(0.002);
    expect(() => rng.fillUniform(new Float32Array(1), 1, 0)).toThrow(InvalidArgumentError);
    expect(() => rng.fillNormal(new Float32Array(1), -1)).toThrow(InvalidArgumentError);
    expect(() => rng.normal(0, Number.NaN)).toThrow(InvalidArgumentError);
  });
});
