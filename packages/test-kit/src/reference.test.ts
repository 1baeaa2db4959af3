import { describe, expect, it } from 'vitest';
import { addBias, attention, erf, gelu, geluTanh, layerNorm, linear, matmul, maxAbsDiff, patchEmbed, quickGelu, silu, softmaxRows } from './index.js';

const rounded = (a: ArrayLike<number>, digits = 12): number[] => Array.from(a).map((v) => +v.toFixed(digits));

describe('activations against published values', () => {
  it('erf and gelu match published values', () => {
    // Abramowitz & Stegun table 7.1 / high-precision values (Python's math.erf agrees to the last digit).
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf(2)).toBeCloseTo(0.9953222650189527, 14);
    expect(erf(3)).toBeCloseTo(0.9999779095030014, 14);
    expect(erf(4)).toBeCloseTo(0.9999999845827421, 14);
    expect(erf(-1.5)).toBeCloseTo(-0.9661051464753108, 14);
    expect(erf(-3.2)).toBeCloseTo(-0.9999939742388483, 14);
    expect(erf(0)).toBe(0);
    expect(gelu(1)).toBeCloseTo(0.8413447460685429, 14);
    expect(gelu(-1)).toBeCloseTo(-0.15865525393145707, 14);
  });

  it('the GELU variants and SiLU follow their formulas', () => {
    // 0.5 (1 + tanh(sqrt(2/pi) (1 + 0.044715))), 1 / (1 + e^-1.702), 1 / (1 + e^-1): worked in Python.
    expect(geluTanh(1)).toBeCloseTo(0.8411919906082768, 14);
    expect(quickGelu(1)).toBeCloseTo(0.8457957659328212, 14);
    expect(silu(1)).toBeCloseTo(1 / (1 + Math.exp(-1)), 15);
    for (const f of [gelu, geluTanh, quickGelu, silu]) expect(f(0)).toBe(0);
  });
});

describe('linear algebra (hand-worked)', () => {
  it('matmul of [2,3] x [3,2] and addBias per row', () => {
    const y = matmul([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], 2, 3, 2);
    expect(Array.from(y)).toEqual([58, 64, 139, 154]);
    expect(Array.from(addBias(y, [1, -1], 2))).toEqual([59, 63, 140, 153]);
  });

  it('linear uses the torch Linear layout [out, in], bias optional', () => {
    expect(Array.from(linear(Float64Array.from([1, 2]), 1, { dims: [3, 2], data: [1, 0, 0, 1, 1, 1] }))).toEqual([1, 2, 3]);
    expect(Array.from(linear([1, 2, 3, 4], 2, { dims: [1, 2], data: [1, -1] }, [10]))).toEqual([9, 9]);
  });

  it('softmax of a hand-worked row', () => {
    const p = softmaxRows([0, Math.log(2), Math.log(5)], 1, 3);
    expect(rounded(p)).toEqual([0.125, 0.25, 0.625]);
    // Shifting a row by a constant changes nothing; huge logits do not overflow.
    expect(rounded(softmaxRows([1000, 1000 + Math.log(3), 7, 7], 2, 2))).toEqual([0.25, 0.75, 0.5, 0.5]);
  });

  it('layerNorm of [1, 2, 3, 4] (mean 2.5, biased variance 1.25) with scale and bias', () => {
    const y = layerNorm([1, 2, 3, 4], 1, 4, [1, 1, 2, 2], [0, 0, 0, 1], 0);
    const s = Math.sqrt(1.25);
    expect(rounded(y)).toEqual(rounded([-1.5 / s, -0.5 / s, 1 / s, 3 / s + 1]));
    // eps is added to the variance: var 0 gives (x - mean) / sqrt(eps) = 0 per element.
    expect(Array.from(layerNorm([5, 5], 1, 2, [1, 1], [0.5, -0.5], 1e-5))).toEqual([0.5, -0.5]);
  });
});

describe('attention and patch embedding (hand-worked)', () => {
  it('equal scores average the values; one key gives that value', () => {
    // Two heads of width 1: q = 0 makes every score 0, so each head averages v over the keys.
    const out = attention([0, 0, 0, 0], [1, 2, 3, 4], [1, 10, 3, 30], { queries: 2, keys: 2, heads: 2, headDim: 1 });
    expect(Array.from(out)).toEqual([2, 20, 2, 20]);
    expect(Array.from(attention([5], [7], [42], { queries: 1, keys: 1, heads: 1, headDim: 1 }))).toEqual([42]);
  });

  it('scores are scaled by 1/sqrt(headDim)', () => {
    // q·k = [0, 2 ln 3] over headDim 4 -> scaled [0, ln 3] -> weights [1/4, 3/4].
    const q = [1, 1, 1, 1];
    const k = [0, 0, 0, 0, Math.log(3), Math.log(3), 0, 0];
    const out = attention(q, k, [0, 0, 0, 0, 4, 8, 0, 0], { queries: 1, keys: 2, heads: 1, headDim: 4 });
    expect(rounded(out)).toEqual([3, 6, 0, 0]);
  });

  it('causal attention hides later keys; grouped heads share one key/value head', () => {
    const v = [2, 4, 6];
    const causal = attention([0, 0, 0], [0, 0, 0], v, { queries: 3, keys: 3, heads: 1, headDim: 1, causal: true });
    expect(rounded(causal)).toEqual([2, 3, 4]);
    // Last query only, aligned to the end: sees all three keys.
    expect(rounded(attention([0], [0, 0, 0], v, { queries: 1, keys: 3, heads: 1, headDim: 1, causal: true }))).toEqual([4]);
    // Four query heads over two key/value heads: heads 0,1 read kv head 0 and heads 2,3 read kv head 1.
    const gqa = attention([0, 0, 0, 0], [0, 0], [7, 9], { queries: 1, keys: 1, heads: 4, headDim: 1, kvHeads: 2 });
    expect(Array.from(gqa)).toEqual([7, 7, 9, 9]);
  });

  it('patchEmbed takes row-major patches of a CHW image', () => {
    // One channel 2x4, patch 2: two patches; out channel 0 sums the patch, channel 1 takes its top-left, plus bias.
    const image = [1, 2, 3, 4, 5, 6, 7, 8];
    const weight = [1, 1, 1, 1, 1, 0, 0, 0];
    expect(Array.from(patchEmbed(image, weight, [0, 100], 1, 2, 4, 2, 2))).toEqual([14, 101, 22, 103]);
    expect(Array.from(patchEmbed(image, weight, undefined, 1, 2, 4, 2, 2))).toEqual([14, 1, 22, 3]);
  });
});

describe('maxAbsDiff', () => {
  it('is the largest elementwise |a - b|; Infinity for different lengths or a NaN unless asked to propagate', () => {
    expect(maxAbsDiff([1, 2, 3], [1, 2.5, 1])).toBe(2);
    expect(maxAbsDiff([], [])).toBe(0);
    expect(maxAbsDiff([1], [1, 2])).toBe(Infinity);
    expect(maxAbsDiff([NaN, 0], [0, 5])).toBe(Infinity);
    expect(maxAbsDiff([0, NaN], [5, 0], { nan: 'propagate' })).toBeNaN();
    expect(maxAbsDiff(new Float32Array([0.5]), Float64Array.from([0.25]))).toBe(0.25);
  });
});
