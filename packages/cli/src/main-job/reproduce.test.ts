/**
 * The reproduction, `--quick` sizes, end to end: two variants (one template vs the full pools) x two
 * seeds, then the reference variant again with the same seeds. The full six variants x three seeds are
 * `npm run reproduce` (docs/results.md); the CI test runs a subset so that it stays a few minutes.
 * Expectations come from outside the code under test: chance from the benchmark file's own options,
 * the dimensions from the benchmark file, mean and spread recomputed from the per-seed values, and
 * determinism as equality between two independent runs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSeedBenchFile } from '@vlit/eval/node';
import { runReproduction, type ReproductionResult } from './index.js';

const work = mkdtempSync(join(tmpdir(), 'vlit-reproduce-'));
let first: ReproductionResult;
let second: ReproductionResult;

beforeAll(async () => {
  first = await runReproduction({ out: join(work, 'one'), quick: true, seeds: [1, 2], variants: ['a', 'b'] });
  second = await runReproduction({ out: join(work, 'two'), quick: true, seeds: [1, 2], variants: ['b'] });
}, 900_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('runReproduction (--quick, variants a and b, seeds 1 and 2)', () => {
  it('prints chance from the benchmark options beside Overall and every dimension the benchmark asks', async () => {
    const bench = await loadSeedBenchFile(join(work, 'one', 'world', 'benchmark', 'seed-bench.json'));
    const dims = [...new Set(bench.items.map((it) => it.dimension as string))];
    const chance = bench.items.reduce((s, it) => s + 1 / it.options.length, 0) / bench.items.length;
    expect(first.chance.Overall).toBeCloseTo(chance, 12);
    expect(Object.keys(first.chance)[0]).toBe('Overall');
    expect(new Set(Object.keys(first.chance).slice(1))).toEqual(new Set(dims));
    const md = readFileSync(first.markdownPath, 'utf8');
    expect(md).toBe(first.markdown);
    // Two variant tables (seen, unseen): header with Overall first and chance in it, a chance row, one row per variant.
    const tables = md.split('\n## ').filter((s) => s.startsWith('Accuracy on the held-out benchmark'));
    expect(tables).toHaveLength(2);
    for (const t of tables) {
      const rows = t.split('\n').filter((l) => l.startsWith('|'));
      expect(rows[0]).toMatch(new RegExp(`^\\| variant \\| \\*\\*Overall\\*\\* \\(chance ${(100 * chance).toFixed(1)}\\) \\| `));
      expect(rows[2].startsWith('| *chance* |')).toBe(true);
      expect(rows.some((r) => r.startsWith('| (a) one template per task |'))).toBe(true);
      expect(rows.some((r) => r.startsWith('| (b) full template pools |'))).toBe(true);
      for (const r of rows.slice(3)) expect(r.split('|').length - 2).toBe(2 + dims.length);
    }
    expect(md).toContain('## Data quality of each dataset variant');
    expect(md).toMatch(/- \*\*machine\*\*: \d+ × /);
  });

  it('reports mean ± spread over the seeds and beats chance overall on seen phrasings', () => {
    for (const v of first.variants) {
      expect(v.runs.map((r) => r.seed)).toEqual([1, 2]);
      const values = v.runs.map((r) => r.seen.accuracy);
      const mean = (values[0] + values[1]) / 2;
      expect(v.seen.Overall.mean).toBeCloseTo(mean, 12);
      expect(v.seen.Overall.spread).toBeCloseTo(Math.abs(values[0] - values[1]) / Math.SQRT2, 12);
      for (const r of v.runs) expect(r.seen.accuracy).toBeGreaterThan(r.seen.chance);
    }
    // The one-template dataset really uses fewer instruction templates than the full pools.
    const [a, b] = first.variants;
    expect(a.dataQuality?.instructionDiversity.templates).toBeLessThan(b.dataQuality?.instructionDiversity.templates ?? 0);
    // The blank-image control is run for the reference variant only.
    expect(b.blankSeen?.Overall.values).toHaveLength(2);
    expect(a.blankSeen).toBeUndefined();
  });

  it('gives identical numbers when run again with the same seeds', () => {
    const b1 = first.variants.find((v) => v.variant.id === 'b');
    const b2 = second.variants[0];
    expect(b2.variant.id).toBe('b');
    expect(b2.runs.map((r) => [r.seen, r.unseen, r.blankSeen, r.records])).toEqual(b1?.runs.map((r) => [r.seen, r.unseen, r.blankSeen, r.records]));
    expect(b2.dataQuality).toEqual(b1?.dataQuality);
  });
});
