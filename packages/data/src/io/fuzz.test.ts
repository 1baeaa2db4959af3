// Reader fault injection: seeded valid files of every dialect, mutated (truncations, byte flips, wrong
// types, invalid UTF-8, BOMs, deep nesting, huge strings, JSON/JSONL confusion, garbage), each read by
// the built package in a worker thread under a per-case watchdog. Every case must end as ok or as a
// typed error: never a crash (any other throw) or a hang (the watchdog fired); and every case's counts
// must add up (read = written + rejected, as seen by the rejects callback and in the output).
import { createRng, type Rng, type VlitRecord } from '@vlit/core';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { writeRecords, type DialectName } from './records.js';

const here = dirname(fileURLToPath(import.meta.url));
const WORKER = join(here, 'fixtures', 'fuzz-worker.mjs');
const BUILT = join(here, '..', '..', 'dist', 'index.js');
/** A case that takes this long is a hang. Generous: a case takes milliseconds, even on a busy machine. */
const WATCHDOG_MS = 60_000;
const SEED = Number(process.env.VLIT_FUZZ_SEED ?? 20261206);

type Reader = DialectName | 'coco-captions' | 'vqav2' | 'selftest-hang' | 'selftest-crash';
interface FuzzCase {
  id: number;
  reader: Reader;
  mutation: string;
  bytes: Uint8Array;
  /** Second file (VQAv2 annotations). */
  extra?: Uint8Array;
  container?: 'json' | 'jsonl';
  maxValueBytes?: number;
  /** Chunk sizes the bytes are fed in (cycled). */
  chunks: number[];
  /** Records the unmutated seed holds: such a case must read exactly these. */
  expectRead?: number;
}
interface FuzzResult {
  id: number;
  kind: 'ok' | 'typed' | 'crash' | 'hang';
  code?: string;
  message?: string;
  read: number;
  written: number;
  rejected: number;
  rejectsSeen: number;
  outputLines: number;
}

const enc = new TextEncoder();
/** A seeded integer in [lo, hi], both ends included. */
const int = (r: Rng, lo: number, hi: number): number => r.int(lo, hi + 1);
const WORDS = ['dog', 'cat', 'bench', 'grass', 'red', 'two', 'why', 'café', '🌳', '猫', 'quote"s', 'back\\slash', 'line\nbreak', 'tab\there', '<b>'];

/** Canonical seed records: images, several turns, unicode, escapes, a system prompt now and then. */
function seedRecords(rng: Rng, n: number): VlitRecord[] {
  const sentence = (k: number) => Array.from({ length: k }, () => WORDS[int(rng, 0, WORDS.length - 1)]).join(' ');
  return Array.from({ length: n }, (_, i) => {
    const images = Array.from({ length: int(rng, 0, 2) }, (_, j) => `images/${i}-${j}.jpg`);
    const messages: VlitRecord['messages'] = [];
    if (rng.float() < 0.3) messages.push({ role: 'system', content: sentence(4) });
    const turns = int(rng, 1, 3);
    for (let t = 0; t < turns; t++) {
      const marker = t === 0 ? '<image>\n'.repeat(images.length) : '';
      messages.push({ role: 'user', content: `${marker}${sentence(int(rng, 2, 8))}?` }, { role: 'assistant', content: sentence(int(rng, 1, 12)) });
    }
    const record: VlitRecord = { id: `rec-${i}`, images, messages };
    if (rng.float() < 0.5) record.task = ['global', 'negative', 'region'][int(rng, 0, 2)];
    return record;
  });
}

async function textOf(chunks: AsyncIterable<string>): Promise<string> {
  let s = '';
  for await (const c of chunks) s += c;
  return s;
}

/** The records of a parsed file and a way to put them back (same container). */
function recordsOf(reader: Reader, container: 'json' | 'jsonl' | undefined, text: string): { items: unknown[]; back: (items: string[]) => string } {
  if (container === 'jsonl')
    return {
      items: text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
      back: (xs) => `${xs.join('\n')}\n`,
    };
  const v = JSON.parse(text) as Record<string, unknown> | unknown[];
  if (Array.isArray(v)) return { items: v, back: (xs) => `[\n${xs.join(',\n')}\n]\n` };
  const key = reader === 'mimicit' ? 'data' : reader === 'review' || reader === 'coco-captions' ? 'annotations' : 'questions';
  const inner = v[key];
  if (Array.isArray(inner)) {
    const head = { ...v };
    delete head[key];
    return {
      items: inner,
      back: (xs) => `${JSON.stringify(head).slice(0, -1)}${Object.keys(head).length ? ',' : ''}${JSON.stringify(key)}: [\n${xs.join(',\n')}\n]}\n`,
    };
  }
  const entries = Object.entries(inner as Record<string, unknown>);
  const head = { ...v };
  delete head[key];
  return {
    items: entries.map(([, x]) => x),
    back: (xs) =>
      `${JSON.stringify(head).slice(0, -1)}${Object.keys(head).length ? ',' : ''}${JSON.stringify(key)}: {\n${xs.map((x, i) => `${JSON.stringify(entries[i][0])}: ${x}`).join(',\n')}\n}}\n`,
  };
}

const SENTINEL = 'FUZZ-SENTINEL-7f3a';

/** Replace one random node inside one random record with raw JSON text `make(old)`. */
function replaceNode(rng: Rng, reader: Reader, container: 'json' | 'jsonl' | undefined, text: string, make: (old: unknown) => string): string {
  const { items, back } = recordsOf(reader, container, text);
  if (items.length === 0) return text;
  const at = int(rng, 0, items.length - 1);
  const copy = structuredClone(items[at]);
  // Walk down a random path; stop at a random depth or at a leaf.
  let parent: Record<string, unknown> | unknown[] | undefined;
  let key: string | number | undefined;
  let node: unknown = copy;
  while (typeof node === 'object' && node !== null && (parent === undefined || rng.float() < 0.75)) {
    const keys: Array<string | number> = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    parent = node as Record<string, unknown> | unknown[];
    key = keys[int(rng, 0, keys.length - 1)];
    node = (parent as Record<string | number, unknown>)[key];
  }
  const replacement = make(node);
  let serialised: string;
  if (parent === undefined || key === undefined) serialised = replacement;
  else {
    (parent as Record<string | number, unknown>)[key] = SENTINEL;
    serialised = JSON.stringify(copy).replace(JSON.stringify(SENTINEL), () => replacement);
  }
  return back(items.map((x, i) => (i === at ? serialised : JSON.stringify(x))));
}

/** JSON text of a value of another type than `old`. */
function otherType(rng: Rng, old: unknown): string {
  const options = ['17', '-0.5', '"text"', '""', 'null', 'true', '[]', '[1,"a",null]', '{}', '{"from":"human"}'];
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  const fits = options.filter((o) => kind(JSON.parse(o)) !== kind(old));
  return fits[int(rng, 0, fits.length - 1)];
}

const INVALID_UTF8 = [[0xff], [0xc3, 0x28], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x8c], [0xfe, 0xfe]];

function insertBytes(bytes: Uint8Array, at: number, ins: number[]): Uint8Array {
  const out = new Uint8Array(bytes.length + ins.length);
  out.set(bytes.subarray(0, at), 0);
  out.set(ins, at);
  out.set(bytes.subarray(at), at + ins.length);
  return out;
}

function chunkSizes(rng: Rng): number[] {
  const pick = int(rng, 0, 3);
  if (pick === 0) return [1 << 20];
  if (pick === 1) return [1, 2, 3, 5, 7];
  return Array.from({ length: 8 }, () => int(rng, 1, 4096));
}

async function buildCases(): Promise<FuzzCase[]> {
  const rng = createRng(SEED);
  const cases: FuzzCase[] = [];
  // Tiny chunks only for small files: a few MB fed a byte at a time measures the generator, not the reader.
  const add = (c: Omit<FuzzCase, 'id' | 'chunks'>, r: Rng) =>
    cases.push({ ...c, id: cases.length, chunks: c.bytes.length > 1 << 18 ? [65_537, 1 << 20] : chunkSizes(r) });
  const targets: Array<{ reader: DialectName; container?: 'json' | 'jsonl' }> = [];
  for (const d of ['vlit', 'llava', 'sharegpt', 'alpaca', 'openai'] as const) targets.push({ reader: d, container: 'jsonl' }, { reader: d, container: 'json' });
  targets.push({ reader: 'mimicit' }, { reader: 'review' });

  for (const t of targets) {
    const r = rng.fork(`${t.reader}/${t.container ?? 'object'}`);
    const records = seedRecords(r, 6);
    const text = await textOf(
      writeRecords(records, {
        dialect: t.reader,
        ...(t.container ? { container: t.container } : {}),
        header:
          t.reader === 'review' ? { image_source: 'MSCOCO2014', construction_time: '2023' } : t.reader === 'mimicit' ? { meta: { version: '1' } } : undefined,
      }),
    );
    const bytes = enc.encode(text);
    const base = { reader: t.reader, container: t.container } as const;
    add({ ...base, mutation: 'seed', bytes, expectRead: records.length }, r);
    for (let k = 0; k < 4; k++) add({ ...base, mutation: 'truncation', bytes: bytes.slice(0, int(r, 0, bytes.length - 1)) }, r);
    for (let k = 0; k < 5; k++) {
      const b = bytes.slice();
      for (let f = int(r, 1, 4); f > 0; f--) b[int(r, 0, b.length - 1)] = int(r, 0, 255);
      add({ ...base, mutation: 'byte-flip', bytes: b }, r);
    }
    for (let k = 0; k < 5; k++)
      add({ ...base, mutation: 'wrong-type', bytes: enc.encode(replaceNode(r, t.reader, t.container, text, (old) => otherType(r, old))) }, r);
    for (let k = 0; k < 4; k++)
      add({ ...base, mutation: 'invalid-utf8', bytes: insertBytes(bytes, int(r, 0, bytes.length), INVALID_UTF8[int(r, 0, INVALID_UTF8.length - 1)]) }, r);
    add({ ...base, mutation: 'bom-start', bytes: insertBytes(bytes, 0, [0xef, 0xbb, 0xbf]) }, r);
    add({ ...base, mutation: 'bom-inside', bytes: insertBytes(bytes, int(r, 1, bytes.length), [0xef, 0xbb, 0xbf]) }, r);
    for (const depth of [1500, 100_000]) {
      const open = r.float() < 0.5 ? ['[', ']'] : ['{"a":', '}'];
      add(
        {
          ...base,
          mutation: `deep-${depth}`,
          bytes: enc.encode(replaceNode(r, t.reader, t.container, text, () => `${open[0].repeat(depth)}1${open[1].repeat(depth)}`)),
        },
        r,
      );
    }
    add(
      {
        ...base,
        mutation: 'huge-string',
        bytes: enc.encode(replaceNode(r, t.reader, t.container, text, () => JSON.stringify('é'.repeat(int(r, 1, 2) << 20)))),
      },
      r,
    );
    add(
      {
        ...base,
        mutation: 'huge-string-capped',
        maxValueBytes: 1 << 20,
        bytes: enc.encode(replaceNode(r, t.reader, t.container, text, () => JSON.stringify('x'.repeat(3 << 20)))),
      },
      r,
    );
    // JSON/JSONL confusion: the other container named, a pretty-printed file, lines of a wrapped file's records.
    if (t.container) add({ ...base, mutation: 'container-swapped', container: t.container === 'json' ? 'jsonl' : 'json', bytes }, r);
    add({ ...base, mutation: 'pretty-printed', bytes: enc.encode(JSON.stringify(recordsOf(t.reader, t.container, text).items, null, 2)) }, r);
    add(
      {
        ...base,
        mutation: 'records-as-jsonl',
        container: t.container ? 'jsonl' : undefined,
        bytes: enc.encode(
          `${recordsOf(t.reader, t.container, text)
            .items.map((x) => JSON.stringify(x))
            .join('\n')}\n`,
        ),
      },
      r,
    );
    add({ ...base, mutation: 'garbage', bytes: Uint8Array.from({ length: int(r, 1, 600) }, () => int(r, 0, 255)) }, r);
  }

  // The COCO captions and VQAv2 joins (crash/hang only: their counts are per image, not per entry).
  const r = rng.fork('coco');
  const coco = JSON.stringify({
    images: Array.from({ length: 5 }, (_, i) => ({ id: i + 1, file_name: `COCO_train2014_${String(i + 1).padStart(12, '0')}.jpg`, width: 640, height: 480 })),
    annotations: Array.from({ length: 10 }, (_, i) => ({ id: 100 + i, image_id: (i % 5) + 1, caption: `A caption ${WORDS[i]} number ${i}.` })),
  });
  const questions = JSON.stringify({
    questions: Array.from({ length: 6 }, (_, i) => ({ question_id: i + 1, image_id: (i % 3) + 1, question: `Is there a ${WORDS[i]}?` })),
  });
  const answers = enc.encode(
    JSON.stringify({
      annotations: Array.from({ length: 6 }, (_, i) => ({
        question_id: i + 1,
        image_id: (i % 3) + 1,
        multiple_choice_answer: 'yes',
        answers: [{ answer: 'yes' }],
      })),
    }),
  );
  for (const [reader, text] of [
    ['coco-captions', coco],
    ['vqav2', questions],
  ] as const) {
    const bytes = enc.encode(text);
    const extra = reader === 'vqav2' ? answers : undefined;
    add({ reader, mutation: 'seed', bytes, extra }, r);
    for (let k = 0; k < 3; k++) add({ reader, mutation: 'truncation', bytes: bytes.slice(0, int(r, 0, bytes.length - 1)), extra }, r);
    for (let k = 0; k < 3; k++) {
      const b = bytes.slice();
      b[int(r, 0, b.length - 1)] = int(r, 0, 255);
      add({ reader, mutation: 'byte-flip', bytes: b, extra }, r);
    }
    for (let k = 0; k < 3; k++)
      add({ reader, mutation: 'wrong-type', bytes: enc.encode(replaceNode(r, reader, undefined, text, (old) => otherType(r, old))), extra }, r);
    add({ reader, mutation: 'invalid-utf8', bytes: insertBytes(bytes, int(r, 0, bytes.length), [0xff]), extra }, r);
    add(
      {
        reader,
        mutation: 'deep-100000',
        bytes: enc.encode(replaceNode(r, reader, undefined, text, () => `${'['.repeat(100_000)}${']'.repeat(100_000)}`)),
        extra,
      },
      r,
    );
    add({ reader, mutation: 'garbage', bytes: Uint8Array.from({ length: int(r, 1, 600) }, () => int(r, 0, 255)), extra }, r);
  }
  return cases;
}

/** Run the cases one by one in a worker; a case that outlives the watchdog is a hang and the worker is replaced. */
async function runCases(cases: FuzzCase[], watchdogMs = WATCHDOG_MS): Promise<FuzzResult[]> {
  const results: FuzzResult[] = [];
  let worker: Worker | undefined;
  const zero = { read: 0, written: 0, rejected: 0, rejectsSeen: 0, outputLines: 0 };
  try {
    for (const c of cases) {
      worker ??= new Worker(WORKER);
      const w = worker;
      const result = await new Promise<FuzzResult>((resolve) => {
        const timer = setTimeout(() => {
          cleanup();
          void w.terminate();
          worker = undefined;
          resolve({ id: c.id, kind: 'hang', ...zero });
        }, watchdogMs);
        const onMessage = (m: FuzzResult) => {
          cleanup();
          resolve(m);
        };
        const onError = (err: Error) => {
          cleanup();
          worker = undefined;
          resolve({ id: c.id, kind: 'crash', message: `worker died: ${err.message}`, ...zero });
        };
        const cleanup = () => {
          clearTimeout(timer);
          w.off('message', onMessage);
          w.off('error', onError);
        };
        w.on('message', onMessage);
        w.on('error', onError);
        w.postMessage(c);
      });
      results.push(result);
    }
  } finally {
    await worker?.terminate();
  }
  return results;
}

describe('reader fault injection', () => {
  it('every dialect reader: a few hundred mutated files, no crash, no hang, counts add up', async () => {
    expect(existsSync(BUILT), 'build the package first (npx tsup): the fuzz worker reads with dist/').toBe(true);
    const cases = await buildCases();
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(cases.length).toBeLessThanOrEqual(500);
    const results = await runCases(cases);

    // The counts table, per reader and in total.
    const rows = new Map<string, { tried: number; ok: number; typed: number; crash: number; hang: number; rejects: number }>();
    const total = { tried: 0, ok: 0, typed: 0, crash: 0, hang: 0, rejects: 0 };
    for (const r of results) {
      const c = cases[r.id];
      const k =
        c.container && c.reader !== 'mimicit' && c.reader !== 'review'
          ? `${c.reader} (${c.mutation === 'container-swapped' ? 'other container' : c.container})`
          : c.reader;
      if (!rows.has(k)) rows.set(k, { tried: 0, ok: 0, typed: 0, crash: 0, hang: 0, rejects: 0 });
      for (const x of [rows.get(k)!, total]) {
        x.tried++;
        x[r.kind]++;
        x.rejects += r.rejectsSeen;
      }
    }
    rows.set('total', total);
    const pad = (s: string | number, n: number) => String(s).padStart(n);
    const table = [`${'reader'.padEnd(26)}${pad('tried', 7)}${pad('ok', 6)}${pad('typed error', 13)}${pad('crash', 7)}${pad('hang', 6)}${pad('rejects', 9)}`];
    for (const [k, x] of rows)
      table.push(`${k.padEnd(26)}${pad(x.tried, 7)}${pad(x.ok, 6)}${pad(x.typed, 13)}${pad(x.crash, 7)}${pad(x.hang, 6)}${pad(x.rejects, 9)}`);
    console.log(`reader fault injection (seed ${SEED}):\n${table.join('\n')}`);

    const bad = results
      .filter((r) => r.kind === 'crash' || r.kind === 'hang')
      .map((r) => ({ ...cases[r.id], bytes: `${cases[r.id].bytes.length} bytes`, extra: undefined, result: r }));
    expect(bad).toEqual([]);
    expect(total.crash).toBe(0);
    expect(total.hang).toBe(0);
    expect(total.tried).toBe(cases.length);
    // Each kind of fault was met by both outcomes somewhere: the mutations really bite.
    expect(total.typed).toBeGreaterThan(0);
    expect(total.rejects).toBeGreaterThan(0);

    for (const r of results) {
      const c = cases[r.id];
      if (c.reader === 'coco-captions' || c.reader === 'vqav2') continue;
      // read = written + rejected, and each side is what was really seen: rejects delivered, lines written.
      expect({ id: r.id, mutation: c.mutation, sum: r.written + r.rejected }).toEqual({ id: r.id, mutation: c.mutation, sum: r.read });
      expect(r.rejectsSeen).toBe(r.rejected);
      expect(r.outputLines).toBe(r.written);
      if (c.expectRead !== undefined) expect(r).toMatchObject({ kind: 'ok', read: c.expectRead, written: c.expectRead, rejected: 0 });
    }
  }, 900_000);

  it('the harness itself tells a hang and a crash from a typed error', async () => {
    expect(existsSync(BUILT), 'build the package first (npx tsup)').toBe(true);
    const base = { mutation: 'selftest', bytes: new Uint8Array(), chunks: [1] };
    // A synchronous endless loop never answers, however long the watchdog waits: a short one will do.
    const [hang] = await runCases([{ ...base, id: 0, reader: 'selftest-hang' }], 2_000);
    const others = await runCases([
      { ...base, id: 1, reader: 'selftest-crash' },
      { ...base, id: 2, reader: 'llava', bytes: enc.encode('[1') },
    ]);
    expect(
      [hang, ...others].map((r) => r.kind),
      JSON.stringify(others),
    ).toEqual(['hang', 'crash', 'typed']);
  }, 120_000);
});
