// Runs for report tests: three "model x data" runs over all nine SEED-Bench dimensions plus VQA,
// captions and POPE, made by constructed models so every number is known.
import type { DataQualityReportLike } from './html.js';
import { createOracleModel, createPixelModel, makeImage } from '../testing.js';
import type { MultipleChoiceItem } from '../mc/datasets.js';
import { SEED_DIMENSIONS } from '../mc/datasets.js';
import { createMultipleChoiceBenchmark } from '../run/benchmarks.js';
import { captionBenchmarkFixture, popeBenchmarkFixture, vqaBenchmarkFixture } from '../benchmarks.fixtures.js';
import { evaluate, type EvalRun } from '../run/evaluate.js';

/** 36 questions: 4 per dimension, answers at positions 0..3. */
export const seedItems: MultipleChoiceItem[] = SEED_DIMENSIONS.flatMap((d, di) =>
  [0, 1, 2, 3].map((k) => {
    const answer = k;
    const options = ['option one', 'option two', 'option three', 'option four'].map((o) => `${o} of ${d.code}${k}`);
    return { id: `${d.code}-${k}`, question: `Question ${k} about ${d.name}?`, options, answer, dimension: d.code, images: [`seed-${di}-${k}.png`] };
  }),
);

/** Knows the answers of the first `known` questions of each dimension (others fall back to position 0). */
function partialOracle(known: number, id: string) {
  const key = new Map(seedItems.filter((it) => Number(it.id.split('-')[1]) < known).map((it) => [it.question, it.options[it.answer]]));
  return createOracleModel(key, id);
}

/** Three runs, like the review's rows: model x training data. */
export async function makeRuns(): Promise<EvalRun[]> {
  const loadImage = async (ref: unknown) => makeImage(String(ref));
  const others = () => [vqaBenchmarkFixture('vqav2-mini', 12), captionBenchmarkFixture('coco-captions-mini'), popeBenchmarkFixture('pope-popular')];
  const runs: EvalRun[] = [];
  for (const [name, known, seed] of [
    ['LLaVA / LLaVA data', 1, 1],
    ['LLaVA / MIMIC-IT data', 2, 2],
    ['LLaVA / review data', 3, 3],
  ] as const) {
    const mc = await evaluate({
      name,
      model: partialOracle(known, `oracle-${known}`),
      benchmarks: [createMultipleChoiceBenchmark({ id: 'seed-bench-mini', items: seedItems })],
      loadImage,
    });
    const rest = await evaluate({ name, model: createPixelModel(`pixel-${seed}`), benchmarks: others(), loadImage, decoding: { temperature: 0.5, seed } });
    runs.push({
      ...mc,
      benchmarks: [...mc.benchmarks, ...rest.benchmarks],
      stats: { units: mc.stats.units + rest.stats.units, fromCache: 0, computed: mc.stats.computed + rest.stats.computed, failed: 0 },
    });
  }
  return runs;
}

/** The review's data-quality seed figures (VLIT.md), shaped like @vlit/data's DataQualityReport. */
export function seedQualityReports(): DataQualityReportLike[] {
  const rows: Array<[string, number, number, number, number, number, number]> = [
    ['LLaVA data', 30.7, 91.1, 9, 14.6, 0.7978, 0.9221],
    ['MIMIC-IT data', 30.9, 93.4, 9, 10.5, 0.7239, 0.8872],
    ['Review data', 33.2, 94.6, 10, 16.8, 0.3028, 0.5658],
    ['Review data + QC', 34.1, 94.8, 10, 12.3, 0.4398, 0.7019],
  ];
  return rows.map(([name, md, c, t, balance, sm, am], i) => ({
    name,
    records: 1000 + i,
    relevance: { value: md, method: 'annotation-text', embedder: 'lexical-tfidf' },
    correctness: { rate: c },
    taskTypes: { count: t },
    instructionDiversity: { templates: 20 + i },
    turns: { mean: 2 + i / 2 },
    objectsPerConversation: { mean: 1.5 + i / 4 },
    balance: { category: balance },
    similarity: { embedder: 'lexical-tfidf', instructions: sm, answers: am },
  }));
}
