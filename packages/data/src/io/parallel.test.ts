// The parallel convertFile against the one-thread conversion (workers: 0), which the rest of this
// package's tests check against hand-worked files: the same output bytes, the same rejects and warnings
// in the same order, the same headers and counts, and the same typed error when there is no onReject.
// The files mix every kind of bad record (each shifts the counts later batches start from) and are
// several megabytes, so they span many batches, slices and read chunks.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { createRng, isVlitError, type VlitWarning } from '@vlit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMimicItDialect } from './dialects/mimicit.js';
import { convertFile, fileSource, type ConvertFileOptions } from './node.js';
import { convertRecordBatchesInParallel, parallelPlan } from './parallel.js';
import { convertRecordBatches, type ConversionStats, type RejectedRecord } from './records.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vlit-parallel-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const WORDS = 'the a dog cat é 中文 🙂 red blue near left behind table sky what where how many color is are'.split(' ');
const enc = new TextEncoder();

function sentence(rng: ReturnType<typeof createRng>, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rng.choice(WORDS));
  return out.join(' ');
}

/** LLaVA JSON array with bad records of every kind among good ones, and one record larger than a scan slice. */
function llavaFile(records: number): Uint8Array {
  const rng = createRng('parallel-llava');
  const parts: Uint8Array[] = [enc.encode('\ufeff[\n')];
  for (let i = 0; i < records; i++) {
    if (i) parts.push(enc.encode(i % 7 === 0 ? ',\r\n  ' : ','));
    const k = i % 211;
    let text: string;
    if (k === 3) text = `{"id": "bad-${i}", "conversations": 3}`;
    else if (k === 50) text = `{"id": "x${i}", oops}`;
    else if (k === 90) text = `${'['.repeat(1200)}${']'.repeat(1200)}`;
    else if (k === 120)
      text = `{"id": "path-${i}", "image": "../escape.jpg", "conversations": [{"from": "human", "value": "<image>\\nq?"}, {"from": "gpt", "value": "a"}]}`;
    else if (k === 150) text = '42';
    else {
      const big = i === 1234 ? sentence(rng, 60_000) : sentence(rng, 8 + rng.int(0, 12));
      const rec: Record<string, unknown> = { id: i % 509 === 0 ? i : `r${i}` };
      if (i % 5 !== 0) rec.image = i % 13 === 0 ? [`img/${i}.jpg`, `img/${i + 1}.jpg`] : `img/${i}.jpg`;
      const n = i % 13 === 0 && i % 5 !== 0 ? 2 : i % 5 !== 0 ? 1 : 0;
      rec.conversations = [
        { from: 'human', value: `${'<image>\n'.repeat(n)}${sentence(rng, 5)}?` },
        { from: 'gpt', value: big },
      ];
      if (i % 17 === 0) rec.extra = { note: sentence(rng, 3), n: i };
      text = JSON.stringify(rec);
    }
    if (k === 170) {
      // invalid UTF-8 inside a string
      const b = enc.encode(`{"id": "utf-${i}", "conversations": [{"from": "human", "value": "Z"}]}`);
      b[b.indexOf(0x5a)] = 0xff;
      parts.push(b);
    } else parts.push(enc.encode(text));
  }
  parts.push(enc.encode('\n]\n'));
  return Buffer.concat(parts);
}

/** Canonical JSON Lines: system prompts and extra turns (warnings when written to MIMIC-IT), repeated ids, bad lines. */
function vlitFile(records: number): Uint8Array {
  const rng = createRng('parallel-vlit');
  const lines: (string | Uint8Array)[] = [];
  for (let i = 0; i < records; i++) {
    const k = i % 173;
    if (k === 5) lines.push('{"id": "broken" ');
    else if (k === 40) lines.push('');
    else if (k === 60) lines.push(`{"id": "long-${i}", "images": [], "messages": [{"role": "user", "content": "${'x'.repeat(40_000)}"}]}`);
    else if (k === 80) lines.push(`{"id": "invalid-${i}", "images": [], "messages": []}`);
    else if (k === 100) {
      const b = enc.encode(`{"id": "utf-${i}", "images": [], "messages": [{"role": "user", "content": "Z"}]}`);
      b[b.indexOf(0x5a)] = 0xc3;
      lines.push(b);
    } else {
      const messages: { role: string; content: string }[] = [];
      if (i % 3 === 0) messages.push({ role: 'system', content: sentence(rng, 4) });
      messages.push({ role: 'user', content: `<image>\n${sentence(rng, 6)}?` });
      messages.push({ role: 'assistant', content: sentence(rng, 10 + rng.int(0, 10)) });
      if (i % 4 === 0) messages.push({ role: 'user', content: `${sentence(rng, 4)}?` }, { role: 'assistant', content: sentence(rng, 6) });
      // every 997th record repeats the id of one far before it: MIMIC-IT keys records by id
      const id = i % 997 === 996 ? `v${i - 900}` : `v${i}`;
      lines.push(JSON.stringify({ id, images: [`img/${i}.jpg`], messages, task: i % 2 ? 'vqa' : undefined }));
    }
  }
  return Buffer.concat(lines.map((l, i) => Buffer.concat([typeof l === 'string' ? enc.encode(l) : l, enc.encode(i % 9 === 0 ? '\r\n' : '\n')])));
}

/** A MIMIC-IT instructions file: `meta` before and after `data`, repeated and bad entries. */
function mimicFile(records: number): Uint8Array {
  const rng = createRng('parallel-mimic');
  const entries: string[] = [];
  for (let i = 0; i < records; i++) {
    const key = i % 631 === 630 ? `LA_${i - 500}` : `LA_${i}`;
    const value =
      i % 151 === 7
        ? '{"instruction": 5}'
        : JSON.stringify({ instruction: `${sentence(rng, 6)}?`, answer: sentence(rng, 12), image_ids: [`LA_IMG_${i}`], rel_ins_ids: [] });
    entries.push(`${JSON.stringify(key)}: ${value}`);
  }
  return enc.encode(`{"meta": {"version": "0.0.1", "time": "2023-06"}, "data": {\n${entries.join(',\n')}\n}, "tail": [1, 2]}`);
}

interface Outcome {
  stats?: ConversionStats;
  text?: string;
  rejects: RejectedRecord[];
  warnings: VlitWarning[];
  headers: [string, unknown][];
  error?: { name: string; code: string; message: string; details: unknown };
}

let runs = 0;
async function convert(
  input: string,
  options: Omit<ConvertFileOptions, 'input' | 'output'>,
  workers: number,
  keepRejects = true,
  failAtWarning = Number.POSITIVE_INFINITY,
): Promise<Outcome> {
  const out: Outcome = { rejects: [], warnings: [], headers: [] };
  const output = path.join(dir, `out-${runs++}`);
  try {
    out.stats = await convertFile({
      ...options,
      input,
      output,
      workers,
      onReject: keepRejects ? (r) => out.rejects.push(r) : undefined,
      onWarning: (w) => {
        if (out.warnings.push(w) >= failAtWarning) throw new Error(`warning sink full at ${out.warnings.length}`);
      },
      onHeader: (k, v) => out.headers.push([k, v]),
    });
    out.text = await readFile(output, 'utf8');
  } catch (err) {
    const e = err as Error & { code?: string; details?: unknown };
    out.error = { name: e.constructor.name, code: isVlitError(err) ? err.code : String(e.code), message: e.message, details: e.details };
  }
  return out;
}

/** Short form of a value for failure messages (record texts are tens of kilobytes). */
function short(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null, (_k, v) => (typeof v === 'string' && v.length > 120 ? `${v.slice(0, 120)}...(${v.length} chars)` : v)));
}

/** `got` equals `want` in every part, and a failure names the first item that differs without printing whole files. */
function expectSame(got: Outcome, want: Outcome): void {
  expect(short(got.error)).toEqual(short(want.error));
  expect(got.stats).toEqual(want.stats);
  expect(got.headers).toEqual(want.headers);
  for (const key of ['rejects', 'warnings'] as const) {
    const at = got[key].findIndex((x, i) => !isDeepStrictEqual(x, want[key][i]));
    if (at >= 0) expect({ key, at, item: short(got[key][at]) }).toEqual({ key, at, item: short(want[key][at]) });
    expect(got[key].length).toBe(want[key].length);
  }
  if (got.text !== want.text) {
    const a = got.text ?? '';
    const b = want.text ?? '';
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    expect({ at: i, got: a.slice(Math.max(0, i - 80), i + 80) }).toEqual({ at: i, got: b.slice(Math.max(0, i - 80), i + 80) });
  }
}

async function inputFile(name: string, bytes: Uint8Array): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return file;
}

describe('convertFile on worker threads', () => {
  it('builds a plan only for dialects that can be rebuilt from data', () => {
    expect(parallelPlan('llava', 'vlit', 2)?.workers).toBe(Math.min(2, availableParallelism()));
    expect(parallelPlan('llava', 'vlit', 0)).toBeUndefined();
    // a raised maxDepth: how deep a record may go before a stack overflow would depend on the thread
    expect(parallelPlan('llava', 'vlit', 2, { maxDepth: 5000 })).toBeUndefined();
    expect(parallelPlan('llava', 'vlit', 1_000_000)?.workers).toBeLessThanOrEqual(availableParallelism());
    expect(parallelPlan(createMimicItDialect(), 'vlit', 1)?.from).toEqual({ kind: 'mimicit' });
    expect(parallelPlan(createMimicItDialect({ imagePath: (id) => `x/${id}.png` }), 'vlit', 1)).toBeUndefined();
    expect(
      parallelPlan(
        { name: 'custom', layout: { kind: 'array' }, decode: () => ({ id: 'x', images: [], messages: [] }), encode: () => ({ native: {} }) },
        'vlit',
        1,
      ),
    ).toBeUndefined();
  });

  it('LLaVA JSON array to every target: same output, rejects, warnings and counts as one thread', async () => {
    const input = await inputFile('llava.json', llavaFile(12_000));
    for (const [to, toContainer] of [
      ['vlit', 'jsonl'],
      ['sharegpt', 'json'],
      ['openai', 'jsonl'],
    ] as const) {
      const one = await convert(input, { from: 'llava', to, toContainer, dataset: 'mix' }, 0);
      expect(one.stats!.rejected).toBeGreaterThan(200);
      expect(one.stats!.read).toBe(12_000);
      for (const workers of [1, 2]) expectSame(await convert(input, { from: 'llava', to, toContainer, dataset: 'mix' }, workers), one);
    }
  });

  it('canonical JSON Lines to MIMIC-IT (warnings, repeated keys) and to LLaVA, over-long lines: same as one thread', async () => {
    const input = await inputFile('vlit.jsonl', vlitFile(9_000));
    for (const to of ['mimicit', 'llava'] as const) {
      const options = { from: 'vlit', to, maxValueBytes: 32 * 1024, header: { meta: { version: 'x' } } } as const;
      const one = await convert(input, options, 0);
      expect(one.warnings.length).toBeGreaterThan(1000);
      expect(one.rejects.some((r) => r.truncated)).toBe(true);
      if (to === 'mimicit') expect(one.rejects.some((r) => r.reason.startsWith('duplicate record id'))).toBe(true);
      for (const workers of [1, 3]) expectSame(await convert(input, options, workers), one);
    }
  });

  it('a MIMIC-IT map with headers around it, and the images checked under a root: same as one thread', async () => {
    const input = await inputFile('mimic.json', mimicFile(8_000));
    const one = await convert(input, { from: 'mimicit', to: 'vlit' }, 0);
    expect(one.headers.map(([k]) => k)).toEqual(['meta', 'tail']);
    expectSame(await convert(input, { from: 'mimicit', to: 'vlit' }, 2), one);
    const llava = await inputFile('llava-root.json', llavaFile(3_000));
    const rooted = await convert(llava, { from: 'llava', to: 'vlit', root: dir }, 0);
    expect(rooted.rejects.some((r) => r.code === 'VLIT_PATH_ESCAPE')).toBe(true);
    expectSame(await convert(llava, { from: 'llava', to: 'vlit', root: dir }, 2), rooted);
  });

  it('without onReject the first bad record throws the same typed error', async () => {
    const input = await inputFile('llava-throw.json', llavaFile(4_000));
    const one = await convert(input, { from: 'llava', to: 'vlit' }, 0, false);
    expect(one.error?.code).toBe('VLIT_VALIDATION');
    expectSame(await convert(input, { from: 'llava', to: 'vlit' }, 2, false), one);
  });

  it('the conversion stops at the same point as on one thread: a value over maxValueBytes, a broken structure, an onWarning that throws', async () => {
    // the records of a file without its closing bracket, then a record of 500 KB (over a maxValueBytes
    // of 350 KB; the file's largest good record is 300 KB), or a broken structure; where the scanner stops depends on how the file is sliced
    const text = Buffer.from(llavaFile(3_000))
      .toString('utf8')
      .replace(/\n\]\n$/, '');
    const big = `{"id": "big", "conversations": [{"from": "human", "value": "${'y'.repeat(500_000)}"}]}`;
    const overLong = await inputFile('llava-over-long.json', enc.encode(`${text},\n${big}\n]\n`));
    const broken = await inputFile('llava-broken.json', enc.encode(`${text},\n{"id": "x"}]]\n`));
    for (const input of [overLong, broken]) {
      const one = await convert(input, { from: 'llava', to: 'vlit', maxValueBytes: 350_000 }, 0);
      expect(one.error?.code).toBe('VLIT_FORMAT');
      expect(one.rejects.length).toBeGreaterThan(10);
      expectSame(await convert(input, { from: 'llava', to: 'vlit', maxValueBytes: 350_000 }, 2), one);
    }
    const jsonl = await inputFile('vlit-warn.jsonl', vlitFile(4_000));
    const one = await convert(jsonl, { from: 'vlit', to: 'mimicit' }, 0, true, 700);
    expect(one.error?.message).toBe('warning sink full at 700');
    expectSame(await convert(jsonl, { from: 'vlit', to: 'mimicit' }, 2, true, 700), one);
  });

  it('workers that die: every batch is converted again on the calling thread, output unchanged', async () => {
    const input = await inputFile('llava-dead.json', llavaFile(5_000));
    const dead = await inputFile('dead-worker.mjs', enc.encode("throw new Error('this worker dies at start');\n"));
    const collect = async (batches: AsyncIterable<readonly (string | Uint8Array)[]>): Promise<string> => {
      const pieces: Buffer[] = [];
      for await (const batch of batches) for (const p of batch) pieces.push(typeof p === 'string' ? Buffer.from(p) : Buffer.from(p));
      return Buffer.concat(pieces).toString('utf8');
    };
    const options = { from: 'llava', to: 'vlit', file: input, onReject: () => undefined } as const;
    const stats: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 };
    const want = await collect(convertRecordBatches(fileSource(input), options, stats));
    const plan = { ...parallelPlan('llava', 'vlit', 2)!, script: pathToFileURL(dead) };
    const got: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 };
    expect(await collect(convertRecordBatchesInParallel(fileSource(input), options, got, plan))).toBe(want);
    expect(got).toEqual(stats);
  });
});
