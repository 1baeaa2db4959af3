// BLEU-1..4, ROUGE-L and CIDEr-D as pycocoevalcap computes them, on captions already in COCO
// token form (see `tokenizeCaption`). Each follows the reference scorer step by step, including
// its smoothing constants and tie-breaks, so scores match it to floating-point rounding.

import { InvalidArgumentError } from '@vlit/core';
import { tokenizeCaption } from './ptb-tokenize.js';

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

/** CIDEr-D per image and its mean. */
export interface CiderResult {
  score: number;
  perImage: number[];
}

/**
 * A set of images' captions with every word and n-gram interned to an integer id, so the metrics
 * count with typed arrays instead of string-keyed maps. Captions are laid out image by image: the
 * candidate, then its references.
 */
interface Corpus {
  maxN: number;
  /** First caption of each image (its candidate); one extra entry closes the last image. */
  imageStart: Int32Array;
  /** Word ids of each caption as `str.split()` splits it. */
  words: Int32Array[];
  /** Distinct n-gram ids of every caption in first-appearance order, orders 1..maxN one after another; flat. */
  grams: Int32Array;
  /** Count of each of those n-grams in its caption. */
  tf: Int32Array;
  /** Where each caption's n-grams start in `grams`; one extra entry closes the last caption. */
  gramStart: Int32Array;
  /** End (exclusive, absolute) in `grams` of each order, maxN per caption. */
  orderEnd: Int32Array;
  numGrams: number;
  /** Word → id. */
  vocab: Map<string, number>;
}

function internCorpus(pairs: readonly CaptionPair[], maxN: number, what: string): Corpus {
  const vocab = new Map<string, number>();
  const imageStart = new Int32Array(pairs.length + 1);
  const words: Int32Array[] = [];
  let totalWords = 0;
  const add = (text: string) => {
    const ws = wordsOf(text);
    const ids = new Int32Array(ws.length);
    for (let i = 0; i < ws.length; i++) {
      let id = vocab.get(ws[i]);
      if (id === undefined) {
        id = vocab.size;
        vocab.set(ws[i], id);
      }
      ids[i] = id;
    }
    totalWords += ids.length;
    words.push(ids);
  };
  pairs.forEach((p, i) => {
    if (p.references.length === 0) throw new InvalidArgumentError(`${what} needs at least one reference per image`);
    imageStart[i] = words.length;
    add(p.candidate);
    for (const r of p.references) add(r);
  });
  imageStart[pairs.length] = words.length;
  const V = vocab.size;
  // Unigram ids are word ids; a longer n-gram is keyed by (its prefix n-gram, its last word).
  const bound = V + Math.max(0, maxN - 1) * totalWords + 1;
  const lastSeen = new Int32Array(bound).fill(-1);
  const slot = new Int32Array(bound);
  // Open addressing over (prefix id, word id) pairs, each slot [prefix, word, id] in one array so a
  // probe touches one cache line; it grows as n-grams arrive (a Map keyed by numbers past 2^31, and
  // a table sized for the worst case, were both slower).
  // Distinct n-grams rarely exceed the word count; start there so the table seldom grows.
  let cap = 1 << 12;
  while (cap < 2 * totalWords && cap < 1 << 24) cap *= 2;
  let table = new Int32Array(cap * 3).fill(-1);
  let used = 0;
  const slotOf = (t: Int32Array, m: number, pp: number, ww: number): number => {
    let h = Math.imul(pp ^ Math.imul(ww + 1, 0x85ebca6b), 0x9e3779b1);
    h = (h ^ (h >>> 16)) & m;
    while (t[h * 3] !== -1 && (t[h * 3] !== pp || t[h * 3 + 1] !== ww)) h = (h + 1) & m;
    return h;
  };
  const grow = () => {
    const old = table;
    cap *= 2;
    table = new Int32Array(cap * 3).fill(-1);
    for (let q = 0; q < old.length; q += 3) {
      if (old[q] === -1) continue;
      const h = slotOf(table, cap - 1, old[q], old[q + 1]) * 3;
      table[h] = old[q];
      table[h + 1] = old[q + 1];
      table[h + 2] = old[q + 2];
    }
  };
  let numGrams = V;
  const orderEnd = new Int32Array(words.length * maxN);
  // One flat pair of arrays for all captions: no per-caption allocation for the collector to chase.
  const ids = new Int32Array(Math.max(1, totalWords * maxN));
  const counts = new Int32Array(Math.max(1, totalWords * maxN));
  const gramStart = new Int32Array(words.length + 1);
  let prefix = new Int32Array(64);
  let cnt = 0;
  for (let c = 0; c < words.length; c++) {
    const w = words[c];
    const len = w.length;
    if (prefix.length < len) prefix = new Int32Array(len * 2);
    gramStart[c] = cnt;
    for (let k = 1; k <= maxN; k++) {
      for (let i = 0; i + k <= len; i++) {
        let g: number;
        if (k === 1) g = w[i];
        else {
          const pp = prefix[i];
          const ww = w[i + k - 1];
          let h = slotOf(table, cap - 1, pp, ww) * 3;
          if (table[h] === -1) {
            if (2 * (used + 1) > cap) {
              grow();
              h = slotOf(table, cap - 1, pp, ww) * 3;
            }
            table[h] = pp;
            table[h + 1] = ww;
            table[h + 2] = numGrams++;
            used++;
          }
          g = table[h + 2];
        }
        prefix[i] = g;
        if (lastSeen[g] === c) counts[slot[g]]++;
        else {
          lastSeen[g] = c;
          slot[g] = cnt;
          ids[cnt] = g;
          counts[cnt++] = 1;
        }
      }
      orderEnd[c * maxN + k - 1] = cnt;
    }
  }
  gramStart[words.length] = cnt;
  return { maxN, imageStart, words, grams: ids.subarray(0, cnt), tf: counts.subarray(0, cnt), gramStart, orderEnd, numGrams, vocab };
}

/** Python's `str.split()`: whitespace runs, no empty pieces. */
function wordsOf(s: string): string[] {
  return s.split(/\s+/).filter((w) => w.length > 0);
}

function bleuInterned(corpus: Corpus, maxN: number): BleuResult {
  const tiny = 1e-15;
  const small = 1e-9;
  const correct = new Array<number>(maxN).fill(0);
  const guess = new Array<number>(maxN).fill(0);
  let testLength = 0;
  let refLength = 0;
  const { imageStart, grams, tf, gramStart, orderEnd, words } = corpus;
  const N = corpus.maxN;
  const maxc = new Int32Array(corpus.numGrams);
  const images = imageStart.length - 1;
  for (let im = 0; im < images; im++) {
    const cand = imageStart[im];
    const end = imageStart[im + 1];
    const testlen = words[cand].length;
    // min over (|l - testlen|, l): the closest length, the shorter one on a tie.
    let best = words[cand + 1].length;
    for (let r = cand + 1; r < end; r++) {
      const l = words[r].length;
      const d = Math.abs(l - testlen);
      const bd = Math.abs(best - testlen);
      if (d < bd || (d === bd && l < best)) best = l;
      const stop = orderEnd[r * N + maxN - 1];
      for (let j = gramStart[r]; j < stop; j++) if (tf[j] > maxc[grams[j]]) maxc[grams[j]] = tf[j];
    }
    testLength += testlen;
    refLength += best;
    for (let k = 1; k <= maxN; k++) guess[k - 1] += Math.max(0, testlen - k + 1);
    let j = gramStart[cand];
    for (let k = 0; k < maxN; k++) {
      const stop = orderEnd[cand * N + k];
      let sum = 0;
      for (; j < stop; j++) sum += Math.min(maxc[grams[j]], tf[j]);
      correct[k] += sum;
    }
    for (let r = cand + 1; r < end; r++) {
      for (let q = gramStart[r]; q < gramStart[r + 1]; q++) maxc[grams[q]] = 0;
    }
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

/**
 * Corpus-level BLEU with pycocoevalcap's choices: clipped counts against the per-n-gram maximum over
 * the references, the "closest" reference length per image (ties go to the shorter), one brevity
 * penalty over the totals, and its constants (tiny 1e-15 added to matches, small 1e-9 to counts).
 */
export function bleuCoco(pairs: readonly CaptionPair[], maxN = 4): BleuResult {
  return bleuInterned(internCorpus(pairs, maxN, 'BLEU'), maxN);
}

let lcsRows = new Int32Array(0);

/** LCS length over id arrays, with two reused rows. */
function lcsIds(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  const m = short.length + 1;
  if (lcsRows.length < 2 * m) lcsRows = new Int32Array(2 * m);
  let prev = 0;
  let cur = m;
  lcsRows.fill(0, 0, 2 * m);
  for (let i = 1; i <= long.length; i++) {
    const li = long[i - 1];
    for (let j = 1; j < m; j++) {
      const up = lcsRows[prev + j];
      const left = lcsRows[cur + j - 1];
      lcsRows[cur + j] = li === short[j - 1] ? lcsRows[prev + j - 1] + 1 : up > left ? up : left;
    }
    const t = prev;
    prev = cur;
    cur = t;
  }
  return lcsRows[prev + m - 1];
}

/** Length of the longest common subsequence of two token lists. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const ids = new Map<string, number>();
  const toIds = (xs: readonly string[]) =>
    Int32Array.from(xs, (x) => {
      let id = ids.get(x);
      if (id === undefined) ids.set(x, (id = ids.size));
      return id;
    });
  return lcsIds(toIds(a), toIds(b));
}

/** ROUGE-L's F from already-split id arrays. */
function rougeIds(c: Int32Array, refs: readonly Int32Array[], beta: number): number {
  let precMax = 0;
  let recMax = 0;
  for (const r of refs) {
    const lcs = lcsIds(r, c);
    precMax = Math.max(precMax, lcs / c.length);
    recMax = Math.max(recMax, lcs / r.length);
  }
  if (precMax === 0 || recMax === 0) return 0;
  return ((1 + beta ** 2) * precMax * recMax) / (recMax + beta ** 2 * precMax);
}

/**
 * ROUGE-L of one candidate as pycocoevalcap computes it: LCS precision and recall against each
 * reference, the maximum of each taken separately, F with beta = 1.2. Tokens come from splitting on
 * single spaces (so an empty candidate is one empty token, as there).
 */
export function rougeLCoco(candidate: string, references: readonly string[], beta = 1.2): number {
  if (references.length === 0) throw new InvalidArgumentError('ROUGE-L needs at least one reference');
  const ids = new Map<string, number>();
  const split = (s: string) =>
    Int32Array.from(s.split(' '), (x) => {
      let id = ids.get(x);
      if (id === undefined) ids.set(x, (id = ids.size));
      return id;
    });
  return rougeIds(split(candidate), references.map(split), beta);
}

/** ROUGE-L for every image of a corpus, reusing its word ids where single-space splitting gives the same words. */
function rougeCorpus(pairs: readonly CaptionPair[], corpus: Corpus | null, beta = 1.2): number[] {
  const vocab = corpus?.vocab ?? new Map<string, number>();
  const extra = new Map<string, number>();
  // Only a space separates words and no piece is empty: then split(' ') equals str.split().
  const plain = (s: string) => s.length > 0 && !/[^\S ]|  |^ | $/.test(s);
  const split = (s: string) =>
    Int32Array.from(s.split(' '), (x) => {
      let id = vocab.get(x) ?? extra.get(x);
      if (id === undefined) extra.set(x, (id = -1 - extra.size));
      return id;
    });
  return pairs.map((p, i) => {
    if (p.references.length === 0) throw new InvalidArgumentError('ROUGE-L needs at least one reference');
    const base = corpus ? corpus.imageStart[i] : -1;
    // Words the corpus lacks (the empty piece, odd whitespace) get ids below 0, so none collide.
    const ids = (s: string, k: number) => (corpus && plain(s) ? corpus.words[base + k] : split(s));
    return rougeIds(
      ids(p.candidate, 0),
      p.references.map((r, k) => ids(r, k + 1)),
      beta,
    );
  });
}

function ciderInterned(corpus: Corpus, n: number, sigma: number): CiderResult {
  const { imageStart, grams, tf, gramStart, orderEnd, numGrams } = corpus;
  const N = corpus.maxN;
  const images = imageStart.length - 1;
  // Document frequency: the number of images whose references contain the n-gram, counted once.
  const df = new Int32Array(numGrams);
  const stamp = new Int32Array(numGrams).fill(-1);
  for (let im = 0; im < images; im++) {
    for (let r = imageStart[im] + 1; r < imageStart[im + 1]; r++) {
      const stop = orderEnd[r * N + n - 1];
      for (let j = gramStart[r]; j < stop; j++) {
        const g = grams[j];
        if (stamp[g] !== im) {
          stamp[g] = im;
          df[g]++;
        }
      }
    }
  }
  const refLen = Math.log(images);
  const logDf = new Float64Array(numGrams);
  for (let g = 0; g < numGrams; g++) logDf[g] = Math.log(Math.max(1, df[g]));
  const vec = (c: number, out: Float64Array, norm: Float64Array): number => {
    const s0 = gramStart[c];
    let length = 0;
    let j = s0;
    for (let k = 0; k < n; k++) {
      const stop = orderEnd[c * N + k];
      let sq = 0;
      for (; j < stop; j++) {
        const v = tf[j] * (refLen - logDf[grams[j]]);
        out[j - s0] = v;
        sq += v * v;
        // pycocoevalcap counts length at index n == 1, i.e. bigrams.
        if (k === 1) length += tf[j];
      }
      norm[k] = Math.sqrt(sq);
    }
    return length;
  };
  let hv = new Float64Array(64);
  let rv = new Float64Array(64);
  const hn = new Float64Array(n);
  const rn = new Float64Array(n);
  const score = new Float64Array(n);
  const twoSigma2 = 2 * sigma * sigma;
  const perImage: number[] = [];
  for (let im = 0; im < images; im++) {
    const cand = imageStart[im];
    const end = imageStart[im + 1];
    const hs = gramStart[cand];
    if (hv.length < gramStart[cand + 1] - hs) hv = new Float64Array((gramStart[cand + 1] - hs) * 2);
    const hl = vec(cand, hv, hn);
    score.fill(0);
    for (let r = cand + 1; r < end; r++) {
      const rs = gramStart[r];
      if (rv.length < gramStart[r + 1] - rs) rv = new Float64Array((gramStart[r + 1] - rs) * 2);
      const rl = vec(r, rv, rn);
      const delta = hl - rl;
      const penalty = Math.exp(-(delta * delta) / twoSigma2);
      let j = hs;
      let rStart = rs;
      for (let k = 0; k < n; k++) {
        const stop = orderEnd[cand * N + k];
        const rStop = orderEnd[r * N + k];
        let val = 0;
        // Captions are short, so a scan of the reference's n-grams of this order beats a hash lookup.
        for (; j < stop; j++) {
          const g = grams[j];
          let vr = 0;
          for (let q = rStart; q < rStop; q++) {
            if (grams[q] === g) {
              vr = rv[q - rs];
              break;
            }
          }
          val += Math.min(hv[j - hs], vr) * vr;
        }
        rStart = rStop;
        if (hn[k] !== 0 && rn[k] !== 0) val /= hn[k] * rn[k];
        val *= penalty;
        score[k] += val;
      }
    }
    let sum = 0;
    for (let k = 0; k < n; k++) sum += score[k];
    perImage.push((sum / n / (end - cand - 1)) * 10);
  }
  let total = 0;
  for (const v of perImage) total += v;
  return { score: perImage.length ? total / perImage.length : 0, perImage };
}

/**
 * CIDEr-D as pycocoevalcap's CiderScorer: n = 1..4, tf-idf weights with document frequencies counted
 * over the references of the images being scored and log(#images) as the reference length, candidate
 * weights clipped by the reference weights, the Gaussian length penalty with sigma 6 (lengths are
 * counted as that scorer does, by bigrams), averaged over n and references, times 10.
 */
export function ciderDCoco(pairs: readonly CaptionPair[], options: { n?: number; sigma?: number } = {}): CiderResult {
  const n = options.n ?? 4;
  return ciderInterned(internCorpus(pairs, n, 'CIDEr-D'), n, options.sigma ?? 6);
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
  // One interning serves all three metrics.
  const corpus = internCorpus(pairs, 4, 'BLEU');
  const bleu = bleuInterned(corpus, 4);
  const rouge = rougeCorpus(pairs, corpus);
  const cider = ciderInterned(corpus, 4, 6);
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
