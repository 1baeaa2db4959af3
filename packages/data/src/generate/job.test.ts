import { createRng, vlitRecordSchema, type VlitRecord } from '@vlit/core';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sceneImages, sceneOf, sceneReply } from './generation-fixture.js';
import { runGenerationJob } from './node.js';
import { SELF_INSTRUCT_TYPES } from './prompt.js';
import { startFakeServer, type FakeServer } from './test-server.js';

const KEY = 'sk-live-DO-NOT-LOG-9f8e7d6c5b4a';
const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'fixtures', 'generation-job-child.mjs');
const BUILT = join(here, '..', '..', 'dist', 'node.js');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vlit-gen-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const lines = async (path: string): Promise<string[]> => (existsSync(path) ? (await readFile(path, 'utf8')).split('\n').filter(Boolean) : []);

/** Every file under dir, recursively, as text. */
async function allText(dir: string): Promise<string> {
  let text = '';
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) text += await readFile(join(entry.parentPath, entry.name), 'utf8');
  }
  return text;
}

/** Expected unit ids: every image x type; dialogue of scenes divisible by 7 is refused by the model. */
function expectedIds(dataset: string, count: number) {
  const records: string[] = [];
  const rejects: string[] = [];
  for (let n = 1; n <= count; n++) {
    for (const type of SELF_INSTRUCT_TYPES) {
      const id = `${dataset}:img-${n}:${type}:0`;
      (type === 'dialogue' && n % 7 === 0 ? rejects : records).push(id);
    }
  }
  return { records, rejects };
}

function checkOnce(ids: string[], expected: string[]): void {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  expect([...counts.entries()].filter(([, c]) => c !== 1)).toEqual([]);
  expect([...counts.keys()].sort()).toEqual([...expected].sort());
}

describe('resumable generation job', () => {
  it('survives repeated SIGKILLs against a faulty local server: every record exactly once', async () => {
    expect(existsSync(BUILT), 'build the package first (npx tsup): the child process runs dist/node.js').toBe(true);
    const server = await startFakeServer({
      apiKey: KEY,
      seed: 5,
      faults: { '429': 0.15, '500': 0.15, slow: 0.08, malformed: 0.1, 'no-choices': 0.02 },
      retryAfter: '0',
      // Slow replies outlast the client's 800 ms timeout by far, so a loaded machine's normal replies do not.
      slowMs: 3000,
      reply: sceneReply,
    });
    const outDir = join(work, 'killed');
    const count = 24;
    const imagesFile = join(work, 'images.json');
    await writeFile(imagesFile, JSON.stringify(sceneImages(count)));
    const configFile = join(work, 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        imagesFile,
        outDir,
        dataset: 'gen',
        seed: 3,
        concurrency: 4,
        baseUrl: server.baseUrl,
        model: 'scripted',
        timeoutMs: 800,
        maxRetries: 8,
      }),
    );
    const expected = expectedIds('gen', count);
    const total = expected.records.length + expected.rejects.length;
    const rng = createRng(Number(process.env.VLIT_KILL_TEST_SEED ?? 20240611));
    let childOutput = '';

    const runChild = (killAfter?: { progress: number; delayMs: number }) =>
      new Promise<{ code: number | null; signal: NodeJS.Signals | null; progressed: number }>((resolve, reject) => {
        const child = spawn(process.execPath, [CHILD, configFile], { env: { ...process.env, VLIT_TEST_API_KEY: KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
        let progressed = 0;
        let armed = false;
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          childOutput += chunk;
          progressed += (chunk.match(/^progress /gm) ?? []).length;
          if (killAfter && !armed && progressed >= killAfter.progress) {
            armed = true;
            setTimeout(() => child.kill('SIGKILL'), killAfter.delayMs);
          }
        });
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (childOutput += chunk));
        child.on('error', reject);
        child.on('exit', (code, signal) => resolve({ code, signal, progressed }));
      });

    const kills = 4;
    for (let k = 0; k < kills; k++) {
      const done = (await lines(join(outDir, 'done.log'))).length;
      // Kill after a random number of finished units (leaving work undone), plus a random few ms,
      // so the kill lands anywhere: mid-request, mid-write, between output and ledger.
      const remaining = total - done;
      const result = await runChild({ progress: rng.int(1, Math.max(2, Math.floor(remaining / (kills - k + 1)))), delayMs: rng.int(0, 30) });
      expect(result.signal, `run ${k} should be killed midway:\n${childOutput}`).toBe('SIGKILL');
      const written = (await lines(join(outDir, 'records.jsonl'))).length + (await lines(join(outDir, 'rejects.jsonl'))).length;
      expect(written).toBeLessThan(total);
      if (process.env.VLIT_KILL_TEST_DEBUG) console.log(`run ${k}: progressed ${result.progressed}, finished ${written}/${total}`);
    }
    const final = await runChild();
    expect(final.code, childOutput).toBe(0);
    const summary = JSON.parse(/^summary (.*)$/m.exec(childOutput)?.[1] ?? 'null');
    expect(summary.failed).toBe(0);
    expect(summary.planned).toBe(total);
    expect(summary.alreadyDone + summary.written + summary.rejected).toBe(total);
    expect(summary.alreadyDone).toBeGreaterThan(0);

    const recordLines = await lines(join(outDir, 'records.jsonl'));
    const records = recordLines.map((l) => JSON.parse(l) as VlitRecord);
    checkOnce(
      records.map((r) => r.id),
      expected.records,
    );
    for (const r of records) {
      expect(vlitRecordSchema.safeParse(r).success).toBe(true);
      const n = sceneOf(r.id);
      // The content belongs to this record's own image: no cross-wiring between concurrent units.
      expect(r.metadata?.imageId).toBe(`img-${n}`);
      expect(r.messages.map((m) => String(m.content)).join('\n')).toContain(`scene ${n}`);
      const gen = r.metadata?.generation as Record<string, unknown>;
      expect(gen.model).toBe('scripted');
      expect(gen.promptHash).toMatch(/^[0-9a-f]{64}$/);
      expect(typeof gen.seed).toBe('number');
      expect(Number.isNaN(Date.parse(String(gen.time)))).toBe(false);
      expect(r.source).toEqual({ dataset: 'gen', originalId: `img-${n}`, method: 'self-instruct' });
    }
    const rejects = (await lines(join(outDir, 'rejects.jsonl'))).map((l) => JSON.parse(l) as { id: string; raw: string; reason: string });
    checkOnce(
      rejects.map((r) => r.id),
      expected.rejects,
    );
    for (const r of rejects) {
      expect(r.raw).toBe("I'm sorry, but I can't help with that.");
      expect(r.reason).toMatch(/no labelled turns/);
    }
    checkOnce(
      (await lines(join(outDir, 'done.log'))).map((l) => (JSON.parse(l) as { id: string }).id),
      [...expected.records, ...expected.rejects],
    );
    // The faults really happened.
    for (const fault of ['429', '500', 'slow', 'malformed'] as const) expect(server.faultsServed[fault]).toBeGreaterThan(0);
    // The key never reaches any file or the child's output.
    expect(await allText(outDir)).not.toContain(KEY);
    expect(childOutput).not.toContain(KEY);
    await server.close();
  }, 120_000);

  it('repairs partial last lines and outputs missing from the done log, reusing cached replies', async () => {
    const server = await startFakeServer({ apiKey: KEY, reply: sceneReply });
    const endpoint = { baseURL: server.baseUrl, apiKey: KEY };
    const images = sceneImages(4);
    const cacheDir = join(work, 'shared-cache');
    const first = await runGenerationJob({ images, outDir: join(work, 'whole'), dataset: 'gen', model: 'scripted', endpoint, cacheDir });
    expect(first).toMatchObject({ planned: 12, written: 12, rejected: 0, failed: 0 });
    const whole = await lines(join(work, 'whole', 'records.jsonl'));

    // What a kill can leave: two complete records, the first of them logged, then half of the third
    // record line; and a done log whose last line was cut.
    const outDir = join(work, 'repaired');
    await rm(outDir, { recursive: true, force: true });
    await runGenerationJob({ images: [], outDir, dataset: 'gen', model: 'scripted', endpoint });
    await writeFile(join(outDir, 'records.jsonl'), `${whole[0]}\n${whole[1]}\n${whole[2].slice(0, 40)}`);
    const firstId = (JSON.parse(whole[0]) as VlitRecord).id;
    await writeFile(join(outDir, 'done.log'), `${JSON.stringify({ id: firstId, status: 'record' })}\n{"id":"gen:im`);
    const requestsBefore = server.requests;
    const second = await runGenerationJob({ images, outDir, dataset: 'gen', model: 'scripted', endpoint, cacheDir });
    expect(second).toMatchObject({ planned: 12, alreadyDone: 2, written: 10, failed: 0 });
    expect(second.warnings.map((w) => w.code).sort()).toEqual(['VLIT_W_JOB_RELOGGED', 'VLIT_W_PARTIAL_LINE', 'VLIT_W_PARTIAL_LINE']);
    // Every reply came from the shared cache.
    expect(server.requests).toBe(requestsBefore);
    const after = await lines(join(outDir, 'records.jsonl'));
    expect(after.slice(0, 2)).toEqual(whole.slice(0, 2));
    checkOnce(
      after.map((l) => (JSON.parse(l) as VlitRecord).id),
      whole.map((l) => (JSON.parse(l) as VlitRecord).id),
    );
    checkOnce(
      (await lines(join(outDir, 'done.log'))).map((l) => (JSON.parse(l) as { id: string }).id),
      whole.map((l) => (JSON.parse(l) as VlitRecord).id),
    );
    const cached = after.map((l) => (JSON.parse(l) as VlitRecord).metadata?.generation as { cached: boolean });
    expect(cached.slice(2).every((g) => g.cached)).toBe(true);
    await server.close();
  }, 30_000);

  it('leaves units whose requests keep failing undone, and a rerun completes them; bad inputs are rejected', async () => {
    const down = await startFakeServer({ apiKey: KEY, faults: { '500': 1 }, maxFaultsPerPrompt: 1000, reply: sceneReply });
    const outDir = join(work, 'outage');
    const images = [...sceneImages(2), { imageId: 'broken', file: 'x.jpg', width: 0, height: 10 }];
    const progress: number[] = [];
    const failing = await runGenerationJob({
      images,
      outDir,
      dataset: 'gen',
      concurrency: 2,
      model: 'scripted',
      endpoint: { baseURL: down.baseUrl, apiKey: KEY, maxRetries: 1, backoff: { initialMs: 1, maxMs: 2 } },
      onProgress: (e) => progress.push(e.total ?? -1),
    });
    expect(failing).toMatchObject({ planned: 7, written: 0, rejected: 1, failed: 6 });
    expect(failing.failures[0].message).not.toContain(KEY);
    expect(progress).toEqual([7]);
    const badLine = JSON.parse((await lines(join(outDir, 'rejects.jsonl')))[0]) as { id: string; reason: string; imageId: string };
    expect(badLine).toMatchObject({ id: 'gen:invalid-input:2', imageId: 'broken' });
    expect(badLine.reason).toMatch(/field width/);
    await down.close();

    const up = await startFakeServer({ apiKey: KEY, reply: sceneReply });
    const rerun = await runGenerationJob({ images, outDir, dataset: 'gen', model: 'scripted', endpoint: { baseURL: up.baseUrl, apiKey: KEY } });
    expect(rerun).toMatchObject({ planned: 7, alreadyDone: 1, written: 6, rejected: 0, failed: 0 });
    await up.close();
  }, 30_000);
});
