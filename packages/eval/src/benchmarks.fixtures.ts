// Fixtures shared by eval's tests (never imported by library code, so never built): small VQA, caption
// and POPE benchmarks whose scores the tests know, and SEED-Bench questions in the dataset's own JSON.
import { buildPopeQuestions } from './metrics/pope.js';
import { createCaptionBenchmark, createPopeBenchmark, createVqaBenchmark } from './run/benchmarks.js';

// References differ per image (a per-image noun), so CIDEr-D's document frequencies are not all
// equal to the number of images (which would give every n-gram idf 0).
const NOUNS = ['man', 'dog', 'bus', 'park', 'street', 'cats'];

/** Five reference captions of image `i` (0..5), each naming that image's noun. */
const captionRefs = (i: number): string[] => [
  `a ${NOUNS[i]} on the street`,
  `The ${NOUNS[i]} near a park.`,
  `two ${NOUNS[i]} riding`,
  `a red ${NOUNS[i]}`,
  `${NOUNS[(i + 1) % 6]} and a man`,
];

/** `count` VQA questions: odd ones all answered '2' (number), even ones a mixed set of ten answers (other). */
export function vqaBenchmarkFixture(id: string, count: number) {
  return createVqaBenchmark({
    id,
    items: Array.from({ length: count }, (_, i) => ({
      id: `v${i}`,
      question: `How many things in image ${i}?`,
      images: [`vqa-${i}.png`],
      answers: i % 2 ? Array(10).fill('2') : ['yes', 'yes', 'yes', 'no', 'red', 'red', "it's", 'dog', 'dog', '2'],
      answerType: i % 2 ? 'number' : 'other',
    })),
  });
}

/** Six captioned images with `captionRefs`' references. */
export function captionBenchmarkFixture(id: string) {
  return createCaptionBenchmark({ id, items: Array.from({ length: 6 }, (_, i) => ({ id: `c${i}`, images: [`cap-${i}.png`], references: captionRefs(i) })) });
}

/** POPE's popular strategy over three images of three objects each. */
export function popeBenchmarkFixture(id: string) {
  const images = [
    { image: 'p1.png', objects: ['dog', 'car', 'tree'] },
    { image: 'p2.png', objects: ['cat', 'bus', 'person'] },
    { image: 'p3.png', objects: ['car', 'person', 'bench'] },
  ];
  return createPopeBenchmark({ id, questions: buildPopeQuestions(images, { strategy: 'popular' }) });
}

/** What differs between SEED-Bench questions; `data_type` defaults to 'image'. */
export interface SeedBenchQuestionFields {
  answer: string;
  data_id: string;
  data_type?: string;
  question: string;
  question_id: string | number;
  question_type_id: number;
}

/** One question as SEED-Bench's JSON writes it, with the choices 'a'..'d'. */
export function seedBenchQuestion(fields: SeedBenchQuestionFields): Record<string, unknown> {
  return { choice_a: 'a', choice_b: 'b', choice_c: 'c', choice_d: 'd', data_type: 'image', ...fields };
}
