// Multiple choice end to end: constructed models (core's VisionLanguageModel contract) whose right
// score is known in advance, SEED-Bench JSON and MMBench TSV reading.
import { describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { createFirstPositionModel, createOracleModel } from '../testing.js';
import { parseMmbenchTsv, parseSeedBench, type MultipleChoiceItem } from '../mc/datasets.js';
import { createMultipleChoiceBenchmark, rotation } from './benchmarks.js';
import { evaluate } from './evaluate.js';
import { renderResultsTable } from '../report/markdown.js';
import { seedBenchQuestion } from '../benchmarks.fixtures.js';

const DIMS = ['SU', 'IA', 'IC', 'TR'];
function items(answerAt: (i: number) => number): MultipleChoiceItem[] {
  return Array.from({ length: 12 }, (_, i) => {
    const correct = `answer ${i}`;
    const wrong = [`wrong ${i} alpha`, `wrong ${i} beta beta`, `wrong ${i} gamma gamma gamma`];
    const options = [...wrong];
    options.splice(answerAt(i), 0, correct);
    return { id: `q${i}`, question: `Question number ${i}?`, options, answer: answerAt(i), dimension: DIMS[i % 4], images: [] };
  });
}
const spread = items((i) => i % 4);
const keyOf = (list: MultipleChoiceItem[]) => new Map(list.map((it) => [it.question, it.options[it.answer]]));

describe('a model constructed to prefer the right option scores 100%', () => {
  for (const [method, normalization] of [
    ['likelihood', 'mean'],
    ['likelihood', 'sum'],
    ['generate', undefined],
  ] as const) {
    for (const circular of [false, true]) {
      it(`${method}${normalization ? ` (${normalization})` : ''}${circular ? ', circular' : ''}`, async () => {
        const model = createOracleModel(keyOf(spread));
        const bench = createMultipleChoiceBenchmark({ id: 'mc', items: spread, method, normalization, circular });
        const run = await evaluate({ model, benchmarks: [bench] });
        const r = run.benchmarks[0];
        expect(r.metrics.accuracy).toBe(1);
        if (circular) expect(r.metrics.perPassAccuracy).toBe(1);
        for (const d of DIMS) expect(r.groups[d]).toEqual({ accuracy: 1, correct: 3, total: 3 });
        expect(run.stats.units).toBe(circular ? 48 : 12);
        if (method === 'generate') expect(r.extraction?.none ?? 0).toBe(0);
      });
    }
  }
});

describe('a model that always picks the first position', () => {
  it('scores at chance per pass and 0 under circular evaluation, though the plain run looks perfect on A-heavy data', async () => {
    const model = createFirstPositionModel();
    const allA = items(() => 0);
    const plain = await evaluate({ model, benchmarks: [createMultipleChoiceBenchmark({ id: 'plain', items: allA, method: 'generate' })] });
    expect(plain.benchmarks[0].metrics.accuracy).toBe(1);
    const circ = await evaluate({ model, benchmarks: [createMultipleChoiceBenchmark({ id: 'circular', items: allA, method: 'generate', circular: true })] });
    // Each question is asked 4 times with the answer at positions 0, 3, 2, 1: one pass in four is right.
    expect(circ.benchmarks[0].metrics.perPassAccuracy).toBe(0.25);
    expect(circ.benchmarks[0].metrics.accuracy).toBe(0);
    const spreadRun = await evaluate({
      model,
      benchmarks: [createMultipleChoiceBenchmark({ id: 'circular', items: spread, method: 'generate', circular: true })],
    });
    expect(spreadRun.benchmarks[0].metrics.perPassAccuracy).toBe(0.25);
    expect(spreadRun.benchmarks[0].metrics.accuracy).toBe(0);
  });

  it('rotation r shows original option (i + r) mod n at position i', () => {
    expect(rotation(4, 0)).toEqual([0, 1, 2, 3]);
    expect(rotation(4, 1)).toEqual([1, 2, 3, 0]);
    expect(rotation(4, 3)).toEqual([3, 0, 1, 2]);
  });
});

describe('likelihood variants', () => {
  it('mean (length-normalised) and sum (raw) can disagree, and each follows its definition', async () => {
    const item: MultipleChoiceItem = { id: 'x', question: 'Q?', options: ['one two three four', 'five'], answer: 0, images: [] };
    // option 0: 4 tokens at -1 each -> sum -4, mean -1; option 1: 1 token at -3 -> sum -3, mean -3
    const model = {
      id: 'fixed',
      generate: async () => ({ text: '', tokenIds: [], finishReason: 'stop' as const, usage: { promptTokens: 0, completionTokens: 0 } }),
      score: async () => [
        { logLikelihood: -4, tokens: 4 },
        { logLikelihood: -3, tokens: 1 },
      ],
    };
    const mean = await evaluate({ model, benchmarks: [createMultipleChoiceBenchmark({ id: 'm', items: [item], normalization: 'mean' })] });
    const sum = await evaluate({ model, benchmarks: [createMultipleChoiceBenchmark({ id: 's', items: [item], normalization: 'sum' })] });
    expect(mean.benchmarks[0].items[0].chosen).toEqual([0]);
    expect(sum.benchmarks[0].items[0].chosen).toEqual([1]);
  });
});

describe('results table in the review layout', () => {
  it('runs as rows, Overall first, then SU II IA IL IC SR IIR VR TR', async () => {
    const good = await evaluate({
      name: 'Oracle / review data',
      model: createOracleModel(keyOf(spread)),
      benchmarks: [createMultipleChoiceBenchmark({ id: 'seed', items: spread })],
    });
    const bad = await evaluate({
      name: 'Always A',
      model: createFirstPositionModel(),
      benchmarks: [createMultipleChoiceBenchmark({ id: 'seed', items: spread, method: 'generate' })],
    });
    const table = renderResultsTable([good, bad]);
    expect(table.split('\n')).toEqual([
      '| Run | Overall | SU | II | IA | IL | IC | SR | IIR | VR | TR |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      '| Oracle / review data | 100.0 | 100.0 | – | 100.0 | – | 100.0 | – | – | – | 100.0 |',
      // Always A: right only where the answer is at position 0 (q0, q4, q8: all SU)
      '| Always A | 25.0 | 100.0 | – | 0.0 | – | 0.0 | – | – | – | 0.0 |',
    ]);
  });
});

describe('benchmark files', () => {
  it('reads SEED-Bench JSON by its own question_type table, skipping video questions', () => {
    const json = {
      question_type: {
        'Scene Understanding': 1,
        'Instance Identity': 2,
        'Instance Attributes': 3,
        'Instance Location': 4,
        'Instances Counting': 5,
        'Text Understanding': 9,
        'Action Recognition': 10,
      },
      questions: [
        seedBenchQuestion({ answer: 'B', data_id: '1454426_2591111986', question: 'What?', question_id: '101669', question_type_id: 1 }),
        seedBenchQuestion({ answer: 'D', data_id: 'x.jpg', question: 'How many?', question_id: 7, question_type_id: 5 }),
        seedBenchQuestion({ answer: 'A', data_id: 'v.mp4', data_type: 'video', question: 'Action?', question_id: 8, question_type_id: 10 }),
        seedBenchQuestion({ answer: 'Q', data_id: 'y.jpg', question: 'Bad?', question_id: 9, question_type_id: 9 }),
        { question: 'no choices' },
      ],
    };
    const f = parseSeedBench(json);
    expect(f.read).toBe(5);
    expect(f.items.length + f.skipped.length).toBe(5);
    expect(f.items).toEqual([
      { id: '101669', question: 'What?', options: ['a', 'b', 'c', 'd'], answer: 1, dimension: 'SU', images: ['1454426_2591111986'] },
      { id: '7', question: 'How many?', options: ['a', 'b', 'c', 'd'], answer: 3, dimension: 'IC', images: ['x.jpg'] },
    ]);
    expect(f.skipped.map((s) => s.record)).toEqual(['8', '9', 4]);
  });

  it('reads MMBench TSV with quoted fields, missing options and base64 images', () => {
    const png = Buffer.from([137, 80, 78, 71]).toString('base64');
    const tsv = [
      'index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage',
      `1\tWhat colour?\tnan\tred\tblue\tnan\tnan\tB\tattribute_recognition\t${png}`,
      `2\t"Which one says ""hi""?\nPick one."\tA sign\tleft\tright\tmiddle\t\tC\tocr\t${png}`,
      `3\tNo answer\tnan\tx\ty\tnan\tnan\tD\tocr\t${png}`,
    ].join('\n');
    const f = parseMmbenchTsv(tsv, { file: 'mmbench.tsv' });
    expect(f.read).toBe(3);
    expect(f.items.map((i) => [i.id, i.question, i.hint, i.options, i.answer, i.dimension])).toEqual([
      ['1', 'What colour?', undefined, ['red', 'blue'], 1, 'attribute_recognition'],
      ['2', 'Which one says "hi"?\nPick one.', 'A sign', ['left', 'right', 'middle'], 2, 'ocr'],
    ]);
    expect((f.items[0].images[0] as { bytes: Uint8Array }).bytes).toEqual(new Uint8Array([137, 80, 78, 71]));
    expect(f.skipped).toEqual([{ record: '3', reason: 'answer "D" is not one of the options' }]);
  });

  it('rejects a bad item with a typed error naming it', () => {
    try {
      createMultipleChoiceBenchmark({ id: 'x', items: [{ id: 'q1', question: 'Q', options: ['a', 'b'], answer: 5, images: [] }] });
      expect.unreachable();
    } catch (e) {
      expect(isVlitError(e, 'VLIT_INVALID_ARGUMENT')).toBe(true);
      expect((e as Error).message).toContain('q1');
    }
  });
});
