/**
 * The trained main job, `--quick`, end to end: real rendering (sharp), real adaption and quality control,
 * real training on onnxruntime, real evaluation, a real checkpoint folder reloaded by another loader.
 * Expectations come from outside the job: chance from the benchmark file's own options, the dimensions
 * from the benchmark file, and answers of the saved folder through @vlit/eval with the folder loader.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime, createSharpCodec } from '@vlit/runtime/node';
import { loadVisionLanguageModel } from '@vlit/models/node';
import { createMemoryCache, createMultipleChoiceBenchmark, evaluate } from '@vlit/eval';
import { createFileImageLoader, loadSeedBenchFile } from '@vlit/eval/node';
import { runTrainedMainJob, type MainJobProgress, type TrainedMainJobResult } from './index.js';

const work = mkdtempSync(join(tmpdir(), 'vlit-main-job-'));
let result: TrainedMainJobResult;
const events: MainJobProgress[] = [];

beforeAll(async () => {
  result = await runTrainedMainJob({ out: join(work, 'out'), quick: true, seed: 7, onProgress: (e) => events.push(e) });
}, 900_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the trained main job (--quick)', () => {
  it('reports every dimension of the benchmark on both splits and with blank images, chance beside each number', async () => {
    const seen = await loadSeedBenchFile(join(result.files.world, 'benchmark', 'seed-bench.json'));
    const unseen = await loadSeedBenchFile(join(result.files.world, 'benchmark', 'seed-bench-unseen.json'));
    expect(unseen.items.length).toBe(seen.items.length);
    const dims = [...new Set(seen.items.map((it) => it.dimension as string))].sort();
    const rows = result.evaluation.table;
    expect(rows[0].code).toBe('Overall');
    expect(
      rows
        .slice(1)
        .map((r) => r.code)
        .sort(),
    ).toEqual(dims);
    for (const r of rows.slice(1)) {
      const members = seen.items.filter((it) => it.dimension === r.code);
      expect(r.questions).toBe(members.length);
      // Chance from the file's own options, computed here.
      expect(r.chance).toBeCloseTo(members.reduce((s, it) => s + 1 / it.options.length, 0) / members.length, 10);
      for (const x of [r.seen, r.unseen, r.blank]) expect(x).toBeGreaterThanOrEqual(0);
    }
    const markdown = readFileSync(result.files.summaryMarkdown, 'utf8');
    const html = readFileSync(result.files.reportHtml, 'utf8');
    for (const r of rows) {
      const label = r.code === 'Overall' ? '**Overall**' : `${r.code} (`;
      const line = markdown.split('\n').find((l) => l.startsWith(`| ${label}`));
      expect(line, r.code).toBeDefined();
      // Chance, seen, unseen and blank: four percentages on the row, chance first.
      const numbers = [...(line as string).matchAll(/(\d+\.\d)(?!\))/g)].map((m) => Number(m[1]));
      expect(numbers[0]).toBeCloseTo(100 * r.chance, 1);
      expect(html).toContain(`<td>${(100 * r.chance).toFixed(1)}</td>`);
    }
    expect(markdown).toMatch(/unseen phrasings/);
    expect(markdown).toMatch(/blank images/);
    expect(readFileSync(join(result.out, 'eval-report', 'report.html'), 'utf8')).toContain('<svg');
  });

  it('trains for real: losses fall in both stages, and progress covers every step', () => {
    const { stage1, stage2 } = result.training;
    expect(stage1.steps).toBe(result.settings.stage1.steps);
    expect(stage2.steps).toBe(result.settings.stage2.steps);
    expect(stage2.lastLoss).toBeLessThan(stage2.firstLoss);
    expect(stage1.lastLoss).toBeLessThan(stage1.firstLoss);
    const last = (stage: MainJobProgress['stage']): MainJobProgress | undefined => events.filter((e) => e.stage === stage).at(-1);
    expect(last('train-stage-2')?.done).toBe(stage2.steps);
    for (const stage of ['render-world', 'quality-control', 'encode-images', 'train-stage-1', 'evaluate', 'evaluate-blank', 'report'] as const) {
      const e = last(stage);
      expect(e, stage).toBeDefined();
      expect(e?.done).toBe(e?.total);
    }
  });

  it('keeps counts honest: QC read = kept + rejected, and it catches planted faults', () => {
    const qc = result.qualityControl;
    expect(qc.read).toBe(qc.kept + qc.rejected);
    expect(qc.read).toBe(result.adaption.records + result.faults.planted);
    expect(result.faults.planted).toBeGreaterThan(0);
    // Wrong counts and copies are certain catches for the consistency and duplicate filters.
    expect(result.faults.byKind['wrong-count'].caught).toBe(result.faults.byKind['wrong-count'].planted);
    expect(result.faults.byKind.duplicate.caught).toBe(result.faults.byKind.duplicate.planted);
    const kept = readFileSync(result.files.kept, 'utf8').trim().split('\n');
    expect(kept.length).toBe(qc.kept);
  });

  it('beats chance overall by a clear margin, and falls back toward chance with blank images where the answer is only in the image', () => {
    const overall = result.evaluation.table[0];
    // 8 points over chance: with ~500 questions the binomial standard error near 35% is ~2.1 points, so
    // 8 points is ~4 standard errors above a model that ignores the questions; the seed-7 quick run measures ~13.
    expect(overall.seen - overall.chance).toBeGreaterThanOrEqual(0.08);
    expect(overall.unseen).toBeGreaterThan(overall.chance);
    // Image dependence, paired on the same questions: flat grey images cost accuracy overall ...
    expect(overall.seen - overall.blank).toBeGreaterThanOrEqual(0.03);
    // ... and on scene understanding (background colour, number of shapes: answers that exist only in the
    // pixels) the blank run keeps less than half of the margin over chance.
    const su = result.evaluation.table.find((r) => r.code === 'SU');
    expect(su).toBeDefined();
    const margin = (su?.seen ?? 0) - (su?.chance ?? 0);
    expect(margin).toBeGreaterThanOrEqual(0.15);
    expect((su?.blank ?? 0) - (su?.chance ?? 0)).toBeLessThan(margin / 2);
  });

  it('saves a checkpoint folder that the folder loader reloads to the same answers', async () => {
    expect(result.reload.sameChoice).toBe(result.reload.questions);
    const runtime = createNodeRuntime();
    const model = await loadVisionLanguageModel(result.files.model, { runtime });
    try {
      const seen = await loadSeedBenchFile(join(result.files.world, 'benchmark', 'seed-bench.json'));
      const items = seen.items.slice(0, 16);
      const run = await evaluate({
        model,
        benchmarks: [createMultipleChoiceBenchmark({ id: 'reloaded', items })],
        loadImage: createFileImageLoader({ root: result.files.world, codec: createSharpCodec() }),
        cache: createMemoryCache(),
      });
      const report = JSON.parse(readFileSync(join(result.out, 'eval-report', 'report.json'), 'utf8')) as {
        runs: Array<{ name: string; benchmarks: Array<{ id: string; items: Array<{ id: string; chosen: number[] }> }> }>;
      };
      const original = report.runs.find((r) => r.name === 'trained')?.benchmarks.find((b) => b.id === 'world-seen');
      expect(original).toBeDefined();
      const chosenBefore = new Map(original?.items.map((i) => [i.id, i.chosen[0]]));
      for (const item of run.benchmarks[0].items) expect(item.chosen?.[0], item.id).toBe(chosenBefore.get(item.id));
    } finally {
      await model.dispose();
    }
  });
});
