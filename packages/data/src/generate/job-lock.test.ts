import { ConflictError, isVlitError, type VlitRecord } from '@vlit/core';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sceneImages, sceneReply } from './generation-fixture.js';
import { JOB_LOCK_FILE } from './job-lock.js';
import { recoverGenerationJob, generationJobFiles, runGenerationJob } from './node.js';
import { SELF_INSTRUCT_TYPES } from './prompt.js';
import { startFakeServer } from './test-server.js';

const KEY = 'sk-test-lock-0123456789';
const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'fixtures', 'generation-job-child.mjs');
const BUILT = join(here, '..', '..', 'dist', 'node.js');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vlit-lock-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const lines = async (path: string): Promise<string[]> => (existsSync(path) ? (await readFile(path, 'utf8')).split('\n').filter(Boolean) : []);
const idsIn = async (path: string): Promise<string[]> => (await lines(path)).map((l) => (JSON.parse(l) as { id: string }).id);

/** Every unit id of `count` scene images, as the generator names them. */
function allIds(dataset: string, count: number): string[] {
  const out: string[] = [];
  for (let n = 1; n <= count; n++) for (const type of SELF_INSTRUCT_TYPES) out.push(`${dataset}:img-${n}:${type}:0`);
  return out.sort();
}

/** A promise with its resolver, for holding the fake server's replies. */
function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** A pid that certainly belonged to a process which has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid!;
  await new Promise((r) => child.on('exit', r));
  return pid;
}

describe('one generation job per folder', () => {
  it('two real jobs started at once on the same folder: one refuses with VLIT_CONFLICT, the other writes every unit once', async () => {
    expect(existsSync(BUILT), 'build the package first (npx tsup): the child processes run dist/node.js').toBe(true);
    // Replies are held until one child has exited: if both took the folder, neither could finish
    // its first unit before the other refused, so the test would time out instead of passing.
    const firstExit = latch();
    const server = await startFakeServer({ apiKey: KEY, reply: sceneReply, gate: () => firstExit.promise });
    const outDir = join(work, 'raced');
    const count = 6;
    const imagesFile = join(work, 'race-images.json');
    await writeFile(imagesFile, JSON.stringify(sceneImages(count)));
    const configFile = join(work, 'race-config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        imagesFile,
        outDir,
        dataset: 'race',
        seed: 1,
        concurrency: 4,
        baseUrl: server.baseUrl,
        model: 'scripted',
        timeoutMs: 120_000,
        maxRetries: 2,
      }),
    );
    const run = () =>
      new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [CHILD, configFile], { env: { ...process.env, VLIT_TEST_API_KEY: KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => void (out += c));
        child.stderr.setEncoding('utf8').on('data', (c: string) => void (out += c));
        child.on('error', reject);
        child.on('exit', (code) => {
          firstExit.open();
          resolve({ code, out });
        });
      });
    const results = await Promise.all([run(), run()]);
    const refused = results.filter((r) => r.code === 3);
    const finished = results.filter((r) => r.code === 0);
    expect(refused, results.map((r) => r.out).join('\n---\n')).toHaveLength(1);
    expect(finished).toHaveLength(1);
    expect(refused[0].out).toMatch(/^error VLIT_CONFLICT .*in use by another generation job \(pid \d+ on /m);
    const summary = JSON.parse(/^summary (.*)$/m.exec(finished[0].out)![1]) as { planned: number; written: number; rejected: number; failed: number };
    expect(summary.planned).toBe(count * 3);
    expect(summary.written + summary.rejected).toBe(count * 3);
    const outputs = [...(await idsIn(join(outDir, 'records.jsonl'))), ...(await idsIn(join(outDir, 'rejects.jsonl')))];
    expect(outputs.sort()).toEqual(allIds('race', count));
    expect((await idsIn(join(outDir, 'done.log'))).sort()).toEqual(allIds('race', count));
    // The winner released its lock.
    expect(existsSync(join(outDir, JOB_LOCK_FILE))).toBe(false);
    await server.close();
  }, 300_000);

  it('in one process: a second job on a folder whose job is running gets ConflictError naming the lock and its holder', async () => {
    const hold = latch();
    const arrived = latch();
    const server = await startFakeServer({ apiKey: KEY, reply: sceneReply, gate: () => hold.promise, onRequest: () => arrived.open() });
    const endpoint = { baseURL: server.baseUrl, apiKey: KEY, timeoutMs: 120_000 };
    const outDir = join(work, 'held');
    const images = sceneImages(2);
    const first = runGenerationJob({ images, outDir, dataset: 'held', model: 'scripted', endpoint });
    await arrived.promise; // the first job holds the lock and waits on its first reply
    const lockText = JSON.parse(await readFile(join(outDir, JOB_LOCK_FILE), 'utf8')) as { pid: number; host: string; startedAt: string };
    expect(lockText).toMatchObject({ pid: process.pid, host: hostname() });
    expect(Number.isNaN(Date.parse(lockText.startedAt))).toBe(false);
    const err = await runGenerationJob({ images, outDir, dataset: 'held', model: 'scripted', endpoint }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConflictError);
    expect(isVlitError(err, 'VLIT_CONFLICT')).toBe(true);
    expect((err as ConflictError).details).toMatchObject({ file: join(outDir, JOB_LOCK_FILE), pid: process.pid });
    hold.open();
    expect(await first).toMatchObject({ planned: 6, written: 6, failed: 0 });
    expect(existsSync(join(outDir, JOB_LOCK_FILE))).toBe(false);
    // The refused job wrote nothing: each unit once.
    expect((await idsIn(join(outDir, 'records.jsonl'))).sort()).toEqual(allIds('held', 2));
    const again = await runGenerationJob({ images, outDir, dataset: 'held', model: 'scripted', endpoint });
    expect(again).toMatchObject({ planned: 6, alreadyDone: 6, written: 0 });
    await server.close();
  }, 120_000);

  it('a lock left by a dead process is taken over with a warning; one from another host is refused', async () => {
    const server = await startFakeServer({ apiKey: KEY, reply: sceneReply });
    const endpoint = { baseURL: server.baseUrl, apiKey: KEY, timeoutMs: 120_000 };
    const outDir = join(work, 'stale');
    await mkdir(outDir, { recursive: true });
    const pid = await deadPid();
    await writeFile(join(outDir, JOB_LOCK_FILE), `${JSON.stringify({ pid, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z', token: 'old' })}\n`);
    const summary = await runGenerationJob({ images: sceneImages(1), outDir, dataset: 'stale', model: 'scripted', endpoint });
    expect(summary).toMatchObject({ planned: 3, written: 3 });
    const stale = summary.warnings.filter((w) => w.code === 'VLIT_W_STALE_LOCK');
    expect(stale).toHaveLength(1);
    expect(stale[0].details).toMatchObject({ pid });
    expect(existsSync(join(outDir, JOB_LOCK_FILE))).toBe(false);

    await writeFile(
      join(outDir, JOB_LOCK_FILE),
      `${JSON.stringify({ pid, host: `not-${hostname()}`, startedAt: '2026-01-01T00:00:00.000Z', token: 'far' })}\n`,
    );
    await expect(runGenerationJob({ images: sceneImages(1), outDir, dataset: 'stale', model: 'scripted', endpoint })).rejects.toMatchObject({
      code: 'VLIT_CONFLICT',
    });
    // Refused, and the other host's lock is left in place.
    expect(JSON.parse(await readFile(join(outDir, JOB_LOCK_FILE), 'utf8'))).toMatchObject({ token: 'far' });
    await server.close();
  }, 120_000);
});

describe('recovery of a damaged job folder', () => {
  it('a done log with a half-written line, repeats and a cut last line, and repeated outputs, recover to one entry per unit', async () => {
    const server = await startFakeServer({ apiKey: KEY, reply: sceneReply });
    const endpoint = { baseURL: server.baseUrl, apiKey: KEY, timeoutMs: 120_000 };
    const clean = join(work, 'clean');
    await runGenerationJob({ images: sceneImages(2), outDir: clean, dataset: 'rec', model: 'scripted', endpoint, cacheDir: false });
    const records = await lines(join(clean, 'records.jsonl'));
    const ids = records.map((l) => (JSON.parse(l) as VlitRecord).id);
    expect(ids).toHaveLength(6);

    // What an unlocked concurrent run and a kill left: records 0-3 written, record 1 written twice;
    // the done log has record 0 six times, a half-written line that a later append completed with
    // another line, record 2 logged, a unit logged that has no output, and a cut last line.
    const outDir = join(work, 'damaged');
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'records.jsonl'), `${records[0]}\n${records[1]}\n${records[1]}\n${records[2]}\n${records[3]}\n`);
    const log = (id: string, status = 'record') => JSON.stringify({ id, status });
    await writeFile(
      join(outDir, 'done.log'),
      `${log(ids[0])}\n`.repeat(6) + `${log(ids[1]).slice(0, 15)}${log(ids[2])}\n${log(ids[2])}\n${log(ids[4])}\n${log(ids[3]).slice(0, 20)}`,
    );
    const warnings: import('@vlit/core').VlitWarning[] = [];
    const files = generationJobFiles(outDir, false);
    const done = await recoverGenerationJob(files, warnings);
    expect([...done].sort()).toEqual(ids.slice(0, 4).sort());
    // Exactly one line per finished unit in each file.
    expect((await idsIn(files.records)).sort()).toEqual(ids.slice(0, 4).sort());
    expect((await idsIn(files.doneLog)).sort()).toEqual(ids.slice(0, 4).sort());
    expect(await lines(files.records)).toEqual(records.slice(0, 4));
    expect(warnings.map((w) => w.code).sort()).toEqual(
      [
        'VLIT_W_JOB_BAD_LINE',
        'VLIT_W_JOB_DEDUPLICATED',
        'VLIT_W_JOB_LOG_DEDUPLICATED',
        'VLIT_W_JOB_LOST_OUTPUT',
        'VLIT_W_JOB_RELOGGED',
        'VLIT_W_PARTIAL_LINE',
      ].sort(),
    );
    // Recovering again finds nothing to repair.
    const second: import('@vlit/core').VlitWarning[] = [];
    await recoverGenerationJob(files, second);
    expect(second).toEqual([]);
    // And the resumed job completes the rest with no unit twice.
    const summary = await runGenerationJob({ images: sceneImages(2), outDir, dataset: 'rec', model: 'scripted', endpoint, cacheDir: false });
    expect(summary).toMatchObject({ planned: 6, alreadyDone: 4, written: 2 });
    expect((await idsIn(files.records)).sort()).toEqual([...ids].sort());
    expect((await idsIn(files.doneLog)).sort()).toEqual([...ids].sort());
    await server.close();
  }, 120_000);
});
