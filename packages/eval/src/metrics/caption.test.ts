// Caption metrics against hand-worked examples (n-gram counts written out below) and, for the
// full 24-image x 5-reference fixture, against an independent Python implementation written from
// the metric definitions: fixtures/coco_caption_reference.py. Its output is committed as
// fixtures/captions-expected.json; the command that made it is inside that file:
//   /usr/bin/python3 packages/eval/fixtures/coco_caption_reference.py packages/eval/fixtures/captions.json > packages/eval/fixtures/captions-expected.json
// When /usr/bin/python3 exists, the script is also run here and must reproduce the committed file.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bleuCoco, ciderDCoco, lcsLength, rougeLCoco, scoreCaptions } from './caption.js';
import { ptbTokenize, tokenizeCaption } from './ptb-tokenize.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures');
const tiny = 1e-15;
const small = 1e-9;

describe('PTB-style tokenisation (the COCO caption form)', () => {
  it.each([
    ['A man riding a wave on top of a surfboard.', 'a man riding a wave on top of a surfboard'],
    ["It's a dog's toy, isn't it?", "it 's a dog 's toy is n't it"],
    ['Two dogs (a puppy) play.', 'two dogs -lrb- a puppy -rrb- play'],
    ['"Hello," she said -- then left...', 'hello she said then left'],
    ['About 1,000 people at 10:30 a.m.', 'about 1,000 people at 10:30 a.m.'],
    ["The kids' toys cannot move; they're stuck!", "the kids toys can not move they 're stuck"],
    ['A black-and-white cat - sleeping', 'a black-and-white cat sleeping'],
    ['Mr. Smith is 3.5 feet tall.', 'mr. smith is 3.5 feet tall'],
    ['It’s “curly” quoting…', "it 's curly quoting"],
  ])('%s', (raw, coco) => {
    expect(tokenizeCaption(raw)).toBe(coco);
  });

  it('keeps punctuation tokens before the COCO filter', () => {
    expect(ptbTokenize('"Wow," I said.')).toEqual(['``', 'wow', ',', "''", 'i', 'said', '.']);
  });
});

describe('BLEU as pycocoevalcap computes it (hand-worked)', () => {
  // Image 1. candidate: the cat sat on the mat  (6 words)
  //   R1: the cat is on the mat (6)   R2: there is a cat on the mat (7)   closest length: 6
  //   unigrams: the x2 (max ref count 2), cat 1, sat 0, on 1, mat 1 -> 5 of 6
  //   bigrams: the cat 1, cat sat 0, sat on 0, on the 1, the mat 1 -> 3 of 5
  //   trigrams: the cat sat 0, cat sat on 0, sat on the 0, on the mat 1 -> 1 of 4
  //   4-grams: the cat sat on, cat sat on the, sat on the mat -> 0 of 3
  // Image 2. candidate: a dog (2)  R1: a dog is running (4)  R2: the brown dog runs on grass (6)
  //   closest length 4; unigrams a 1, dog 1 -> 2 of 2; bigrams a dog 1 -> 1 of 1; no 3- or 4-grams
  // Corpus: correct [7,4,1,0], guess [8,6,4,3], c = 8, r = 10 -> brevity penalty exp(1 - 10/8)
  const image1 = { candidate: 'the cat sat on the mat', references: ['the cat is on the mat', 'there is a cat on the mat'] };
  const image2 = { candidate: 'a dog', references: ['a dog is running', 'the brown dog runs on grass'] };

  it('one image: clipped precisions 5/6, 3/5, 1/4, 0/3 and no penalty', () => {
    const r = bleuCoco([image1]);
    expect(r.correct).toEqual([5, 3, 1, 0]);
    expect(r.guess).toEqual([6, 5, 4, 3]);
    expect(r.bleu[0]).toBeCloseTo(5 / 6, 9);
    expect(r.bleu[1]).toBeCloseTo(Math.sqrt((5 / 6) * (3 / 5)), 9);
    expect(r.bleu[2]).toBeCloseTo(0.5, 9);
    // No 4-gram matches: coco's tiny constant keeps BLEU-4 just above zero instead of 0.
    const b4 = ((5 / 6) * (3 / 5) * (1 / 4) * (tiny / (3 + small))) ** 0.25;
    expect(r.bleu[3]).toBeCloseTo(b4, 12);
    expect(r.bleu[3]).toBeGreaterThan(0);
  });

  it('two images: corpus counts and one brevity penalty over the totals', () => {
    const r = bleuCoco([image1, image2]);
    expect(r.correct).toEqual([7, 4, 1, 0]);
    expect(r.guess).toEqual([8, 6, 4, 3]);
    expect([r.testLength, r.refLength]).toEqual([8, 10]);
    const bp = Math.exp(1 - 10 / 8);
    expect(r.bleu[0]).toBeCloseTo((7 / 8) * bp, 9);
    expect(r.bleu[1]).toBeCloseTo(Math.sqrt((7 / 8) * (4 / 6)) * bp, 9);
    expect(r.bleu[2]).toBeCloseTo(((7 / 8) * (4 / 6) * (1 / 4)) ** (1 / 3) * bp, 9);
  });

  it('closest reference length breaks ties towards the shorter reference', () => {
    // candidate of 4 words, references of 3 and 5 words: both 1 away -> 3, so c > r and no penalty;
    // with "shortest" or "average" semantics the answer would differ only in the tie.
    const r = bleuCoco([{ candidate: 'a b c d', references: ['a b c d e', 'a b c'] }]);
    expect(r.refLength).toBe(3);
    expect(r.bleu[0]).toBeCloseTo(1, 9);
  });
});

describe('ROUGE-L (beta 1.2, max P and max R over references)', () => {
  it('hand-worked', () => {
    // the cat sat on the mat vs the cat is on the mat: LCS "the cat on the mat" = 5 -> P 5/6, R 5/6
    // vs there is a cat on the mat: LCS "cat on the mat" = 4 -> P 4/6, R 4/7. max P = max R = 5/6 -> F = 5/6
    expect(lcsLength('the cat sat on the mat'.split(' '), 'the cat is on the mat'.split(' '))).toBe(5);
    expect(rougeLCoco('the cat sat on the mat', ['the cat is on the mat', 'there is a cat on the mat'])).toBeCloseTo(5 / 6, 12);
    // a dog vs a dog is running: LCS 2 -> P 1, R 2/4; vs the brown dog runs on grass: LCS 1 -> P 1/2, R 1/6
    // max P 1, max R 1/2: F = (1 + 1.44) * 1 * 0.5 / (0.5 + 1.44 * 1) = 1.22 / 1.94
    expect(rougeLCoco('a dog', ['a dog is running', 'the brown dog runs on grass'])).toBeCloseTo(1.22 / 1.94, 12);
  });
});

describe('CIDEr-D (hand-worked, two images)', () => {
  it('tf-idf over the references, clipping, bigram-count length penalty, x10', () => {
    // A: candidate "a cat", refs "a cat", "a black cat"; B: candidate "a dog", refs "a dog", "a dog runs".
    // N = 2 images, so idf = log 2 - log(df). df("a") = 2 -> weight 0; every other n-gram has df 1 -> log 2.
    // A vs "a cat": identical vectors -> cosine 1 for n=1 and n=2, nothing for n=3,4; lengths equal.
    // A vs "a black cat": n=1: hyp {cat: L}, ref {black: L, cat: L} -> L*L / (L * sqrt2 L) = 1/sqrt2;
    //   n=2: "a cat" absent from the ref -> 0; length (bigram count) 1 vs 2 -> penalty e = exp(-1/72).
    //   A = 10 * ((1 + e/sqrt2) + 1 + 0 + 0) / 4 / 2
    // B vs "a dog runs": n=1 as above; n=2: hyp {"a dog": L}, ref {"a dog": L, "dog runs": L} -> 1/sqrt2.
    //   B = 10 * ((1 + e/sqrt2) + (1 + e/sqrt2)) / 4 / 2
    const e = Math.exp(-1 / 72);
    const a = (10 * (2 + e / Math.SQRT2)) / 8;
    const b = (10 * (2 + 2 * (e / Math.SQRT2))) / 8;
    const r = ciderDCoco([
      { candidate: 'a cat', references: ['a cat', 'a black cat'] },
      { candidate: 'a dog', references: ['a dog', 'a dog runs'] },
    ]);
    expect(r.perImage[0]).toBeCloseTo(a, 12);
    expect(r.perImage[1]).toBeCloseTo(b, 12);
    expect(r.score).toBeCloseTo((a + b) / 2, 12);
  });

  it('clips a repeated candidate n-gram by the reference weight', () => {
    // The other image's reference is "y", so every n-gram of "a cat" has df 1 -> weight L = log 2.
    // "cat cat" vs ref "a cat": n=1 hyp {cat: 2L} (norm 2L), ref {a: L, cat: L} (norm sqrt2 L):
    //   min(2L, L) * L / (2L * sqrt2 L) = 1 / (2 sqrt2)  (unclipped it would be 2L*L/(...) = 1/sqrt2)
    const [r] = ciderDCoco([
      { candidate: 'cat cat', references: ['a cat'] },
      { candidate: 'x', references: ['y'] },
    ]).perImage;
    // n=2: "cat cat" not in ref -> 0; lengths: 1 bigram each -> no penalty. (1/(2 sqrt2) + 0 + 0 + 0) / 4 * 10
    expect(r).toBeCloseTo((1 / (2 * Math.SQRT2) / 4) * 10, 12);
  });
});

describe('the 24-image fixture against the independent Python implementation', () => {
  const data = JSON.parse(readFileSync(join(fixtures, 'captions.json'), 'utf8')) as { images: Array<{ id: string; candidate: string; references: string[] }> };
  const expected = JSON.parse(readFileSync(join(fixtures, 'captions-expected.json'), 'utf8'));

  it('has at least 20 images with 5 references each', () => {
    expect(data.images.length).toBeGreaterThanOrEqual(20);
    for (const im of data.images) expect(im.references).toHaveLength(5);
  });

  it('tokenises every caption exactly as the reference does', () => {
    for (const t of expected.tokenized) {
      const im = data.images.find((i) => i.id === t.id)!;
      expect(tokenizeCaption(im.candidate)).toBe(t.candidate);
      expect(im.references.map(tokenizeCaption)).toEqual(t.references);
    }
  });

  it('BLEU-1..4, ROUGE-L and CIDEr-D equal the reference to 1e-6 (per image too)', () => {
    const s = scoreCaptions(data.images);
    for (const k of ['bleu1', 'bleu2', 'bleu3', 'bleu4', 'rougeL', 'ciderD'] as const) expect(Math.abs(s[k] - expected[k]), k).toBeLessThan(1e-6);
    for (let i = 0; i < s.perImage.length; i++) {
      expect(Math.abs(s.perImage[i].rougeL - expected.perImage[i].rougeL)).toBeLessThan(1e-6);
      expect(Math.abs(s.perImage[i].ciderD - expected.perImage[i].ciderD)).toBeLessThan(1e-6);
    }
  });

  it('the committed expected values are what the Python script prints now', () => {
    const out = execFileSync('/usr/bin/python3', [join(fixtures, 'coco_caption_reference.py'), join(fixtures, 'captions.json')], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(expected);
  });

  it('the fixture is what its seeded generator writes', async () => {
    const { makeCaptionFixture } = (await import(join(fixtures, 'make-caption-fixture.mjs'))) as { makeCaptionFixture: () => unknown };
    expect(makeCaptionFixture()).toEqual(JSON.parse(readFileSync(join(fixtures, 'captions.json'), 'utf8')));
  });
});

describe('interned scoring equals the Python reference to 1e-12 on a larger seeded corpus', () => {
  it('600 images x 1-5 references with repeats, an empty candidate and odd whitespace: BLEU, ROUGE-L, CIDEr-D (corpus and per image)', () => {
    const vocab = 'a the dog cat man on in red two sitting park street with of is'.split(' ');
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const sentence = () => Array.from({ length: 1 + rand(14) }, () => vocab[rand(vocab.length)]).join(' ');
    const pairs = Array.from({ length: 600 }, () => ({ candidate: sentence(), references: Array.from({ length: 1 + rand(5) }, sentence) }));
    pairs[3].candidate = '';
    pairs[4].candidate = 'the  dog\tsat ';
    pairs[5].references = ['two dogs', ' the dog  runs', 'dog dog dog dog dog'];
    pairs[6].candidate = 'dog dog dog dog dog dog';
    const script = [
      'import json, sys',
      `sys.path.insert(0, ${JSON.stringify(fixtures)})`,
      'import coco_caption_reference as ref',
      'pairs = json.load(sys.stdin)',
      "cands = [p['candidate'] for p in pairs]",
      "refs = [p['references'] for p in pairs]",
      'b, tlen, rlen = ref.bleu(cands, refs)',
      'rouges = [ref.rouge_l(c, r) for c, r in zip(cands, refs)]',
      'cider, ciders = ref.cider_d(cands, refs)',
      "print(json.dumps({'bleu': b, 'tlen': tlen, 'rlen': rlen, 'rouges': rouges, 'cider': cider, 'ciders': ciders}))",
    ].join('\n');
    const ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(pairs), encoding: 'utf8' })) as {
      bleu: number[];
      tlen: number;
      rlen: number;
      rouges: number[];
      cider: number;
      ciders: number[];
    };
    const s = scoreCaptions(
      pairs.map((p, i) => ({ id: String(i), ...p })),
      { tokenize: false },
    );
    [s.bleu1, s.bleu2, s.bleu3, s.bleu4].forEach((v, k) => expect(Math.abs(v - ref.bleu[k]), `bleu${k + 1}`).toBeLessThanOrEqual(1e-12));
    const b = bleuCoco(pairs);
    expect([b.testLength, b.refLength]).toEqual([ref.tlen, ref.rlen]);
    expect(Math.abs(s.ciderD - ref.cider)).toBeLessThanOrEqual(1e-12);
    let worst = 0;
    s.perImage.forEach((p, i) => {
      worst = Math.max(worst, Math.abs(p.rougeL - ref.rouges[i]), Math.abs(p.ciderD - ref.ciders[i]));
      expect(rougeLCoco(pairs[i].candidate, pairs[i].references)).toBe(p.rougeL);
    });
    expect(worst).toBeLessThanOrEqual(1e-12);
    expect(ciderDCoco(pairs).perImage).toEqual(s.perImage.map((p) => p.ciderD));
    // Odd whitespace must not change ROUGE's single-space split: the reference scores it as is.
    expect(s.perImage[4].rougeL).toBe(ref.rouges[4]);
  });
});
