// Runs: batching, progress, the crash-safe prediction cache (resume after a killed process), and
// the reproducibility manifest (re-running from a saved manifest reproduces the scores).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isVlitError, type VisionLanguageModel } from '@vlit/core';
import { createPixelModel, makeImage, promptText } from '../testing.js';
import { hashFiles, openPredictionCache } from '../node.js';
import { createCaptionBenchmark, createVqaBenchmark, type VqaItem } from './benchmarks.js';
import { evaluate } from './evaluate.js';
import { hashContent, type EvalManifest } from './manifest.js';
import { VLIT_VERSION } from '../version.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = mkdtempSync(join(tmpdir(), 'vlit-eval-runs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const loadImage = async (ref: unknown) => makeImage(String(ref));

const vqaItems: VqaItem[] = Array.from({ length: 40 }, (_, i) => ({
  id: `q${i}`,
  question: `What is item ${i}?`,
  images: [`img-${i % 7}.png`],
  answers: Array(10).fill(String(i % 3)),
  answerType: i % 2 ? 'number' : 'other',
}));
/** Answers from the question number alone, so a fresh process gives the same replies. */
function countingModel(opts: { failAt?: number } = {}): VisionLanguageModel & { calls: number; active: number; maxActive: number } {
  const m = {
    id: 'counting',
    calls: 0,
    active: 0,
    maxActive: 0,
    async generate(request: Parameters<VisionLanguageModel['generate']>[0]) {
      m.calls++;
      if (opts.failAt !== undefined && m.calls === opts.failAt) throw new Error('simulated crash');
      m.active++;
      m.maxActive = Math.max(m.maxActive, m.active);
      await new Promise((r) => setTimeout(r, 2));
      m.active--;
      const i = Number(/item (\d+)/.exec(promptText(request.messages))?.[1]);
      return { text: i % 5 === 0 ? 'no idea' : String(i % 3), tokenIds: [], finishReason: 'stop' as const, usage: { promptTokens: 0, completionTokens: 1 } };
    },
    async score() {
      return [];
    },
  };
  return m;
}

describe('batching and progress', () => {
  it('runs at most batchSize calls at once and reports progress per batch', async () => {
    const model = countingModel();
    const events: Array<{ stage: string; done: number; total?: number }> = [];
    const run = await evaluate({
      model,
      benchmarks: [createVqaBenchmark({ id: 'vqa', items: vqaItems })],
      loadImage,
      batchSize: 6,
      onProgress: (e) => events.push(e),
    });
    expect(model.maxActive).toBe(6);
    const predict = events.filter((e) => e.stage === 'predict').map((e) => e.done);
    expect(predict).toEqual([0, 6, 12, 18, 24, 30, 36, 40]);
    expect(events.at(-1)).toMatchObject({ stage: 'score', done: 1, total: 1 });
    // i % 5 == 0 answers "no idea": 8 of 40 wrong
    expect(run.benchmarks[0].metrics.accuracy).toBe(32 / 40);
  });
});

describe('resume after a crash', () => {
  it('a run that throws keeps its finished batches; the rerun asks only for the rest', async () => {
    const path = join(tmp, 'crash.jsonl');
    const bench = createVqaBenchmark({ id: 'vqa', items: vqaItems });
    await expect(
      evaluate({ model: countingModel({ failAt: 15 }), benchmarks: [bench], loadImage, batchSize: 4, cache: await openPredictionCache(path) }),
    ).rejects.toThrow('simulated crash');
    const cache = await openPredictionCache(path);
    // batches 1-3 (12 calls) finished; batch 4 held the failing call, its 3 other calls were kept too
    expect(cache.loaded).toBe(15);
    const model = countingModel();
    const resumed = await evaluate({ model, benchmarks: [bench], loadImage, batchSize: 4, cache });
    expect(model.calls).toBe(25);
    expect(resumed.stats).toEqual({ units: 40, fromCache: 15, computed: 25, failed: 0 });
    const clean = await evaluate({ model: countingModel(), benchmarks: [bench], loadImage });
    expect(resumed.benchmarks).toEqual(clean.benchmarks);
  });

  it('a SIGKILLed process resumes from its cache file; a torn last line is skipped with a warning', async () => {
    const dir = join(pkgDir, 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    const cachePath = join(tmp, 'killed.jsonl');
    const script = join(dir, 'crash-child.mjs');
    writeFileSync(
      script,
      `import { evaluate, createVqaBenchmark } from '@vlit/eval';
import { openPredictionCache } from '@vlit/eval/node';
const items = ${JSON.stringify(vqaItems.map((i) => ({ ...i, images: [] })))};
let calls = 0;
// Calls 14 and later hang, like a wedged process: batch 4 never completes, and the parent kills us.
const model = { id: 'counting', async generate(r) { calls++; if (calls >= 14) await new Promise(() => {}); await new Promise((s) => setTimeout(s, 5)); const i = Number(/item (\\d+)/.exec(r.messages[0].content)[1]); return { text: i % 5 === 0 ? 'no idea' : String(i % 3), tokenIds: [], finishReason: 'stop', usage: { promptTokens: 0, completionTokens: 1 } }; }, async score() { return []; } };
await evaluate({ model, benchmarks: [createVqaBenchmark({ id: 'vqa', items })], batchSize: 4, cache: await openPredictionCache(${JSON.stringify(cachePath)}), onProgress: (e) => process.stdout.write('done ' + e.done + '\\n') });
process.stdout.write('finished\\n');
`,
    );
    const child = spawn(process.execPath, [script], { cwd: pkgDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    // Output arrives in arbitrary chunks (a line may be split across two): match the whole of it.
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/^done 12\n/m.test(out)) {
          child.kill('SIGKILL');
          resolve();
        }
        if (/^finished\n/m.test(out)) reject(new Error('child finished before it was killed'));
      });
      child.on('exit', (code) => code !== null && code !== 0 && reject(new Error(`child failed: ${err}`)));
    });
    await new Promise((r) => child.on('close', r));
    appendFileSync(cachePath, '{"key":"torn-by-the-cra');
    const cache = await openPredictionCache(cachePath);
    // Batches 1-3 were written; batch 4 was in flight when the process died.
    expect(cache.loaded).toBe(12);
    expect(cache.warnings.map((w) => w.code)).toEqual(['VLIT_W_CACHE_LINE_SKIPPED']);
    const model = countingModel();
    const items = vqaItems.map((i) => ({ ...i, images: [] }));
    const resumed = await evaluate({ model, benchmarks: [createVqaBenchmark({ id: 'vqa', items })], cache });
    expect(model.calls).toBe(28);
    expect(resumed.benchmarks[0].metrics.accuracy).toBe(32 / 40);
    // The file is still valid JSONL after the repair: reopening reads every prediction.
    expect((await openPredictionCache(cachePath)).loaded).toBe(40);
  }, 30_000);
});

describe('reproducibility manifest', () => {
  const files = { weights: join(tmp, 'model.safetensors'), config: join(tmp, 'config.json') };
  writeFileSync(files.weights, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
  writeFileSync(files.config, '{"hidden_size": 64}');
  const template = '{% for m in messages %}{{ m.content }}{% endfor %}';
  const benchmarks = () => [
    createVqaBenchmark({ id: 'vqa', items: vqaItems.slice(0, 20) }),
    createCaptionBenchmark({
      id: 'captions',
      items: Array.from({ length: 5 }, (_, i) => ({
        id: `c${i}`,
        images: [`cap-${i}.png`],
        references: ['a man riding a red bus', 'two cats near the park', 'a dog on the street'],
      })),
    }),
  ];

  it('records every input, and a re-run from the saved manifest reproduces the scores', async () => {
    const describeModel = {
      files: await hashFiles(files),
      tokenizer: hashContent('{"model":{"vocab":{}}}'),
      template: hashContent(template),
      preprocessing: { size: 336, crop: 'center', mean: [0.48, 0.46, 0.41] },
    };
    const first = await evaluate({
      model: createPixelModel(),
      benchmarks: benchmarks(),
      loadImage,
      describeModel,
      decoding: { temperature: 0.7, seed: 42, maxNewTokens: 16 },
    });
    const m = first.manifest;
    expect(m.vlitVersion).toBe(VLIT_VERSION);
    expect(m.model.files.weights).toBe(
      createHash('sha256')
        .update(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]))
        .digest('hex'),
    );
    expect(m.template).toBe(createHash('sha256').update(template).digest('hex'));
    expect(m.preprocessing).toEqual({ crop: 'center', mean: [0.48, 0.46, 0.41], size: 336 });
    expect(Object.keys(m.model.files).sort()).toEqual(['config', 'weights']);
    expect(m.decoding).toEqual({ maxNewTokens: 16, seed: 42, temperature: 0.7 });
    expect(m.benchmarks.map((b) => [b.id, b.kind, b.items])).toEqual([
      ['vqa', 'vqa', 20],
      ['captions', 'caption', 5],
    ]);
    const saved = join(tmp, 'manifest.json');
    writeFileSync(saved, JSON.stringify(m, null, 2));

    // A fresh model object, a fresh cache, decoding taken from the manifest.
    const expectManifest = JSON.parse(readFileSync(saved, 'utf8')) as EvalManifest;
    const again = await evaluate({
      model: createPixelModel(),
      benchmarks: benchmarks(),
      loadImage,
      describeModel: { ...describeModel, files: await hashFiles(files) },
      expectManifest,
    });
    expect(again.manifestHash).toBe(first.manifestHash);
    expect(again.benchmarks).toEqual(first.benchmarks);

    // The seed matters: another seed changes the sampled replies...
    const other = await evaluate({
      model: createPixelModel(),
      benchmarks: benchmarks(),
      loadImage,
      describeModel,
      decoding: { temperature: 0.7, seed: 43, maxNewTokens: 16 },
    });
    expect(other.benchmarks[0].items.map((i) => i.output)).not.toEqual(first.benchmarks[0].items.map((i) => i.output));
    // ...so a run whose settings differ from the manifest refuses to start, naming what differs.
    const refused = await evaluate({
      model: createPixelModel(),
      benchmarks: benchmarks(),
      loadImage,
      describeModel,
      decoding: { temperature: 0.7, seed: 43, maxNewTokens: 16 },
      expectManifest,
    }).catch((e) => e);
    expect(isVlitError(refused, 'VLIT_COMPATIBILITY')).toBe(true);
    expect(refused.details.differences).toEqual(['decoding.seed']);
    writeFileSync(files.weights, Buffer.from([1, 2, 3, 4, 5, 6, 7, 9]));
    const changed = await evaluate({
      model: createPixelModel(),
      benchmarks: benchmarks(),
      loadImage,
      describeModel: { ...describeModel, files: await hashFiles(files) },
      expectManifest,
    }).catch((e) => e);
    expect(changed.details.differences).toEqual(['model.files.weights']);
    const fewer = await evaluate({ model: createPixelModel(), benchmarks: benchmarks().slice(0, 1), loadImage, describeModel, expectManifest }).catch((e) => e);
    expect(isVlitError(fewer, 'VLIT_COMPATIBILITY')).toBe(true);
  });

  it('hashes files as SHA-256 and the version matches package.json', async () => {
    const p = join(tmp, 'abc.txt');
    writeFileSync(p, 'abc');
    expect(await hashFiles({ f: p })).toEqual({ f: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' });
    expect(hashContent('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version).toBe(VLIT_VERSION);
  });
});
