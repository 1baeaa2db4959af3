import { FormatError, isVlitError, PathEscapeError, UnsupportedError, ValidationError, type VlitError } from '@vlit/core';
import { describe, expect, it } from 'vitest';
import { checkRelativePath } from './paths.js';
import { readRecordItems, readRecords, writeRecords, type DialectName, type RejectedRecord } from './records.js';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

async function firstError(items: AsyncIterable<unknown>): Promise<VlitError> {
  try {
    for await (const _ of items) void _;
  } catch (err) {
    if (isVlitError(err)) return err;
    throw err;
  }
  throw new Error('expected a Vlit error');
}

interface Case {
  dialect: DialectName;
  good: (i: number) => unknown;
  /** A good item with a field of the wrong type, and that field's path. */
  wrongType: [unknown, string];
  /** A good item whose image escapes the root. */
  escape: unknown;
}

const conv = (q: string) => [
  { from: 'human', value: `<image>\n${q}` },
  { from: 'gpt', value: 'yes' },
];

/** A user turn and the answer `a`, as OpenAI-style and canonical records both write a conversation. */
const chat = (user: unknown, answer: Record<string, unknown> = {}) => [
  { role: 'user', content: user },
  { role: 'assistant', content: 'a', ...answer },
];

const cases: Case[] = [
  {
    dialect: 'llava',
    good: (i) => ({ id: `r${i}`, image: `img/${i}.jpg`, conversations: conv('q') }),
    wrongType: [
      {
        id: 'bad',
        image: 'x.jpg',
        conversations: [
          { from: 'human', value: '<image>' },
          { from: 'gpt', value: 5 },
        ],
      },
      'conversations.1.value',
    ],
    escape: { id: 'esc', image: '../outside/secret.jpg', conversations: conv('q') },
  },
  {
    dialect: 'sharegpt',
    good: (i) => ({ id: `r${i}`, conversations: conv('q'), images: [`img/${i}.jpg`] }),
    wrongType: [{ id: 'bad', conversations: conv('q'), images: 'x.jpg' }, '(root)'],
    escape: { id: 'esc', conversations: conv('q'), images: ['/etc/passwd'] },
  },
  {
    dialect: 'alpaca',
    good: (i) => ({ id: `r${i}`, instruction: '<image>\nDescribe.', input: '', output: 'A dog.', images: [`img/${i}.jpg`] }),
    wrongType: [{ id: 'bad', instruction: 'Describe.', input: '', output: 3 }, 'output'],
    escape: { id: 'esc', instruction: '<image>\nDescribe.', input: '', output: 'x', images: ['img/../../x.jpg'] },
  },
  {
    dialect: 'openai',
    good: (i) => ({
      id: `r${i}`,
      messages: chat([
        { type: 'image_url', image_url: { url: `img/${i}.jpg` } },
        { type: 'text', text: 'q' },
      ]),
    }),
    wrongType: [{ id: 'bad', messages: chat('q', { loss: 'yes' }) }, 'messages.1.loss'],
    escape: { id: 'esc', messages: chat([{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }]) },
  },
  {
    dialect: 'vlit',
    good: (i) => ({ id: `r${i}`, images: [`img/${i}.jpg`], messages: chat('<image>\nq') }),
    wrongType: [{ id: 'bad', images: [], messages: chat('q', { train: 'yes' }) }, 'messages.1.train'],
    escape: { id: 'esc', images: ['..\\..\\windows\\x.jpg'], messages: chat('<image>') },
  },
];

function jsonl(items: unknown[], malformedAt: number): string {
  const lines = items.map((x) => JSON.stringify(x));
  lines.splice(malformedAt, 0, '{"id": "broken", "conversations": [}');
  return `${lines.join('\n')}\n`;
}

describe('bad input in every dialect: typed errors with file, index/line and field; nothing lost', () => {
  for (const c of cases) {
    const items = [c.good(0), c.wrongType[0], c.good(1), c.escape, c.good(2)];
    const file = `data/${c.dialect}.jsonl`;
    const source = jsonl(items, 1); // lines: good0, broken, wrongType, good1, escape, good2

    it(`${c.dialect}: a malformed JSON line is a FormatError naming file and line`, async () => {
      const err = await firstError(readRecords(source, { dialect: c.dialect, file }));
      expect(err).toBeInstanceOf(FormatError);
      expect(err.details).toMatchObject({ file, line: 2, index: 1 });
      expect(err.message).toContain(file);
    });

    it(`${c.dialect}: a field of the wrong type is a ValidationError naming the field`, async () => {
      const err = await firstError(readRecords(jsonl([c.good(0), c.wrongType[0]], 99), { dialect: c.dialect, file }));
      expect(err).toBeInstanceOf(ValidationError);
      expect(err.details).toMatchObject({ file, line: 2, index: 1, record: 'bad', field: c.wrongType[1] });
    });

    it(`${c.dialect}: an image escaping the root is a PathEscapeError`, async () => {
      const err = await firstError(readRecords(JSON.stringify([c.escape]), { dialect: c.dialect, file }));
      expect(err).toBeInstanceOf(PathEscapeError);
      expect(err.details).toMatchObject({ file, index: 0, record: 'esc', field: 'images.0' });
    });

    it(`${c.dialect}: batch reading puts every bad record in rejects and the counts add up`, async () => {
      const rejects: RejectedRecord[] = [];
      const records = await collect(readRecords(source, { dialect: c.dialect, file, onReject: (r) => rejects.push(r) }));
      expect(records.map((r) => r.id)).toEqual(['r0', 'r1', 'r2']);
      expect(rejects.map((r) => [r.code, r.line, r.index])).toEqual([
        ['VLIT_FORMAT', 2, 1],
        ['VLIT_VALIDATION', 3, 2],
        ['VLIT_PATH_ESCAPE', 5, 4],
      ]);
      expect(rejects.every((r) => r.file === file && r.reason.length > 0 && r.raw.length > 0)).toBe(true);
      expect(rejects[1]).toMatchObject({ id: 'bad', field: c.wrongType[1] });
      expect(rejects[0].raw).toBe('{"id": "broken", "conversations": [}');
      expect(records.length + rejects.length).toBe(6); // 6 non-blank lines read
    });
  }

  const wrapped: {
    dialect: DialectName;
    wrap: (entries: string[]) => string;
    good: (i: number) => unknown;
    wrongType: [unknown, string];
    escape: unknown;
    key: (i: number) => string;
  }[] = [
    {
      dialect: 'mimicit',
      wrap: (entries) => `{"meta": {"version": "1"},\n"data": {\n${entries.join(',\n')}\n}}\n`,
      key: (i) => `"LA_INS_${i}": `,
      good: () => ({ instruction: 'What is it?', answer: 'A dog.', image_ids: ['LA_IMG_1'], rel_ins_ids: [] }),
      wrongType: [{ instruction: 'q', answer: 5, image_ids: [] }, 'answer'],
      escape: { instruction: 'q', answer: 'a', image_ids: ['../../etc/passwd'] },
    },
    {
      dialect: 'review',
      wrap: (entries) => `{"image_source": "MSCOCO2014", "construction_time": "2023",\n"annotations": [\n${entries.join(',\n')}\n]}\n`,
      key: () => '',
      good: () => ({
        img_ids: ['000000000001'],
        instruction_type: 'Global',
        conversations: [
          { from: 'human', value: 'q' },
          { from: 'gpt', value: 'a' },
        ],
      }),
      wrongType: [{ img_ids: true, instruction_type: 'Region', conversations: [] }, 'img_ids'],
      escape: {
        img_ids: ['../x'],
        instruction_type: 'Region',
        conversations: [
          { from: 'human', value: 'q' },
          { from: 'gpt', value: 'a' },
        ],
      },
    },
  ];
  for (const w of wrapped) {
    it(`${w.dialect}: malformed entry, wrong type and escaping image are rejects with index, line and field`, async () => {
      const file = `${w.dialect}.json`;
      const entries = [
        `${w.key(0)}${JSON.stringify(w.good(0))}`,
        `${w.key(1)}{"instruction": tru, "x": [1, 2]}`,
        `${w.key(2)}${JSON.stringify(w.wrongType[0])}`,
        `${w.key(3)}${JSON.stringify(w.escape)}`,
        `${w.key(4)}${JSON.stringify(w.good(4))}`,
      ];
      const rejects: RejectedRecord[] = [];
      const items = await collect(readRecordItems(w.wrap(entries), { dialect: w.dialect, file }));
      for (const item of items) if (item.kind === 'reject') rejects.push(item.reject);
      expect(items).toHaveLength(5);
      expect(rejects.map((r) => [r.code, r.index, r.line, r.field])).toEqual([
        ['VLIT_FORMAT', 1, 4, expect.any(String)],
        ['VLIT_VALIDATION', 2, 5, w.wrongType[1]],
        ['VLIT_PATH_ESCAPE', 3, 6, 'images.0'],
      ]);
      expect(rejects.every((r) => r.file === file)).toBe(true);
      if (w.dialect === 'mimicit') expect(rejects.map((r) => r.id)).toEqual(['LA_INS_1', 'LA_INS_2', 'LA_INS_3']);
      // strict reading throws the first one
      const err = await firstError(readRecords(w.wrap(entries), { dialect: w.dialect, file }));
      expect(err).toBeInstanceOf(FormatError);
      expect(err.details).toMatchObject({ file, index: 1, line: 4 });
    });
  }

  it('a broken document structure throws with the line (the rest cannot be read)', async () => {
    const err = await firstError(readRecords('[\n{"id": "a", "conversations": []}\n{"id": "b"}]', { dialect: 'llava', file: 'f.json' }));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.details).toMatchObject({ file: 'f.json', line: 3 });
  });

  it('a record file of the wrong shape says so', async () => {
    const err = await firstError(readRecords('{"data": {}}', { dialect: 'llava', container: 'json', file: 'f.json' }));
    expect(err).toBeInstanceOf(FormatError);
    const err2 = await firstError(readRecords('[1, 2]', { dialect: 'mimicit', file: 'm.json' }));
    expect(err2).toBeInstanceOf(FormatError);
  });

  it('tool turns and unknown roles are unsupported, naming the turn', async () => {
    const err = await firstError(
      readRecords(
        JSON.stringify([
          {
            conversations: [
              { from: 'human', value: 'q' },
              { from: 'function_call', value: '{}' },
            ],
          },
        ]),
        { dialect: 'sharegpt', file: 's.json' },
      ),
    );
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(err.details).toMatchObject({ field: 'conversations.1.from', record: 0, index: 0 });
  });

  it('a bad carrier is named by its field', async () => {
    const err = await firstError(
      readRecords(JSON.stringify([{ id: 'a', conversations: conv('q'), image: 'x.jpg', vlit: { train: 'yes' } }]), { dialect: 'llava', file: 'c.json' }),
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.details.field).toBe('vlit.train');
  });

  it('placeholder and image counts must agree', async () => {
    const err = await firstError(
      readRecords(JSON.stringify([{ id: 'a', image: ['x.jpg', 'y.jpg'], conversations: conv('q') }]), { dialect: 'llava', file: 'c.json' }),
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.details).toMatchObject({ field: 'images', record: 'a' });
  });

  it('records a dialect cannot hold at all are write rejects; written + rejected = given', async () => {
    const rejects: RejectedRecord[] = [];
    const records = [
      {
        id: 'ok',
        images: [],
        messages: [
          { role: 'user' as const, content: 'q' },
          { role: 'assistant' as const, content: 'a' },
        ],
      },
      {
        id: 'only-system',
        images: [],
        messages: [
          { role: 'system' as const, content: 's' },
          { role: 'assistant' as const, content: 'a' },
        ],
      },
      {
        id: 'ok2',
        images: [],
        messages: [
          { role: 'user' as const, content: 'q' },
          { role: 'assistant' as const, content: 'a' },
        ],
      },
    ];
    const stats = { written: 0, rejected: 0, warnings: 0 };
    const out = await collect(writeRecords(records, { dialect: 'mimicit', onReject: (r) => rejects.push(r) }, stats));
    expect(out.join('')).toContain('"ok2"');
    expect(stats.written + stats.rejected).toBe(3);
    // a duplicate id cannot be a second key of MIMIC-IT's data object
    const dup = await collect(writeRecords([records[0], records[0]], { dialect: 'mimicit', onReject: (r) => rejects.push(r) }));
    expect(dup.join('')).toContain('"ok"');
    expect(rejects.at(-1)).toMatchObject({ id: 'ok', field: 'id', code: 'VLIT_FORMAT' });
  });
});

describe('checkRelativePath', () => {
  it('accepts paths under the root and normalises them', () => {
    expect(checkRelativePath('a/./b/../c.jpg')).toBe('a/c.jpg');
    expect(checkRelativePath('a\\b.jpg')).toBe('a/b.jpg');
  });
  it.each([
    '../x.jpg',
    'a/../../x.jpg',
    '/abs.jpg',
    'C:\\x.jpg',
    '\\\\server\\share\\x.jpg',
    'http://host/x.jpg',
    'data:image/png;base64,AAAA',
    'a\0b',
    '.',
    '',
  ])('refuses %j', (p) => {
    expect(() => checkRelativePath(p, { file: 'f', record: 'r', field: 'images.0' })).toThrow(PathEscapeError);
  });
});
