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
      const items = await collect(
        streamJsonValues(
          split(new TextEncoder().encode(src), () => size),
          [['data', '*']],
        ),
      );
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
    await expect(
      collect(
        streamJsonValues(
          split(new TextEncoder().encode(big), () => 100),
          [['*']],
          { maxValueBytes: 1000 },
        ),
      ),
    ).rejects.toThrow('maxValueBytes');
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
      const items = await collect(
        streamJsonLines(
          split(new TextEncoder().encode(src), () => size),
          { file: 'f.jsonl' },
        ),
      );
      expect(items.map((i) => [i.line, i.kind === 'value' ? i.value : 'ERROR'])).toEqual([
        [1, { a: 1 }],
        [4, [2]],
        [5, 'three'],
        [6, 'ERROR'],
        [7, 4],
      ]);
    }
  });

  it("an over-long line's reject keeps the same head (its first 64 KiB) however the chunks cut it", async () => {
    const long = `{"a": "${'x'.repeat(70_000)}"}`;
    const bytes = new TextEncoder().encode(`[1]\n${long}\n{"b": 2}\n${long.slice(0, 5000)}`);
    for (const size of [1000, 4096, 65_536, 1 << 20]) {
      const items = await collect(
        streamJsonLines(
          split(bytes, () => size),
          { maxValueBytes: 4000 },
        ),
      );
      expect(items.map((i) => [i.line, i.kind, i.kind === 'error' ? [i.text.length, i.truncated, i.error.message] : i.value])).toEqual([
        [1, 'value', [1]],
        [2, 'error', [64 * 1024, true, 'line of 70009 bytes is longer than maxValueBytes (4000) (record 2)']],
        [3, 'value', { b: 2 }],
        [4, 'error', [5000, true, 'line of 5000 bytes is longer than maxValueBytes (4000) (record 4)']],
      ]);
      expect(items[1].text).toBe(long.slice(0, 64 * 1024));
    }
  });
});

describe('streamJsonValues: runs of array elements parsed together', () => {
  // Records whose text holds everything that could throw a byte scanner off: escaped quotes and
  // backslashes (so a chunk may end right after a backslash), brackets inside strings, multi-byte
  // UTF-8 (so byte offsets and character offsets differ), numbers and nested containers.
  const rng = createRng('runs');
  const words = ['a', 'é', '🌳', '\\', '"', '}', ']', '[{', '\n', 'x\\"y', 'plain'];
  const records = Array.from({ length: 300 }, (_, i) => ({
    id: `r${i}`,
    n: i % 7 === 0 ? -i * 1.5 - 1 : i,
    text: Array.from({ length: 1 + rng.int(0, 8) }, () => rng.choice(words)).join(i % 3 === 0 ? '' : ' '),
    nested: i % 5 === 0 ? [[{ k: [i] }], {}] : { k: null },
  }));
  const texts = records.map((r) => JSON.stringify(r));

  it('values, texts, lines and byte offsets match each record parsed on its own, for any chunking and with lazy text', async () => {
    const doc = `[\n${texts.join(',\n')}\n]`;
    const bytes = new TextEncoder().encode(doc);
    // expected: offsets and lines worked out from the document text independently of the scanner
    const starts: number[] = [];
    let at = 2; // after "[\n"
    for (const t of texts) {
      starts.push(at);
      at += new TextEncoder().encode(t).length + 2; // ",\n"
    }
    for (const lazyText of [false, true]) {
      for (const sizes of [() => 1 + rng.int(0, 30), () => 4096, () => bytes.length]) {
        const items = await collect(streamJsonValues(split(bytes, sizes), [['*']], { lazyText }));
        expect(items.map((i) => i.kind)).toEqual(records.map(() => 'value'));
        expect(values(items)).toEqual(records);
        expect(items.map((i) => i.text)).toEqual(texts);
        expect(items.map((i) => i.line)).toEqual(records.map((_, k) => k + 2));
        expect(items.map((i) => i.offset)).toEqual(starts);
      }
    }
  });

  it('one bad record inside a run is one error item with its own offset; its neighbours still parse', async () => {
    const bad = [...texts.slice(0, 40)];
    bad[17] = '{"id": "r17", "n": 1,, "x": 2}'; // malformed
    bad[25] = '{"id": "r25", "deep": [[[[[[[[1]]]]]]]]}'; // deeper than maxDepth 6
    const doc = `[${bad.join(',')}]`;
    const enc = new TextEncoder();
    const bytes = enc.encode(doc);
    const offset17 = enc.encode(`[${bad.slice(0, 17).join(',')},`).length;
    for (const sizes of [() => 64 * 1024, () => 1 + rng.int(0, 200)]) {
      const items = await collect(streamJsonValues(split(bytes, sizes), [['*']], { maxDepth: 6, lazyText: true }));
      expect(items).toHaveLength(40);
      expect(items.filter((i) => i.kind === 'error').map((i) => i.path[0])).toEqual([17, 25]);
      const e17 = items[17];
      expect(e17.kind === 'error' && e17.error).toBeInstanceOf(FormatError);
      expect(e17.offset).toBe(offset17);
      expect(e17.text).toBe(bad[17]);
      expect(items[25].kind === 'error' && items[25].error.message).toMatch(/deeper than 6 levels/);
      expect(values(items).filter((_, k) => k !== 17 && k !== 25)).toEqual(records.slice(0, 40).filter((_, k) => k !== 17 && k !== 25));
    }
  });

  it('invalid UTF-8 inside a run is an error item at the bad byte; the rest of the run parses', async () => {
    const enc = new TextEncoder();
    const head = enc.encode(`[${texts.slice(0, 5).join(',')},{"id":"bad","t":"`);
    const tail = enc.encode(`"},${texts.slice(5, 10).join(',')}]`);
    const bytes = new Uint8Array([...head, 0xff, ...tail]);
    const items = await collect(streamJsonValues(bytes, [['*']], { lazyText: true }));
    expect(items.map((i) => i.kind)).toEqual([...Array(5).fill('value'), 'error', ...Array(5).fill('value')]);
    const bad = items[5];
    expect(bad.kind === 'error' && bad.error.details.offset).toBe(head.length);
    expect(bad.text).toContain('\uFFFD');
    expect(values(items).filter((v) => v !== 'ERROR')).toEqual(records.slice(0, 10));
  });
});
