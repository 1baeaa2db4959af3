import type { VlitRecord, VlitWarning } from '@vlit/core';
import { describe, expect, it } from 'vitest';
import { CARRIER_FIELD, NOT_EXPRESSIBLE } from './codec.js';
import { DIALECT_NAMES, readRecords, writeRecords, type DialectName } from './records.js';
import { datasetInfoEntry, dialectFromDatasetInfo } from './dialects/sharegpt.js';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

async function text(chunks: AsyncIterable<string>): Promise<string> {
  return (await collect(chunks)).join('');
}

// Hand-written LLaVA records: multi-turn, multi-image (a list), no image, numeric id, extra fields,
// escapes and non-ASCII text. The file is what a JSON array of them looks like one per line.
const llavaFixture = [
  {
    id: '000000033471',
    image: 'coco/train2017/000000033471.jpg',
    conversations: [
      { from: 'human', value: '<image>\nWhat are the colors of the bus in the image?' },
      { from: 'gpt', value: 'The bus in the image is white and red.' },
      { from: 'human', value: 'What feature can be seen on the back of the bus?' },
      { from: 'gpt', value: 'The back of the bus features an advertisement.' },
    ],
  },
  {
    id: 'multi-1',
    image: ['a/1.jpg', 'b/2.png'],
    conversations: [
      { from: 'human', value: '<image>\n<image>\nWhat differs between the two pictures? "quoted" \\ back\\slash' },
      { from: 'gpt', value: 'The first shows a café at night; the second — a park 🌳 by day.' },
    ],
  },
  {
    id: 'text-only',
    conversations: [
      { from: 'human', value: 'Write a haiku about tuning.\nKeep it short.' },
      { from: 'gpt', value: 'Weights drift, loss descends\nimages whisper to words\nthe adapter learns' },
    ],
  },
  {
    id: 7,
    image: ['single-in-list.jpg'],
    conversations: [
      { from: 'human', value: 'Look: <image> how many dogs?' },
      { from: 'gpt', value: 'Two.' },
    ],
    model: 'gpt-4-0314',
    score: 0.5,
  },
];
const llavaFile = `[\n${llavaFixture.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`;

describe('round trip', () => {
  it('LLaVA -> canonical -> ShareGPT -> canonical -> LLaVA is byte-for-byte stable', async () => {
    const canonical1 = await collect(readRecords(llavaFile, { dialect: 'llava', file: 'llava.json' }));
    expect(canonical1.map((r) => r.id)).toEqual(['000000033471', 'multi-1', 'text-only', '7']);
    // independent expectations about the canonical form
    expect(canonical1[1].images).toEqual(['a/1.jpg', 'b/2.png']);
    expect(canonical1[2].images).toEqual([]);
    expect(canonical1[0].messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(canonical1[3].metadata).toMatchObject({ model: 'gpt-4-0314', score: 0.5 });

    const warnings: VlitWarning[] = [];
    const sharegpt = await text(writeRecords(canonical1, { dialect: 'sharegpt', container: 'json', onWarning: (w) => warnings.push(w) }));
    expect(warnings).toEqual([]); // LLaVA content fits ShareGPT entirely
    const sgRecords = JSON.parse(sharegpt) as Record<string, unknown>[];
    expect(sgRecords[1].images).toEqual(['a/1.jpg', 'b/2.png']);
    expect((sgRecords[0].conversations as { from: string }[]).map((t) => t.from)).toEqual(['human', 'gpt', 'human', 'gpt']);

    const canonical2 = await collect(readRecords(sharegpt, { dialect: 'sharegpt', file: 'sharegpt.json' }));
    expect(canonical2).toEqual(canonical1);
    const llavaAgain = await text(writeRecords(canonical2, { dialect: 'llava', container: 'json' }));
    expect(llavaAgain).toBe(llavaFile);
    // and a second lap changes nothing
    const lap2 = await text(writeRecords(await collect(readRecords(llavaAgain, { dialect: 'llava' })), { dialect: 'llava', container: 'json' }));
    expect(lap2).toBe(llavaFile);
  });

  it('the same trip through JSON Lines on both sides', async () => {
    const canonical = await collect(readRecords(llavaFile, { dialect: 'llava' }));
    const jsonl = await text(writeRecords(canonical, { dialect: 'vlit' }));
    expect(jsonl.split('\n').filter(Boolean)).toHaveLength(4);
    const sg = await text(writeRecords(readRecords(jsonl, { dialect: 'vlit' }), { dialect: 'sharegpt', container: 'jsonl' }));
    const back = await text(writeRecords(readRecords(sg, { dialect: 'sharegpt' }), { dialect: 'llava', container: 'json' }));
    expect(back).toBe(llavaFile);
  });

  // Canonical records exercising what some dialects cannot express.
  const rich: VlitRecord[] = [
    {
      id: 'sys-1',
      images: ['img/1.jpg'],
      messages: [
        { role: 'system', content: 'You are a careful visual assistant.' },
        { role: 'user', content: '<image>\nIs there a cat?' },
        { role: 'assistant', content: 'No, there is no cat.', train: true },
      ],
      task: 'negative',
      source: { dataset: 'review-data', dialect: 'review', method: 'annotation-adaption' },
      metadata: { imageId: 42, tags: ['a', 'b'] },
    },
    {
      id: 'parts-1',
      images: [{ path: 'img/2.jpg', width: 640, height: 480 }, 'img/3.jpg'],
      messages: [
        { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Compare with' }, { type: 'image' }] },
        { role: 'assistant', content: 'The second is darker.', train: true },
        { role: 'user', content: 'Why?' },
        { role: 'assistant', content: 'Less light.', train: false },
      ],
    },
    {
      id: 'plain-1',
      images: [],
      messages: [
        { role: 'user', content: 'Say hi.' },
        { role: 'assistant', content: 'Hi.' },
      ],
      task: 'global',
    },
  ];

  for (const name of DIALECT_NAMES) {
    it(`canonical -> ${name} -> canonical is exact; unexpressible content is warned per record and carried`, async () => {
      const warnings: VlitWarning[] = [];
      const native = await text(writeRecords(rich, { dialect: name, container: 'json', onWarning: (w) => warnings.push(w) }));
      const back = await collect(readRecords(native, { dialect: name, file: `x.${name}` }));
      expect(back).toEqual(rich);
      for (const w of warnings) {
        expect(w.code).toBe(NOT_EXPRESSIBLE);
        expect(rich.map((r) => r.id)).toContain(w.details?.record);
        expect(typeof w.details?.field).toBe('string');
        expect(w.details?.keptIn).toBe(CARRIER_FIELD);
      }
      const expected: Partial<Record<DialectName, [string, string][]>> = {
        vlit: [],
        // object image refs (width/height) and task labels have no place in OpenAI-style records
        openai: [
          ['sys-1', 'task'],
          ['parts-1', 'images'],
          ['plain-1', 'task'],
        ],
        // ShareGPT has a system column for a leading system prompt and an images list of paths: the
        // train flags, the task labels, the image sizes and the content parts (flattened to text) do not fit.
        sharegpt: [
          ['sys-1', 'messages.train'],
          ['sys-1', 'task'],
          ['parts-1', 'images'],
          ['parts-1', 'messages'],
          ['plain-1', 'task'],
        ],
        // Alpaca likewise (system column, history pairs, images list): the same four kinds of loss.
        alpaca: [
          ['sys-1', 'messages.train'],
          ['sys-1', 'task'],
          ['parts-1', 'images'],
          ['parts-1', 'messages'],
          ['plain-1', 'task'],
        ],
        llava: [
          ['sys-1', 'messages.0'],
          ['sys-1', 'messages.train'],
          ['sys-1', 'task'],
          ['parts-1', 'images'],
          ['parts-1', 'messages'],
          ['plain-1', 'task'],
        ],
      };
      const got = warnings.map((w) => [w.details?.record, w.details?.field] as [string, string]);
      if (expected[name]) expect(got.sort()).toEqual(expected[name]!.sort());
      // every dialect without a place for the system prompt says so for sys-1
      if (!['vlit', 'openai', 'sharegpt', 'alpaca'].includes(name)) expect(got).toContainEqual(['sys-1', 'messages.0']);
    });
  }

  it('without the carrier, what cannot be expressed is warned as dropped', async () => {
    const warnings: VlitWarning[] = [];
    const native = await text(writeRecords(rich.slice(0, 1), { dialect: 'llava', carrier: false, onWarning: (w) => warnings.push(w) }));
    expect(native).not.toContain(`"${CARRIER_FIELD}"`);
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.every((w) => w.details?.keptIn === null && w.message.includes('dropped'))).toBe(true);
  });

  it('dataset_info.json tags drive the ShareGPT columns (OpenAI-style role/content tags)', async () => {
    const entry = datasetInfoEntry({
      fileName: 'mllm.json',
      formatting: 'sharegpt',
      columns: { messages: 'messages' },
      tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
    });
    const dialect = dialectFromDatasetInfo(entry);
    const native = await text(writeRecords(rich, { dialect, container: 'json' }));
    const parsed = JSON.parse(native) as { messages: { role: string }[]; system?: string }[];
    expect(parsed[0].system).toBe('You are a careful visual assistant.');
    expect(parsed[0].messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(await collect(readRecords(native, { dialect }))).toEqual(rich);
  });

  it('MIMIC-IT and the review format keep their file-level header', async () => {
    const headers: [string, unknown][] = [];
    const mimic = await text(writeRecords(rich, { dialect: 'mimicit', header: { meta: { version: '0.0.1', author: 'x' } } }));
    const parsed = JSON.parse(mimic) as { meta: unknown; data: Record<string, { image_ids: string[]; instruction: string }> };
    expect(parsed.meta).toEqual({ version: '0.0.1', author: 'x' });
    expect(Object.keys(parsed.data)).toEqual(['sys-1', 'parts-1', 'plain-1']);
    expect(parsed.data['sys-1'].image_ids).toEqual(['1']);
    expect(parsed.data['sys-1'].instruction).toBe('Is there a cat?');
    await collect(readRecords(mimic, { dialect: 'mimicit', onHeader: (k, v) => headers.push([k, v]) }));
    expect(headers).toEqual([['meta', { version: '0.0.1', author: 'x' }]]);

    const review = await text(writeRecords(rich, { dialect: 'review', header: { image_source: 'MSCOCO2014', construction_time: '2023-11-01' } }));
    const r = JSON.parse(review) as { image_source: string; annotations: { instruction_type: string; img_ids: string[] }[] };
    expect(r.image_source).toBe('MSCOCO2014');
    expect(r.annotations.map((a) => a.instruction_type)).toEqual(['negative', 'global', 'global']);
  });
});
