/**
 * SEED-Bench-style multiple-choice questions built from image annotations (the `vlit demo --data-only`
 * benchmark): scene understanding (SU: which caption fits, against captions of other images) and
 * instance counting (IC: how many of the most frequent category), four options each.
 */
import { createRng } from '@vlit/core';
import type { MultipleChoiceItem } from '../mc/datasets.js';

/** What annotationBenchmarkItems reads of an image's annotations (structurally @vlit/data's ImageAnnotations). */
export interface AnnotatedImageForItems {
  imageId: string;
  file: string;
  captions: readonly string[];
  objects: readonly { category: string }[];
}

/**
 * SEED-Bench-style questions from annotations: SU (which caption describes the image, the wrong options
 * captions of three other images) and IC (how many objects of the image's most frequent category), four
 * options each, the right one at a seeded position.
 */
export function annotationBenchmarkItems(annotations: readonly AnnotatedImageForItems[], seed: number | string): MultipleChoiceItem[] {
  const rng = createRng(seed);
  const items: MultipleChoiceItem[] = [];
  const place = (right: string, wrong: string[]): { options: string[]; answer: number } => {
    const answer = rng.int(0, 4);
    const options = [...wrong.slice(0, 3)];
    options.splice(answer, 0, right);
    return { options, answer };
  };
  annotations.forEach((a, i) => {
    const others = annotations.filter((b, j) => j !== i && b.captions.length > 0);
    if (a.captions.length > 0 && others.length >= 3) {
      const wrong = rng.sample(others, 3).map((b) => b.captions[0]);
      items.push({ id: `${a.imageId}-su`, question: 'Which caption describes the image?', dimension: 'SU', images: [a.file], ...place(a.captions[0], wrong) });
    }
    const counts = new Map<string, number>();
    for (const o of a.objects) counts.set(o.category, (counts.get(o.category) ?? 0) + 1);
    const [category, n] = [...counts].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))[0] ?? [];
    if (category !== undefined && n !== undefined) {
      const wrong = [n + 1, n + 2, n > 1 ? n - 1 : n + 3].map(String);
      items.push({
        id: `${a.imageId}-ic`,
        question: `How many ${category} objects are in the image?`,
        dimension: 'IC',
        images: [a.file],
        ...place(String(n), wrong),
      });
    }
  });
  return items;
}
