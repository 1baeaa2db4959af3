import { createRng, FormatError } from '@vlit/core';
import { describe, expect, it } from 'vitest';
import { streamJsonLines, streamJsonValues, type JsonStreamItem } from './json-stream.js';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

function split(bytes: Uint8Array, sizes: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = Math.max(1, sizes());
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

const values = (items: JsonStreamItem[]) => items.map((i) => (i.kind === 'value' ? i.value : 'ERROR'));

describe('streamJsonValues', () => {
  // a document with every JSON construct, escapes at awkward places and multi-byte UTF-8
  const doc = [
    { a: 'x\\', b: 'quote " inside', c: [1, -2.5e-3, true, false, null], d: { '}': ']', '"k"': '\\"' } },
    'plain string with ] and } and \\u00e9: é and 🌳',
    12345678901234,
    -0.5,
    true,
    null,
    [],
    {},
    [[[]], [{}]],
  ];
  const text = `[\n ${doc.map((d) => JSON.stringify(d)).join(' ,\n')}\n]`;
  const bytes = new TextEncoder().encode(text);

  it('gives back exactly what JSON.parse gives, whatever the chunking', async () => {
    const rng = createRng('chunks');
    for (const sizes of [() => 1, () => 2, () => 3, () => 7, () => 1 + rng.int(0, 40), () => bytes.length]) {
      expect(values(await collect(streamJsonValues(split(bytes, sizes), [['*']])))).toEqual(JSON.parse(text));
    }
  });

  it('reports the line each value starts on', async () => {
    const items = await collect(streamJsonValues(text, [['*']]));
    expect(items.map((i) => i.line)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('streams the members at a nested path and returns the rest whole', async () => {
    const src = '{"meta": {"v": [1, {"data": 2}]}, "data": {"k1": {"x": 1}, "k\\"2": [1, 2]}, "tail": "t"}';
    for (const size of [1, 5, 1000]) {
      const items = await collect(streamJsonValues(split(new TextEncoder().encode(src), () => size), [['data', '*']]));
      expect(items.map((i) => [i.path, i.kind === 'value' ? i.value : null, i.selected])).toEqual([
        [['meta'], { v: [1, { data: 2 }] }, false],
        [['data', 'k1'], { x: 1 }, true],
        [['data', 'k"2'], [1, 2], true],
        [['tail'], 't', false],
      ]);
    }
  });

  it('a malformed element is an error item and the next elements still come', async () => {
    const items = await collect(streamJsonValues('[{"a": 1},\n{"a": tru},\n{"a": 3}]', [['*']], { file: 'f.json' }));
    expect(items.map((i) => i.kind)).toEqual(['value', 'error', 'value']);
    const bad = items[1] as Extract<JsonStreamItem, { kind: 'error' }>;
    expect(bad.error).toBeInstanceOf(FormatError);
    expect(bad.error.details).toMatchObject({ file: 'f.json', line: 2, record: 1 });
    expect(bad.text).toBe('{"a": tru}');
  });

  it.each([
    ['[1, 2', 'unexpected end'],
    ['[1 2]', "expected ','"],
    ['{"a" 1}', "expected ':'"],
    ['[1]]', 'after the end'],
    ['', 'empty'],
    ['{"a": 1,}', 'object key'],
  ])('a broken structure %j throws FormatError', async (src, message) => {
    await expect(collect(streamJsonValues(src, [['*']], { file: 'x.json' }))).rejects.toThrow(message);
  });

  it('invalid UTF-8 inside one value is an error item with its byte offset, and scanning goes on', async () => {
    // [ " <ff> " , 7 ]  -> the bad byte is at offset 2 of the document
    const items = await collect(streamJsonValues(new Uint8Array([0x5b, 0x22, 0xff, 0x22, 0x2c, 0x37, 0x5d]), [['*']], { file: 'u.json' }));
    expect(items.map((i) => i.kind)).toEqual(['error', 'value']);
    const bad = items[0] as Extract<JsonStreamItem, { kind: 'error' }>;
    expect(bad.error).toBeInstanceOf(FormatError);
    expect(bad.error.details).toMatchObject({ file: 'u.json', offset: 2, record: 0 });
    expect(bad.text).toBe('"\uFFFD"');
    expect((items[1] as { value: unknown }).value).toBe(7);
  });

  it('a value larger than maxValueBytes is refused instead of filling memory', async () => {
    const big = `[${JSON.stringify('x'.repeat(5000))}]`;
    await expect(collect(streamJsonValues(split(new TextEncoder().encode(big), () => 100), [['*']], { maxValueBytes: 1000 }))).rejects.toThrow('maxValueBytes');
  });

  it('skips a UTF-8 byte order mark', async () => {
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('[1]')]);
    expect(values(await collect(streamJsonValues(withBom, [['*']])))).toEqual([1]);
  });
});

describe('streamJsonLines', () => {
  it('one value per non-blank line, CRLF tolerated, line numbers kept, chunking irrelevant', async () => {
    const src = '{"a": 1}\r\n\n  \n[2]\n"three"\n{"bad": }\n4';
    for (const size of [1, 3, 100]) {
      const items = await collect(streamJsonLines(split(new TextEncoder().encode(src), () => size), { file: 'f.jsonl' }));
      expect(items.map((i) => [i.line, i.kind === 'value' ? i.value : 'ERROR'])).toEqual([
        [1, { a: 1 }],
        [4, [2]],
        [5, 'three'],
        [6, 'ERROR'],
        [7, 4],
      ]);
    }
  });
});
