/**
 * A lexical TextEmbedder: TF-IDF over word n-grams, hashed into a fixed number of buckets and
 * L2-normalised. It fills the core `TextEmbedder` contract where no neural embedder is at hand, so
 * similarity metrics always have an embedder, and reports say which one produced each number.
 *
 * Weight of n-gram g in text t: (1 + ln tf(g, t)) * idf(g), idf(g) = ln((1 + N) / (1 + df(g))) + 1
 * (the smoothed form scikit-learn uses), N and df from the texts passed to `fit`; before fitting,
 * idf = 1. Bucket of g = FNV-1a(g) mod dim; colliding n-grams add.
 */
import { InvalidArgumentError, type TextEmbedder } from '@vlit/core';
import { fnv1a32 } from '@vlit/core';
import { words } from './text.js';

/** Options of createLexicalEmbedder. */
export interface LexicalEmbedderOptions {
  /** Number of hash buckets (default 4096). */
  dim?: number;
  /** Smallest and largest n of word n-grams (default [1, 2]). */
  ngramRange?: readonly [number, number];
}

/** The lexical embedder; `fit` returns a copy with IDF statistics from a corpus. */
export interface LexicalEmbedder extends TextEmbedder {
  /** Learn document frequencies from `texts` (a new embedder; this one is unchanged). */
  fit(texts: readonly string[]): LexicalEmbedder;
  /** Texts the IDF was fitted on (0 before fitting). */
  readonly fittedDocuments: number;
  /** Embed one text synchronously. */
  embedOne(text: string): Float32Array;
}

/** Word n-grams of a text. */
export function wordNgrams(text: string, range: readonly [number, number] = [1, 2]): string[] {
  const ws = words(text);
  const out: string[] = [];
  for (let n = range[0]; n <= range[1]; n++) for (let i = 0; i + n <= ws.length; i++) out.push(ws.slice(i, i + n).join(' '));
  return out;
}

/** Create the built-in lexical TF-IDF embedder. */
export function createLexicalEmbedder(options: LexicalEmbedderOptions = {}): LexicalEmbedder {
  const dim = options.dim ?? 4096;
  const range = options.ngramRange ?? [1, 2];
  if (!Number.isInteger(dim) || dim < 1) throw new InvalidArgumentError(`dim must be a positive integer, got ${dim}`, { details: { field: 'dim' } });
  if (!(range[0] >= 1 && range[1] >= range[0])) throw new InvalidArgumentError(`bad n-gram range [${range.join(', ')}]`, { details: { field: 'ngramRange' } });
  return build(dim, range, new Map(), 0);
}

function build(dim: number, range: readonly [number, number], df: Map<string, number>, n: number): LexicalEmbedder {
  const idf = (g: string): number => (n === 0 ? 1 : Math.log((1 + n) / (1 + (df.get(g) ?? 0))) + 1);
  const embedOne = (text: string): Float32Array => {
    const tf = new Map<string, number>();
    for (const g of wordNgrams(text, range)) tf.set(g, (tf.get(g) ?? 0) + 1);
    const v = new Float64Array(dim);
    for (const [g, c] of tf) v[fnv1a32(g) % dim] += (1 + Math.log(c)) * idf(g);
    let norm = 0;
    for (const x of v) norm += x * x;
    norm = Math.sqrt(norm);
    const out = new Float32Array(dim);
    if (norm > 0) for (let i = 0; i < dim; i++) out[i] = v[i] / norm;
    return out;
  };
  return {
    id: `vlit-lexical-tfidf(word${range[0]}-${range[1]}gram,dim=${dim}${n ? `,idf=${n}docs` : ',no-idf'})`,
    dim,
    fittedDocuments: n,
    embedOne,
    embed: async (texts) => texts.map(embedOne),
    fit(texts) {
      const counts = new Map<string, number>();
      for (const t of texts) for (const g of new Set(wordNgrams(t, range))) counts.set(g, (counts.get(g) ?? 0) + 1);
      return build(dim, range, counts, texts.length);
    },
  };
}

/** Cosine similarity of two vectors (0 when either is all zeros). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}
