import { describe, expect, it } from 'vitest';
import { fnv1a32 } from '@vlit/core';
import {
  MINHASH_PRIME,
  createLshIndex,
  createMinHashParams,
  estimateJaccard,
  jaccard,
  lshCandidateProbability,
  minhashOfHashes,
  minhashSignature,
  mulAddMod,
  wordShingles,
} from './minhash.js';

describe('MinHash', () => {
  it('FNV-1a matches the published test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('mulAddMod is exact where doubles would overflow (BigInt reference)', () => {
    const cases: Array<[number, number, number]> = [
      [MINHASH_PRIME - 1, 0xffffffff, MINHASH_PRIME - 1],
      [2 ** 30 + 7, 2 ** 32 - 5, 12345],
      [1, 2 ** 31, 0],
    ];
    for (const [a, x, b] of cases) {
      const ref = Number((BigInt(a) * BigInt(x) + BigInt(b)) % BigInt(MINHASH_PRIME));
      expect(mulAddMod(a, x, b)).toBe(ref);
    }
  });

  it('signatures match hand-worked permutations', () => {
    // h1(x) = 2x + 1 over {1, 2, 3} -> {3, 5, 7}: min 3; h2(x) = 3x -> {3, 6, 9}: min 3.
    expect([...minhashOfHashes([1, 2, 3], { a: [2, 3], b: [1, 0] })]).toEqual([3, 3]);
    // h(x) = 7x + 4 over {5, 10} -> {39, 74}: min 39; over {10} -> 74.
    expect([...minhashOfHashes([5, 10], { a: [7], b: [4] })]).toEqual([39]);
    expect([...minhashOfHashes([10], { a: [7], b: [4] })]).toEqual([74]);
    // x = 2^31 reduces to 1 mod p; (p - 1) * 1 mod p = p - 1.
    expect([...minhashOfHashes([2 ** 31], { a: [MINHASH_PRIME - 1], b: [0] })]).toEqual([MINHASH_PRIME - 1]);
    // Sets {1,2} and {2,3} under h(x) = x (a=1, b=0): mins 1 and 2 differ; under h(x) = -x-ish (a = p-1): mins p-2 and p-3 differ.
    const p = { a: [1, MINHASH_PRIME - 1], b: [0, 0] };
    expect(estimateJaccard(minhashOfHashes([1, 2], p), minhashOfHashes([2, 3], p))).toBe(0);
    expect(estimateJaccard(minhashOfHashes([1, 2], p), minhashOfHashes([1, 2], p))).toBe(1);
  });

  it('shingles and exact Jaccard by hand', () => {
    expect(wordShingles('The cat sat on the mat', 3)).toEqual(['the cat sat', 'cat sat on', 'sat on the', 'on the mat']);
    expect(wordShingles('Two words', 3)).toEqual(['two words']);
    // {a,b,c} vs {b,c,d}: 2 shared of 4 -> 0.5
    expect(jaccard(['a', 'b', 'c'], ['b', 'c', 'd'])).toBe(0.5);
  });

  it('the signature estimate tracks the true Jaccard similarity', () => {
    const params = createMinHashParams(512, 1);
    const A = Array.from({ length: 150 }, (_, i) => `s${i}`);
    const B = Array.from({ length: 150 }, (_, i) => `s${i + 50}`); // 100 shared of 200 -> 0.5
    const est = estimateJaccard(minhashSignature(A, params), minhashSignature(B, params));
    // 512 permutations: standard error sqrt(0.25 / 512) = 0.022
    expect(Math.abs(est - 0.5)).toBeLessThan(0.09);
  });

  it('LSH banding: hand-worked candidate probability and retrieval', () => {
    expect(lshCandidateProbability(0.8, 32, 4)).toBeCloseTo(1 - (1 - 0.4096) ** 32, 12);
    const index = createLshIndex<string>(2, 2);
    index.add('x', new Uint32Array([1, 2, 3, 4]));
    index.add('y', new Uint32Array([9, 9, 9, 9]));
    expect(index.candidates(new Uint32Array([1, 2, 7, 7]))).toEqual(['x']); // shares band 0
    expect(index.candidates(new Uint32Array([1, 7, 3, 7]))).toEqual([]); // no whole band shared
    expect(index.candidates(new Uint32Array([9, 9, 3, 4]))).toEqual(['x', 'y']);
  });
});
