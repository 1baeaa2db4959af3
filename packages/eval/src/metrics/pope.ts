// POPE (Li et al., 2023): yes/no questions about objects that are or are not in the image, with
// negatives sampled at random, from the most frequent objects, or from objects that co-occur with
// the image's own. Sampling follows the reference repository (AoiDragon/POPE, utils.py); answers
// are parsed with its evaluate.py rule.

import { createRng, InvalidArgumentError } from '@vlit/core';

/** How negative objects are chosen. */
export type PopeStrategy = 'random' | 'popular' | 'adversarial';

/** An image with the objects annotated in it (in annotation order: the first ones become positives). */
export interface PopeImage {
  image: string;
  objects: readonly string[];
}

/** One POPE question. */
export interface PopeQuestion {
  id: string;
  image: string;
  object: string;
  question: string;
  label: 'yes' | 'no';
}

/** Options for building POPE questions. */
export interface PopeBuildOptions {
  strategy: PopeStrategy;
  /** Positives (and as many negatives) per image; the reference uses 3. */
  samplesPerImage?: number;
  /** Seed for random choices (random strategy, and fall-backs of the others). */
  seed?: number | string;
  /** Question template with `{}` for the object; the article becomes "an" before a vowel. */
  template?: string;
}

/** Object frequencies over all images, in order of first appearance. */
export function objectFrequencies(images: readonly PopeImage[]): Map<string, number> {
  const freq = new Map<string, number>();
  for (const img of images) for (const o of img.objects) freq.set(o, (freq.get(o) ?? 0) + 1);
  return freq;
}

/** For each object, the objects seen with it in the same image, most frequent first (ties in order of first appearance). */
export function coOccurrence(images: readonly PopeImage[]): Map<string, string[]> {
  const co = new Map<string, Map<string, number>>();
  for (const img of images) {
    for (const o of img.objects) {
      let row = co.get(o);
      if (!row) co.set(o, (row = new Map()));
      for (const other of img.objects) if (other !== o) row.set(other, (row.get(other) ?? 0) + 1);
    }
  }
  const out = new Map<string, string[]>();
  // Array.prototype.sort is stable, like Python's sorted(), so ties keep insertion order.
  for (const [o, row] of co)
    out.set(
      o,
      [...row.entries()].sort((a, b) => b[1] - a[1]).map((e) => e[0]),
    );
  return out;
}

function phrase(template: string, object: string): string {
  const vowel = /^[aeiou]/i.test(object);
  return template.replace(/\ba\s+\{\}/, vowel ? 'an {}' : 'a {}').replace('{}', object);
}

/**
 * Build POPE questions: for each image, for each of its first `samplesPerImage` objects, one "yes"
 * question about that object followed by one "no" question about an object not in the image and not
 * asked about yet, chosen by the strategy (popular: the most frequent such object overall;
 * adversarial: the object most often seen with the positive; both fall back to a random one).
 */
export function buildPopeQuestions(images: readonly PopeImage[], options: PopeBuildOptions): PopeQuestion[] {
  const k = options.samplesPerImage ?? 3;
  const template = options.template ?? 'Is there a {} in the image?';
  const rng = createRng(options.seed ?? 0);
  const freq = objectFrequencies(images);
  const all = [...freq.keys()];
  const popular = [...freq.entries()].sort((a, b) => b[1] - a[1]).map((e) => e[0]);
  const co = coOccurrence(images);
  const questions: PopeQuestion[] = [];
  let nextId = 1;
  for (const img of images) {
    if (img.objects.length < k) {
      throw new InvalidArgumentError(`POPE needs ${k} annotated objects per image, ${img.image} has ${img.objects.length}`, {
        details: { record: img.image, field: 'objects' },
      });
    }
    const inImage = new Set(img.objects);
    const history = new Set<string>();
    const usable = (o: string) => !history.has(o) && !inImage.has(o);
    const randomPick = (): string => {
      if (!all.some(usable)) {
        throw new InvalidArgumentError(`no object left to ask about as a negative for ${img.image}`, { details: { record: img.image } });
      }
      for (;;) {
        const o = all[rng.int(0, all.length)];
        if (usable(o)) return o;
      }
    };
    for (let i = 0; i < k; i++) {
      const pos = img.objects[i];
      history.add(pos);
      questions.push({ id: String(nextId++), image: img.image, object: pos, question: phrase(template, pos), label: 'yes' });
      let neg: string | undefined;
      if (options.strategy === 'popular') neg = popular.find(usable);
      else if (options.strategy === 'adversarial') neg = (co.get(pos) ?? []).find(usable);
      neg ??= randomPick();
      history.add(neg);
      questions.push({ id: String(nextId++), image: img.image, object: neg, question: phrase(template, neg), label: 'no' });
    }
  }
  return questions;
}

/**
 * POPE's answer rule (evaluate.py): keep the text before the first '.', drop commas, split on
 * spaces; "no" if a word is exactly `No`, `no` or `not`, else "yes". (So "NO" reads as yes, as there.)
 */
export function parsePopeAnswer(text: string): 'yes' | 'no' {
  let t = text;
  if (t.includes('.')) t = t.split('.')[0];
  const ws = t.replace(/,/g, '').split(' ');
  return ws.includes('No') || ws.includes('not') || ws.includes('no') ? 'no' : 'yes';
}

/** POPE metrics: yes is the positive class; undefined ratios (no positives predicted, ...) are 0. */
export interface PopeScores {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  yesRatio: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  count: number;
}

/** Accuracy, precision, recall, F1 and yes-ratio of predicted labels against true labels. */
export function popeScores(labels: readonly ('yes' | 'no')[], predictions: readonly ('yes' | 'no')[]): PopeScores {
  if (labels.length !== predictions.length) throw new InvalidArgumentError(`${labels.length} labels but ${predictions.length} predictions`);
  let tp = 0,
    fp = 0,
    tn = 0,
    fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const pred = predictions[i] === 'yes';
    const pos = labels[i] === 'yes';
    if (pred && pos) tp++;
    else if (pred) fp++;
    else if (!pos) tn++;
    else fn++;
  }
  const div = (a: number, b: number) => (b === 0 ? 0 : a / b);
  const precision = div(tp, tp + fp);
  const recall = div(tp, tp + fn);
  return {
    accuracy: div(tp + tn, labels.length),
    precision,
    recall,
    f1: div(2 * precision * recall, precision + recall),
    yesRatio: div(tp + fp, labels.length),
    tp,
    fp,
    tn,
    fn,
    count: labels.length,
  };
}
