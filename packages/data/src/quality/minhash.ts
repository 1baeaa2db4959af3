/**
 * MinHash signatures over word shingles and banded locality-sensitive hashing (LSH), for
 * near-duplicate text detection in one pass (Broder 1997; Leskovec, Rajaraman & Ullman, "Mining of
 * Massive Datasets", ch. 3).
 *
 * Each shingle is hashed to 32 bits with FNV-1a over its UTF-8 bytes, reduced modulo the Mersenne
 * prime p = 2^31 - 1; permutation i is h_i(x) = (a_i * x + b_i) mod p with a_i in [1, p), b_i in
 * [0, p) drawn from the seeded RNG. The signature is the minimum of h_i over the shingle set.
 * Pr[sig_A[i] = sig_B[i]] equals the Jaccard similarity of A and B.
 */
import { InvalidArgumentError, createRng, fnv1a32 } from '@vlit/core';
import { words } from './text.js';

/** The Mersenne prime 2^31 - 1 that MinHash permutations work modulo. */
export const MINHASH_PRIME = 2147483647;

/** (a * x + b) mod p for a, b < p and x < 2^32, exact in doubles (x split into 16-bit halves). */
export function mulAddMod(a: number, x: number, b: number, p: number = MINHASH_PRIME): number {
  const hi = Math.floor(x / 65536);
  const lo = x % 65536;
  let r = ((a * hi) % p) * 65536; // < 2^47
  r = (r % p) + a * lo; // < 2^31 + 2^47
  return (r + b) % p;
}

/** Word k-shingles of a text (the text's words when it has fewer than k). */
export function wordShingles(text: string, k = 3): string[] {
  const ws = words(text);
  if (ws.length <= k) return ws.length ? [ws.join(' ')] : [];
  const out = new Set<string>();
  for (let i = 0; i + k <= ws.length; i++) out.add(ws.slice(i, i + k).join(' '));
  return [...out];
}

/** Exact Jaccard similarity of two sets (1 for two empty sets). */
export function jaccard<T>(a: Iterable<T>, b: Iterable<T>): number {
  const sa = new Set(a);
  const sb = new Set(b);
  if (sa.size === 0 && sb.size === 0) return 1;
  let inter = 0;
  for (const x of sa) if (sb.has(x)) inter++;
  return inter / (sa.size + sb.size - inter);
}

/** MinHash permutation coefficients. */
export interface MinHashParams {
  readonly a: readonly number[];
  readonly b: readonly number[];
}

/** Draw `numPermutations` permutations from a seed. */
export function createMinHashParams(numPermutations: number, seed: number | string = 'vlit-minhash'): MinHashParams {
  if (!Number.isInteger(numPermutations) || numPermutations < 1) {
    throw new InvalidArgumentError(`numPermutations must be a positive integer, got ${numPermutations}`, { details: { field: 'numPermutations' } });
  }
  const rng = createRng(seed);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < numPermutations; i++) {
    a.push(rng.int(1, MINHASH_PRIME));
    b.push(rng.int(0, MINHASH_PRIME));
  }
  return { a, b };
}

/**
 * MinHash signature of a set of already-hashed elements (unsigned 32-bit values); an empty set
 * gives all entries equal to p (never produced by a real element).
 */
export function minhashOfHashes(hashes: Iterable<number>, params: MinHashParams): Uint32Array {
  const n = params.a.length;
  const sig = new Uint32Array(n).fill(MINHASH_PRIME);
  for (const h of hashes) {
    const x = (h >>> 0) % MINHASH_PRIME;
    for (let i = 0; i < n; i++) {
      const v = mulAddMod(params.a[i], x, params.b[i]);
      if (v < sig[i]) sig[i] = v;
    }
  }
  return sig;
}

/** MinHash signature of a set of strings (shingles). */
export function minhashSignature(shingles: Iterable<string>, params: MinHashParams): Uint32Array {
  const hashes: number[] = [];
  for (const s of shingles) hashes.push(fnv1a32(s));
  return minhashOfHashes(hashes, params);
}

/** Share of equal positions of two signatures: the MinHash estimate of Jaccard similarity. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array): number {
  if (a.length !== b.length) {
    throw new InvalidArgumentError(`signatures differ in length (${a.length} vs ${b.length})`, { details: { field: 'signature' } });
  }
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

/** Probability that banded LSH makes a pair of Jaccard similarity `s` a candidate: 1 - (1 - s^r)^b. */
export function lshCandidateProbability(s: number, bands: number, rows: number): number {
  return 1 - (1 - s ** rows) ** bands;
}

/** A banded LSH index over MinHash signatures: signatures sharing any whole band are candidates. */
export interface LshIndex<K> {
  readonly bands: number;
  readonly rows: number;
  /** Keys whose signatures share at least one band with `signature`, in insertion order. */
  candidates(signature: Uint32Array): K[];
  /** Add a signature under a key. */
  add(key: K, signature: Uint32Array): void;
  readonly size: number;
}

/** Create an LSH index with `bands` bands of `rows` rows each (signature length bands * rows). */
export function createLshIndex<K>(bands: number, rows: number): LshIndex<K> {
  if (!Number.isInteger(bands) || !Number.isInteger(rows) || bands < 1 || rows < 1) {
    throw new InvalidArgumentError(`bands and rows must be positive integers (got ${bands}, ${rows})`, { details: { field: 'bands' } });
  }
  const tables: Map<string, number[]>[] = Array.from({ length: bands }, () => new Map());
  const keys: K[] = [];
  const bandKey = (sig: Uint32Array, band: number): string => {
    if (sig.length < bands * rows) {
      throw new InvalidArgumentError(`signature of length ${sig.length} is shorter than bands*rows = ${bands * rows}`, { details: { field: 'signature' } });
    }
    return Array.prototype.join.call(sig.subarray(band * rows, band * rows + rows), ',');
  };
  return {
    bands,
    rows,
    get size() {
      return keys.length;
    },
    candidates(signature) {
      const found = new Set<number>();
      for (let band = 0; band < bands; band++) {
        for (const k of tables[band].get(bandKey(signature, band)) ?? []) found.add(k);
      }
      return [...found].sort((x, y) => x - y).map((i) => keys[i]);
    },
    add(key, signature) {
      const idx = keys.length;
      keys.push(key);
      for (let band = 0; band < bands; band++) {
        const k = bandKey(signature, band);
        const list = tables[band].get(k);
        if (list) list.push(idx);
        else tables[band].set(k, [idx]);
      }
    },
  };
}
