import { isVlitError } from '@vlit/core';
import { describe, expect, it } from 'vitest';
import { convertRecords, MAX_REJECT_RAW_CHARS, readRecordItems, type ConversionStats, type RecordItem, type RejectedRecord } from './records.js';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

const enc = new TextEncoder();
const bytesOf = (...parts: Array<string | number[]>): Uint8Array => {
  const arrays = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
};
const llava = (id: string, answer = 'yes') =>
  JSON.stringify({
    id,
    image: `${id}.jpg`,
    conversations: [
      { from: 'human', value: '<image>\nIs it?' },
      { from: 'gpt', value: answer },
    ],
  });
const rejectsOf = (items: RecordItem[]): RejectedRecord[] => items.flatMap((i) => (i.kind === 'reject' ? [i.reject] : []));
const idsOf = (items: RecordItem[]): string[] => items.flatMap((i) => (i.kind === 'record' ? [i.record.id] : []));

describe('invalid UTF-8 is one reject, not the end of the file', () => {
  it('JSONL: the bad line is a reject naming file, line and byte offset; the lines after it are read', async () => {
    const line1 = llava('r0');
    // "caf" + 0xff where "é" should be: one invalid byte in the middle of line 2
    const before2 = llava('r1', 'caf').slice(0, -4); // up to and including `caf`
    const after2 = llava('r1', 'caf').slice(-4);
    const source = bytesOf(`${line1}\n${before2}`, [0xff], `${after2}\n${llava('r2')}\n`);
    const items = await collect(readRecordItems(source, { dialect: 'llava', file: 'mix.jsonl' }));
    expect(idsOf(items)).toEqual(['r0', 'r2']);
    const [bad] = rejectsOf(items);
    // Hand-worked: line 1 plus its newline, then the bytes of line 2 before the 0xff.
    const expectedOffset = enc.encode(line1).length + 1 + enc.encode(before2).length;
    expect(bad).toMatchObject({ file: 'mix.jsonl', line: 2, index: 1, offset: expectedOffset, code: 'VLIT_FORMAT' });
    expect(bad.reason).toBe(`invalid UTF-8 at byte offset ${expectedOffset}`);
    expect(bad.raw).toBe(`${before2}\uFFFD${after2}`);
    expect(items).toHaveLength(3);
  });

  it('JSON array: the bad element is a reject with its record index and byte offset; the elements after it are read', async () => {
    const head = `[\n${llava('a0')},\n${llava('a1', 'caf').slice(0, -4)}`;
    const source = bytesOf(head, [0xc3, 0x28], `${llava('a1', 'caf').slice(-4)},\n${llava('a2')}\n]\n`);
    const items = await collect(readRecordItems(source, { dialect: 'llava', file: 'mix.json' }));
    expect(idsOf(items)).toEqual(['a0', 'a2']);
    const [bad] = rejectsOf(items);
    // 0xc3 opens a two-byte sequence that 0x28 '(' does not continue: the offset is the 0xc3.
    expect(bad).toMatchObject({ file: 'mix.json', index: 1, line: 3, offset: enc.encode(head).length, code: 'VLIT_FORMAT' });
  });

  it('a byte order mark opening the file or a line is ignored (concatenated files); one inside a record is a reject', async () => {
    const bom = [0xef, 0xbb, 0xbf];
    const inner = llava('b2');
    const jsonl = await collect(
      readRecordItems(bytesOf(bom, `${llava('b0')}\n`, bom, `${llava('b1')}\n${inner.slice(0, 1)}`, bom, `${inner.slice(1)}\n`), { dialect: 'llava' }),
    );
    expect(idsOf(jsonl)).toEqual(['b0', 'b1']);
    expect(rejectsOf(jsonl).map((r) => [r.line, r.code])).toEqual([[3, 'VLIT_FORMAT']]);
    const json = await collect(readRecordItems(bytesOf(bom, `[${llava('c0')}]`), { dialect: 'llava' }));
    expect(idsOf(json)).toEqual(['c0']);
  });
});

describe('deeply nested records keep their text', () => {
  const deepLine = (depth: number) =>
    JSON.stringify({
      id: 'deep',
      image: 'd.jpg',
      conversations: [
        { from: 'human', value: '<image>\nq' },
        { from: 'gpt', value: 'a' },
      ],
    }).replace(/}$/, `,"extra":${'['.repeat(depth)}${']'.repeat(depth)}}`);

  it('a record nested 100,000 levels deep is rejected with its raw text (capped, flagged truncated), and reading goes on', async () => {
    const deep = deepLine(100_000);
    for (const container of ['jsonl', 'json'] as const) {
      const text = container === 'jsonl' ? `${deep}\n${llava('after')}\n` : `[${deep},\n${llava('after')}]`;
      const items = await collect(readRecordItems(text, { dialect: 'llava', file: `deep.${container}` }));
      expect(idsOf(items)).toEqual(['after']);
      const [bad] = rejectsOf(items);
      expect(bad.reason).toMatch(/nested deeper than 1000 levels/);
      expect(bad.raw).toBe(deep.slice(0, MAX_REJECT_RAW_CHARS));
      expect(bad.raw.length).toBe(65536);
      expect(bad.truncated).toBe(true);
    }
  });

  it('a record within the limit is read whole; a small rejected one keeps its whole text, not flagged', async () => {
    const items = await collect(readRecordItems(`${deepLine(50)}\n{"id": 1, "conversations": 3}\n`, { dialect: 'llava' }));
    expect(idsOf(items)).toEqual(['deep']);
    const [bad] = rejectsOf(items);
    expect(bad.raw).toBe('{"id": 1, "conversations": 3}');
    expect(bad.truncated).toBeUndefined();
  });

  it('a record the writer cannot serialise is rejected with the text it was read from, never "[object Object]"', async () => {
    // Raise the reader's limit so the record gets as far as the writer, whose JSON.stringify overflows.
    const deep = deepLine(200_000);
    const rejects: RejectedRecord[] = [];
    const stats: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 };
    const out = (
      await collect(
        convertRecords(`${deep}\n${llava('ok')}\n`, { from: 'llava', to: 'sharegpt', maxDepth: 1_000_000, onReject: (r) => rejects.push(r) }, stats),
      )
    ).join('');
    expect(stats).toMatchObject({ read: 2, written: 1, rejected: 1 });
    expect(out.trim().split('\n')).toHaveLength(1);
    expect(rejects[0].raw).toBe(deep.slice(0, MAX_REJECT_RAW_CHARS));
    expect(rejects[0].truncated).toBe(true);
    expect(rejects[0].raw).not.toContain('[object Object]');
  });
});

describe('an over-long JSONL line', () => {
  it('is a reject keeping its head, flagged truncated; the next line is read', async () => {
    const huge = `{"id":"h","image":"h.jpg","conversations":[{"from":"human","value":"${'x'.repeat(300_000)}"}]}`;
    const items = await collect(readRecordItems([enc.encode(`${huge}\n`), enc.encode(`${llava('next')}\n`)], { dialect: 'llava', maxValueBytes: 100_000 }));
    expect(idsOf(items)).toEqual(['next']);
    const [bad] = rejectsOf(items);
    expect(bad).toMatchObject({ line: 1, offset: 0, truncated: true });
    expect(bad.reason).toMatch(/maxValueBytes/);
    expect(huge.startsWith(bad.raw)).toBe(true);
    expect(bad.raw.length).toBe(64 * 1024);
    expect(isVlitError(new Error())).toBe(false);
  });
});
