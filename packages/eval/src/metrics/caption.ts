// BLEU-1..4, ROUGE-L and CIDEr-D as pycocoevalcap computes them, on captions already in COCO
// token form (see `tokenizeCaption`). Each follows the reference scorer step by step, including
// its smoothing constants and tie-breaks, so scores match it to floating-point rounding.

import { InvalidArgumentError } from '@vlit/core';
import { tokenizeCaption } from './ptb-tokenize.js';

/** Python's `str.split()`: whitespace runs, no empty pieces. */
function words(s: string): string[] {
  return s.split(/\s+/).filter((w) => w.length > 0);
}

/** n-gram counts for n = 1..maxN, keyed by the words joined with a space. */
export function ngramCounts(tokens: readonly string[], maxN = 4): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 1; k <= maxN; k++) {
    for (let i = 0; i + k <= tokens.length; i++) {
      const g = tokens.slice(i, i + k).join(' ');
      counts.set(g, (counts.get(g) ?? 0) + 1);
    }
  }
  return counts;
}

function ngramOrder(key: string): number {
  let n = 1;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 32) n++;
  return n;
}

/** One image: a candidate caption and its references, both in COCO token form. */
export interface CaptionPair {
  candidate: string;
  references: readonly string[];
}

/** Corpus BLEU as pycocoevalcap reports it. */
export interface BleuResult {
  /** BLEU-1..4. */
  bleu: [number, number, number, number];
  /** Total candidate length and total effective ("closest") reference length. */
  testLength: number;
  refLength: number;
  /** Per-order clipped matches and candidate n-gram counts, summed over images. */
  correct: number[];
  guess: number[];
}

/**
 * Corpus-level BLEU with pycocoevalcap's choices: clipped counts against the per-n-gram maximum over
 * the references, the "closest" reference length per image (ties go to the shorter), one brevity
 * penalty over the totals, and its constants (tiny 1e-15 added to matches, small 1e-9 to counts).
 */
export function bleuCoco(pairs: readonly CaptionPair[], maxN = 4): BleuResult {
  const tiny = 1e-15;
  const small = 1e-9;
  const correct = new Array<number>(maxN).fill(0);
  const guess = new Array<number>(maxN).fill(0);
  let testLength = 0;
  let refLength = 0;
  for (const { candidate, references } of pairs) {
    if (references.length === 0) throw new InvalidArgumentError('BLEU needs at least one reference per image');
    const maxCounts = new Map<string, number>();
    const refLens: number[] = [];
    for (const ref of references) {
      const rw = words(ref);
      refLens.push(rw.length);
      for (const [g, c] of ngramCounts(rw, maxN)) if (c > (maxCounts.get(g) ?? 0)) maxCounts.set(g, c);
    }
    const cw = words(candidate);
    const testlen = cw.length;
    // min over (|l - testlen|, l): the closest length, the shorter one on a tie.
    let best = refLens[0];
    for (const l of refLens) {
      const d = Math.abs(l - testlen);
      const bd = Math.abs(best - testlen);
      if (d < bd || (d === bd && l < best)) best = l;
    }
    testLength += testlen;
    refLength += best;
    for (let k = 1; k <= maxN; k++) guess[k - 1] += Math.max(0, testlen - k + 1);
    for (const [g, c] of ngramCounts(cw, maxN)) correct[ngramOrder(g) - 1] += Math.min(maxCounts.get(g) ?? 0, c);
  }
  const bleu: number[] = [];
  const ratio = (testLength + tiny) / (refLength + small);
  for (let nn = 1; nn <= maxN; nn++) {
    let b = 1;
    for (let k = 0; k < nn; k++) b *= (correct[k] + tiny) / (guess[k] + small);
    b = b ** (1 / nn);
    if (ratio < 1) b *= Math.exp(1 - 1 / ratio);
    bleu.push(b);
  }
  return { bleu: bleu as BleuResult['bleu'], testLength, refLength, correct, guess };
}

/** Length of the longest common subsequence of two token lists. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  let prev = new Array<number>(short.length + 1).fill(0);
  let cur = new Array<number>(short.length + 1).fill(0);
  for (let i = 1; i <= long.length; i++) {
    for (let j = 1; j <= short.length; j++) {
      cur[j] = long[i - 1] === short[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[short.length];
}

/**
 * ROUGE-L of one candidate as pycocoevalcap computes it: LCS precision and recall against each
 * reference, the maximum of each taken separately, F with beta = 1.2. Tokens come from splitting on
 * single spaces (so an empty candidate is one empty token, as there).
 */
export function rougeLCoco(candidate: string, references: readonly string[], beta = 1.2): number {
  if (references.length === 0) throw new InvalidArgumentError('ROUGE-L needs at least one reference');
  const c = candidate.split(' ');
  let precMax = 0;
  let recMax = 0;
  for (const ref of references) {
    const r = ref.split(' ');
    const lcs = lcsLength(r, c);
    precMax = Math.max(precMax, lcs / c.length);
    recMax = Math.max(recMax, lcs / r.length);
  }
  if (precMax === 0 || recMax === 0) return 0;
  return ((1 + beta ** 2) * precMax * recMax) / (recMax + beta ** 2 * precMax);
}

interface TfIdf {
  vec: Array<Map<string, number>>;
  norm: number[];
  length: number;
}

/** CIDEr-D per image and its mean. */
export interface CiderResult {
  score: number;
  perImage: number[];
}

/**
 * CIDEr-D as pycocoevalcap's CiderScorer: n = 1..4, tf-idf weights with document frequencies counted
 * over the references of the images being scored and log(#images) as the reference length, candidate
 * weights clipped by the reference weights, the Gaussian length penalty with sigma 6 (lengths are
 * counted as that scorer does, by bigrams), averaged over n and references, times 10.
 */
export function ciderDCoco(pairs: readonly CaptionPair[], options: { n?: number; sigma?: number } = {}): CiderResult {
  const n = options.n ?? 4;
  const sigma = options.sigma ?? 6;
  const crefs = pairs.map((p) => p.references.map((r) => ngramCounts(words(r), n)));
  const ctest = pairs.map((p) => ngramCounts(words(p.candidate), n));
  const df = new Map<string, number>();
  for (const refs of crefs) {
    const seen = new Set<string>();
    for (const ref of refs) for (const g of ref.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const refLen = Math.log(pairs.length);
  const toVec = (counts: Map<string, number>): TfIdf => {
    const vec = Array.from({ length: n }, () => new Map<string, number>());
    const norm = new Array<number>(n).fill(0);
    let length = 0;
    for (const [g, tf] of counts) {
      const d = Math.log(Math.max(1, df.get(g) ?? 0));
      const k = ngramOrder(g) - 1;
      const v = tf * (refLen - d);
      vec[k].set(g, v);
      norm[k] += v * v;
      // pycocoevalcap counts length at index n == 1, i.e. bigrams.
      if (k === 1) length += tf;
    }
    return { vec, norm: norm.map(Math.sqrt), length };
  };
  const perImage: number[] = [];
  for (let i = 0; i < pairs.length; i++) {
    const hyp = toVec(ctest[i]);
    const score = new Array<number>(n).fill(0);
    for (const refCounts of crefs[i]) {
      const ref = toVec(refCounts);
      const delta = hyp.length - ref.length;
      for (let k = 0; k < n; k++) {
        let val = 0;
        for (const [g, vh] of hyp.vec[k]) {
          const vr = ref.vec[k].get(g) ?? 0;
          val += Math.min(vh, vr) * vr;
        }
        if (hyp.norm[k] !== 0 && ref.norm[k] !== 0) val /= hyp.norm[k] * ref.norm[k];
        val *= Math.exp(-(delta * delta) / (2 * sigma * sigma));
        score[k] += val;
      }
    }
    const mean = score.reduce((a, b) => a + b, 0) / n;
    perImage.push((mean / crefs[i].length) * 10);
  }
  return { score: perImage.length ? perImage.reduce((a, b) => a + b, 0) / perImage.length : 0, perImage };
}

/** One captioned image: raw (untokenised) candidate and references. */
export interface CaptionExample {
  id: string;
  candidate: string;
  references: readonly string[];
}

/** All COCO caption metrics for a set of images. */
export interface CaptionScores {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  rougeL: number;
  ciderD: number;
  perImage: Array<{ id: string; rougeL: number; ciderD: number }>;
  count: number;
}

/**
 * Score raw captions as pycocoevalcap's COCOEvalCap does: tokenise candidates and references with
 * the PTB rules (pass `tokenize: false` if they are in COCO token form already), then BLEU-1..4
 * (corpus), ROUGE-L (mean) and CIDEr-D (mean).
 */
export function scoreCaptions(examples: readonly CaptionExample[], options: { tokenize?: boolean } = {}): CaptionScores {
  if (examples.length === 0) throw new InvalidArgumentError('no captions to score');
  const tok = options.tokenize === false ? (s: string) => s : tokenizeCaption;
  const pairs: CaptionPair[] = examples.map((e) => {
    if (e.references.length === 0) throw new InvalidArgumentError('an image has no reference captions', { details: { record: e.id, field: 'references' } });
    return { candidate: tok(e.candidate), references: e.references.map(tok) };
  });
  const bleu = bleuCoco(pairs);
  const rouge = pairs.map((p) => rougeLCoco(p.candidate, p.references));
  const cider = ciderDCoco(pairs);
  return {
    bleu1: bleu.bleu[0],
    bleu2: bleu.bleu[1],
    bleu3: bleu.bleu[2],
    bleu4: bleu.bleu[3],
    rougeL: rouge.reduce((a, b) => a + b, 0) / rouge.length,
    ciderD: cider.score,
    perImage: examples.map((e, i) => ({ id: e.id, rougeL: rouge[i], ciderD: cider.perImage[i] })),
    count: examples.length,
  };
}
