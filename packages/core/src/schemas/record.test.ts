import { describe, expect, it } from 'vitest';
import { isDeepStrictEqual } from 'node:util';
import {
  countMessageImages,
  fastVlitRecord,
  IMAGE_PLACEHOLDER,
  parseVlitRecord,
  safeParseVlitRecord,
  vlitRecordSchema,
  type VlitRecordInput,
} from './record.js';
import { createRng } from '../rng.js';
import { isVlitError } from '../errors.js';

const good: VlitRecordInput = {
  id: 'coco-1-0',
  images: ['train2014/COCO_train2014_000000000001.jpg'],
  messages: [
    { role: 'user', content: '<image>\nHow many dogs are there?' },
    { role: 'assistant', content: 'Two.' },
    { role: 'user', content: [{ type: 'text', text: 'What colour is the left one?' }] },
    { role: 'assistant', content: 'Brown.' },
  ],
  task: 'counting',
  source: { dataset: 'coco-2014', method: 'annotation-adaption' },
};

describe('vlitRecordSchema', () => {
  it('accepts a multi-turn record with one placeholder per image and fills defaults', () => {
    const r = parseVlitRecord(good);
    expect(r.messages).toHaveLength(4);
    expect(
      parseVlitRecord({
        id: 'x',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
      }).images,
    ).toEqual([]);
  });

  it('counts image parts in structured content', () => {
    const r = vlitRecordSchema.safeParse({
      id: 'parts',
      images: ['a.png', { path: 'b.png', width: 4, height: 4 }],
      messages: [
        { role: 'user', content: [{ type: 'image' }, { type: 'image' }, { type: 'text', text: 'Compare.' }] },
        { role: 'assistant', content: 'Same.' },
      ],
    });
    expect(r.success).toBe(true);
  });

  it('rejects a placeholder count that differs from the image count, naming file, record and field', () => {
    let caught: unknown;
    try {
      parseVlitRecord({ ...good, images: [] }, { file: 'train.jsonl', record: 7 });
    } catch (err) {
      caught = err;
    }
    expect(isVlitError(caught, 'VLIT_VALIDATION')).toBe(true);
    const e = caught as Error & { details: Record<string, unknown> };
    expect(e.details.file).toBe('train.jsonl');
    expect(e.details.record).toBe('coco-1-0');
    expect(e.details.field).toBe('images');
    expect(e.message).toContain('0 image(s) but 1 image placeholder(s)');
  });

  it('rejects a wrong role and a conversation without an assistant turn, using the location when there is no id', () => {
    expect(() => parseVlitRecord({ id: 'r', messages: [{ role: 'bot', content: 'x' }] })).toThrow(/field messages\.0\.role/);
    expect(() => parseVlitRecord({ messages: [{ role: 'user', content: 'x' }] }, { record: 12 })).toThrow(/record 12/);
    expect(() => parseVlitRecord({ id: 'u', messages: [{ role: 'user', content: 'x' }] })).toThrow(/no assistant turn/);
  });

  it('countMessageImages counts placeholders as splitting the text on them would (non-overlapping), and image parts', () => {
    for (const text of ['', 'none', '<image>', '<image><image>', 'a<image>\nb <image>c<image>', '<image', '<<image>>', 'image>', '<image>>image>']) {
      expect(countMessageImages({ role: 'user', content: text }), JSON.stringify(text)).toBe(text.split(IMAGE_PLACEHOLDER).length - 1);
    }
    expect(countMessageImages({ role: 'user', content: [{ type: 'image' }, { type: 'text', text: '<image>' }, { type: 'image' }] })).toBe(2);
  });

  it('safeParseVlitRecord agrees with the zod schema on 4,000 generated records, valid and broken; its fast path output equals zod’s, key order included', () => {
    const rng = createRng('fast-vlit-record');
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length)];
    const maybe = (p: number): boolean => rng.float() < p;
    const word = (): string => pick(['dog', 'cat', '<image>', 'red', '', 'two', '<imag', 'é', '\n']);
    // A record valid by construction, built as a dialect decoder or JSON.parse would build it.
    const valid = (): Record<string, unknown> => {
      const nImages = rng.int(0, 3);
      const messages: Record<string, unknown>[] = [];
      const turns = rng.int(1, 4);
      for (let t = 0; t < turns; t++) {
        const user: Record<string, unknown> = { role: 'user' };
        if (t === 0 && maybe(0.5))
          user.content = [...Array(nImages).fill({ type: 'image' }), { type: 'text', text: `${word()} ${word()}`.replaceAll('<image>', '') }];
        else user.content = `${t === 0 ? '<image>'.repeat(nImages) : ''}${word().replaceAll('<image>', '')} what?`;
        if (maybe(0.2)) user.train = maybe(0.5);
        messages.push(user, { role: 'assistant', content: `${word()}.`.replaceAll('<image>', '') });
      }
      if (maybe(0.2)) messages.unshift({ role: 'system', content: 'be brief' });
      const r: Record<string, unknown> = { id: `r${rng.int(0, 1e6)}`, images: Array.from({ length: nImages }, (_, i) => `img/${i}.jpg`), messages };
      if (nImages === 0 && maybe(0.3)) delete r.images;
      if (maybe(0.5)) r.task = pick(['caption', 'vqa', '']);
      if (maybe(0.5)) {
        const source: Record<string, unknown> = { dataset: pick(['coco', 'llava']) };
        if (maybe(0.5)) source.dialect = 'llava';
        if (maybe(0.3)) source.originalId = '17';
        if (maybe(0.3)) source.method = pick(['original', 'annotation-adaption', 'self-instruct']);
        r.source = source;
      }
      const metadata = rng.int(0, 4);
      if (metadata >= 2) r.metadata = { b: { nested: [1, 2] }, a: null, 2: 'two', x: metadata === 2 ? 'y' : [true], u: undefined };
      // Optional keys present as undefined, as a dialect decoder's spread leaves them.
      else if (metadata === 1) r.metadata = undefined;
      if (maybe(0.2)) r.task = undefined;
      if (nImages === 0 && maybe(0.3)) r.images = undefined;
      return r;
    };
    // Ways to break or bend a record: every branch of the fast checks, and shapes only zod may judge.
    const mutations: ((r: Record<string, unknown>) => void)[] = [
      (r) => {
        r.extra = 1;
      },
      (r) => {
        r.task = pick([3, null]);
      },
      (r) => {
        r.source = undefined;
        (r.messages as Record<string, unknown>[])[0].train = undefined;
      },
      (r) => {
        r.id = pick(['', 7, null]);
      },
      (r) => {
        r.images = [{ path: 'a.jpg', width: 3 }];
        (r.messages as { content: unknown }[])[0].content = '<image> x';
      },
      (r) => {
        r.images = pick([['a.jpg', ''], 'a.jpg', [3]]);
      },
      (r) => {
        (r.messages as Record<string, unknown>[])[0].role = pick(['bot', 'User', undefined]);
      },
      (r) => {
        (r.messages as Record<string, unknown>[])[0].train = pick([undefined, 'yes', 1]);
      },
      (r) => {
        (r.messages as Record<string, unknown>[])[0].extra = 'x';
      },
      (r) => {
        (r.messages as Record<string, unknown>[])[0].content = pick([
          [{ type: 'text' }],
          [{ type: 'text', text: 'a', more: 1 }],
          [{ type: 'image', text: 'x' }],
          [{ type: 'video' }],
          3,
          null,
        ]);
      },
      (r) => {
        r.messages = (r.messages as { role: string }[]).filter((m) => m.role !== 'assistant');
      },
      (r) => {
        r.messages = [];
      },
      (r) => {
        (r.messages as { content: unknown }[])[0].content = `<image>${String((r.messages as { content: unknown }[])[0].content)}`;
      },
      (r) => {
        r.source = pick([
          { dataset: '' },
          { dataset: 'd', method: 'copied' },
          { dataset: 'd', dialect: 3 },
          { dataset: 'd', other: 1 },
          'coco',
          { dataset: 'd', originalId: undefined },
        ]);
      },
      (r) => {
        r.metadata = pick([[1], null, JSON.parse('{"__proto__": {"polluted": 1}}'), Object.assign(Object.create(null), { k: 1 }), new Map()]);
      },
      (r) => {
        (r.messages as unknown[])[0] = Object.assign(Object.create({ inherited: true }), (r.messages as unknown[])[0]);
      },
      (r) => {
        // the same keys in another order: zod's output keeps its own order
        const entries = Object.entries(r).reverse();
        for (const [k] of entries) delete r[k];
        for (const [k, v] of entries) r[k] = v;
      },
    ];
    let fast = 0;
    let agreedInvalid = 0;
    for (let n = 0; n < 4000; n++) {
      const record = valid();
      const mutated = n % 4 !== 0;
      if (mutated) pick(mutations)(record);
      const zod = vlitRecordSchema.safeParse(record);
      const quick = fastVlitRecord(record);
      const label = JSON.stringify(record);
      if (!mutated) expect(quick, `a plain valid record takes the fast path: ${label}`).toBeDefined();
      if (quick) {
        fast++;
        expect(zod.success, label).toBe(true);
        expect(JSON.stringify(quick), label).toBe(JSON.stringify(zod.data));
        expect(isDeepStrictEqual(quick, zod.data), label).toBe(true);
        // metadata values are shared with the input, as zod shares them
        if (quick.metadata) for (const k of Object.keys(quick.metadata)) expect(quick.metadata[k]).toBe(zod.data?.metadata?.[k]);
      }
      const ours = safeParseVlitRecord(record);
      expect(ours.success, label).toBe(zod.success);
      if (!zod.success) {
        agreedInvalid++;
        expect(ours.error?.issues).toEqual(zod.error.issues);
      } else expect(isDeepStrictEqual(ours.data, zod.data), label).toBe(true);
    }
    expect(fast).toBeGreaterThan(1000);
    expect(agreedInvalid).toBeGreaterThan(1000);
  });

  it('safeParseVlitRecord agrees with zod on values only code can build: symbol keys, an own constructor, getters, an array’s own iterator', () => {
    const base = (): Record<string, unknown> => ({
      id: 'r',
      images: ['x.jpg'],
      messages: [
        { role: 'user', content: '<image> what?' },
        { role: 'assistant', content: 'a dog' },
      ],
    });
    let reads = 0;
    const cases: Record<string, unknown>[] = [
      { ...base(), metadata: { [Symbol('s')]: 1, a: 1 } },
      { ...base(), metadata: { constructor: () => 1 } },
      { ...base(), metadata: { constructor: 'x' } },
      Object.defineProperty(base(), 'id', { enumerable: true, get: () => (reads++ < 2 ? 'a' : 42) }),
      {
        ...base(),
        images: Object.assign(['x.jpg'], {
          [Symbol.iterator]: function* () {
            yield 'y.jpg';
          },
        }),
      },
      {
        ...base(),
        messages: [
          { role: 'user', content: '<image> what?', [Symbol('s')]: 1 },
          { role: 'assistant', content: 'a dog' },
        ],
      },
    ];
    for (const value of cases) {
      reads = 0;
      const zod = vlitRecordSchema.safeParse(value);
      reads = 0;
      const ours = safeParseVlitRecord(value);
      expect(ours.success).toBe(zod.success);
      expect(isDeepStrictEqual(ours.data, zod.data)).toBe(true);
    }
  });
});
