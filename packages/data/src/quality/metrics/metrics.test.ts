import { describe, expect, it } from 'vitest';
import { createSharpCodec } from '@vlit/runtime/node';
import {
  coefficientOfVariation,
  computeDataQuality,
  entropyBits,
  generateCocoFixture,
  instructionTemplate,
  QUALITY_TABLE_ROWS,
  renderQualityMarkdown,
  type CocoFixtureOptions,
  type DataQualityReport,
} from '../index.js';

const codec = createSharpCodec();

/** The headline numbers compared across variants. */
const HEADLINE: Record<string, (r: DataQualityReport) => number> = {
  correctness: (r) => r.correctness.rate ?? NaN,
  taskTypes: (r) => r.taskTypes.count,
  templates: (r) => r.instructionDiversity.templates,
  turns: (r) => r.turns.mean,
  objects: (r) => r.objectsPerConversation.mean,
  balance: (r) => r.balance.category ?? NaN,
  SM: (r) => r.similarity.instructions ?? NaN,
  AM: (r) => r.similarity.answers ?? NaN,
};

async function report(name: string, extra: Partial<CocoFixtureOptions>): Promise<DataQualityReport> {
  const fx = await generateCocoFixture({ images: 40, seed: 11, codec, ...extra });
  return computeDataQuality(fx.records, { name, annotations: fx.annotations });
}

/** Metrics other than `moved` that changed by more than 30% relative to the baseline. */
function otherMoves(base: DataQualityReport, variant: DataQualityReport, moved: string[]): string[] {
  return Object.entries(HEADLINE)
    .filter(([k]) => !moved.includes(k))
    .filter(([, f]) => Math.abs(f(variant) - f(base)) > 0.3 * Math.abs(f(base)))
    .map(([k, f]) => `${k}: ${f(base)} -> ${f(variant)}`);
}

describe('data-quality metrics on fixtures that differ in one property at a time', () => {
  it('more templates, more turns, skewed categories: each moves its metric the expected way and little else', async () => {
    const base = await report('base (3 phrasings, 1 turn)', { phrasingsPerTask: 3 });
    const templates = await report('11 phrasings', { phrasingsPerTask: 11 });
    const turns = await report('4 turns', { phrasingsPerTask: 3, turns: 4 });
    const skewed = await report('skewed categories', { phrasingsPerTask: 3, categoryWeights: { dog: 30 } });
    const table = renderQualityMarkdown([base, templates, turns, skewed]);
    expect(table).toContain('| Task types (T) |');
    // Every row of the data-file table reads a value the report has (a wrong path would print '–').
    const baseRow = (label: string) =>
      table
        .split('\n')
        .find((l) => l.startsWith(`| ${label} |`))
        ?.split(' | ')[2];
    for (const row of QUALITY_TABLE_ROWS) expect(row.value(base), row.key).not.toBe('–');
    expect(baseRow('Records')).toBe(String(base.records));
    expect(baseRow('Turns per conversation')).toBe(base.turns.mean.toFixed(2));
    expect(baseRow('Instruction similarity (SM)')).toBe(base.similarity.instructions!.toFixed(4));

    // More templates: more distinct templates, lower instruction similarity (SM).
    expect(templates.instructionDiversity.templates).toBeGreaterThan(2 * base.instructionDiversity.templates);
    expect(templates.similarity.instructions!).toBeLessThan(0.8 * base.similarity.instructions!);
    expect(otherMoves(base, templates, ['templates', 'SM'])).toEqual([]);

    // More turns: average turns up (1 + dialogue's 3 over 7 tasks = 9/7 -> 4).
    expect(base.turns.mean).toBeCloseTo(9 / 7, 10);
    expect(turns.turns.mean).toBe(4);
    expect(otherMoves(base, turns, ['turns'])).toEqual([]);

    // Skewed categories: the balance spread (CV) rises.
    expect(skewed.balance.category!).toBeGreaterThan(1.4 * base.balance.category!);
    expect(otherMoves(base, skewed, ['balance'])).toEqual([]);

    // Clean fixtures are fully correct and have all seven task types.
    for (const r of [base, templates, turns, skewed]) {
      expect(r.correctness.rate).toBe(100);
      expect(r.taskTypes.count).toBe(7);
      expect(r.relevance.method).toBe('annotation-text');
      expect(r.similarity.embedder).toMatch(/^vlit-lexical-tfidf/);
    }
  }, 60_000);

  it('correctness rate counts records failing consistency or hallucination checks', async () => {
    const fx = await generateCocoFixture({ images: 10, seed: 3, codec, faults: { 'wrong-count': 3, 'absent-object': 2 } });
    const r = await computeDataQuality(fx.records, { annotations: fx.annotations });
    const n = fx.records.length;
    expect(r.correctness.checked).toBe(n);
    expect(r.correctness.passed).toBe(n - 5);
    expect(r.correctness.rate).toBeCloseTo((100 * (n - 5)) / n, 10);
    expect(r.correctness.issues).toEqual({ 'count-mismatch': 3, 'hallucinated-object': 2 });
  }, 30_000);

  it('helpers match hand-worked values', () => {
    // counts 2, 4, 6: mean 4, population std sqrt(8/3) -> CV = 100 * 1.63299 / 4
    expect(coefficientOfVariation([2, 4, 6])).toBeCloseTo((100 * Math.sqrt(8 / 3)) / 4, 10);
    expect(coefficientOfVariation([5, 5, 5])).toBe(0);
    expect(entropyBits([1, 1, 1, 1])).toBeCloseTo(2, 12);
    expect(entropyBits([3, 1])).toBeCloseTo(-(0.75 * Math.log2(0.75) + 0.25 * Math.log2(0.25)), 12);
    expect(instructionTemplate('How many dogs are there in the image?')).toBe('how many <obj> are there in the image');
    expect(instructionTemplate('How many red cars are there?')).toBe('how many <col> <obj> are there');
    expect(instructionTemplate('What is in the area [12, 40, 300, 500]?')).toBe('what is in the area <box>');
  });
});
