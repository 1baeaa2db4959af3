import { describe, expect, it } from 'vitest';
import { conversionVerdict, convertRecords, readRecordItems, writeRecords, type ConversionStats, type RecordItem } from './records.js';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

// Hand-written in the shape of the review's released file (COCO 2014): one image id as a string,
// lower-case instruction types, LLaVA-style turns, no record ids. One entry capitalised, as seen elsewhere.
const RELEASE = `{"image_source": "MSCOCO2014", "construction_time": "2023-11", "annotations": [
{"img_ids": "COCO_train2014_000000030722", "instruction_type": "global", "conversations": [{"from": "human", "value": "What is the man in the picture doing?"}, {"from": "gpt", "value": "He is riding a wave on a surfboard."}]},
{"img_ids": "COCO_train2014_000000000009", "instruction_type": "negative", "conversations": [{"from": "human", "value": "Is there a giraffe on the plate?"}, {"from": "gpt", "value": "No, there is no giraffe; the plate holds broccoli and bread."}]},
{"img_ids": "COCO_train2014_000000000025", "instruction_type": "region", "conversations": [{"from": "human", "value": "What is in the region [0.1, 0.2, 0.5, 0.9]?"}, {"from": "gpt", "value": "A giraffe."}, {"from": "human", "value": "What is it doing?"}, {"from": "gpt", "value": "Eating leaves."}]},
{"img_ids": "COCO_train2014_000000000030", "instruction_type": "Region", "conversations": [{"from": "human", "value": "Describe the vase."}, {"from": "gpt", "value": "A white vase with flowers."}]}
]}
`;

describe('the review dialect reads its own release format', () => {
  it('every record of a file in the released shape is read: string img_ids, lower-case types', async () => {
    const headers: Array<[string, unknown]> = [];
    const items = await collect(readRecordItems(RELEASE, { dialect: 'review', file: 'vlit_review.json', onHeader: (k, v) => headers.push([k, v]) }));
    const records = items.flatMap((i: RecordItem) => (i.kind === 'record' ? [i.record] : []));
    expect(items.filter((i) => i.kind === 'reject')).toEqual([]);
    expect(records.map((r) => r.id)).toEqual(['review-0', 'review-1', 'review-2', 'review-3']);
    expect(records.map((r) => r.images)).toEqual([
      ['COCO_train2014_000000030722.jpg'],
      ['COCO_train2014_000000000009.jpg'],
      ['COCO_train2014_000000000025.jpg'],
      ['COCO_train2014_000000000030.jpg'],
    ]);
    expect(records.map((r) => r.task)).toEqual(['global', 'negative', 'region', 'region']);
    expect(records[0].messages).toEqual([
      { role: 'user', content: '<image>\nWhat is the man in the picture doing?' },
      { role: 'assistant', content: 'He is riding a wave on a surfboard.' },
    ]);
    expect(records[2].messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(headers).toEqual([
      ['image_source', 'MSCOCO2014'],
      ['construction_time', '2023-11'],
    ]);
  });

  it('written back, the file is the same JSON value, key order, string ids and spellings included', async () => {
    const header: Record<string, unknown> = {};
    const records = [];
    for await (const i of readRecordItems(RELEASE, { dialect: 'review', onHeader: (k, v) => (header[k] = v) })) if (i.kind === 'record') records.push(i.record);
    const written = (await collect(writeRecords(records, { dialect: 'review', header }))).join('');
    expect(JSON.stringify(JSON.parse(written))).toBe(JSON.stringify(JSON.parse(RELEASE)));
  });

  it('new records are written in the released spelling; a list of ids and numeric ids stay as they were', async () => {
    const listed = `{"annotations": [{"img_ids": ["a", "b"], "instruction_type": "GLOBAL", "conversations": [{"from": "human", "value": "<image><image> compare"}, {"from": "gpt", "value": "same"}]}, {"img_ids": ["c"], "instruction_type": "region", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]}`;
    const records = [];
    for await (const i of readRecordItems(listed, { dialect: 'review' })) if (i.kind === 'record') records.push(i.record);
    expect(records.map((r) => r.task)).toEqual(['global', 'region']);
    const back = JSON.parse((await collect(writeRecords(records, { dialect: 'review' }))).join('')) as {
      annotations: Array<{ img_ids: unknown; instruction_type: string }>;
    };
    expect(back.annotations.map((a) => [a.img_ids, a.instruction_type])).toEqual([
      [['a', 'b'], 'GLOBAL'],
      [['c'], 'region'],
    ]);
    // A record from elsewhere: one image becomes a string id, its task a lower-case type.
    const fresh = {
      id: 'review-0',
      images: ['COCO_val2014_000000000042.jpg'],
      task: 'negative',
      source: { dataset: 'review', dialect: 'review' },
      messages: [
        { role: 'user' as const, content: '<image>\nIs there a dog?' },
        { role: 'assistant' as const, content: 'No.' },
      ],
    };
    const out = JSON.parse((await collect(writeRecords([fresh], { dialect: 'review' }))).join('')) as { annotations: Array<Record<string, unknown>> };
    expect(out.annotations[0]).toEqual({
      img_ids: 'COCO_val2014_000000000042',
      instruction_type: 'negative',
      conversations: [
        { from: 'human', value: 'Is there a dog?' },
        { from: 'gpt', value: 'No.' },
      ],
    });
  });

  it('converting it writes N of N; a run that writes 0 of N is not ok and says so', async () => {
    const good: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 };
    await collect(convertRecords(RELEASE, { from: 'review', to: 'vlit', onReject: () => undefined }, good));
    expect(good).toMatchObject({ read: 4, written: 4, rejected: 0 });
    expect(conversionVerdict(good)).toEqual({ ok: true, message: 'read 4 = written 4 + rejected 0' });
    // The annotations read as LLaVA (they have no id): every record is rejected.
    const wrong: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 };
    const asLlava = `[${JSON.parse(RELEASE)
      .annotations.map((a: unknown) => JSON.stringify(a))
      .join(',')}]`;
    await collect(convertRecords(asLlava, { from: 'llava', to: 'vlit', onReject: () => undefined }, wrong));
    expect(wrong).toMatchObject({ read: 4, written: 0, rejected: 4 });
    const verdict = conversionVerdict(wrong);
    expect(verdict.ok).toBe(false);
    expect(verdict.message).toMatch(/^read 4 = written 0 \+ rejected 4: nothing was written/);
    expect(conversionVerdict({ read: 0, written: 0, rejected: 0, warnings: 0 }).ok).toBe(true);
  });
});

describe('the MIMIC-IT writer', () => {
  it('rejects a conversation with no user turn, as documented, and writes the rest', async () => {
    const noUser = {
      id: 'sys-only',
      images: [],
      messages: [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'assistant' as const, content: 'A dog.' },
      ],
    };
    const fine = {
      id: 'ok-1',
      images: ['LA_1.jpg'],
      messages: [
        { role: 'user' as const, content: '<image>\nWhat is it?' },
        { role: 'assistant' as const, content: 'A dog.' },
      ],
    };
    const rejects: import('./records.js').RejectedRecord[] = [];
    const stats = { written: 0, rejected: 0, warnings: 0 };
    const text = (await collect(writeRecords([noUser, fine], { dialect: 'mimicit', onReject: (r) => rejects.push(r) }, stats))).join('');
    expect(stats).toMatchObject({ written: 1, rejected: 1 });
    expect(Object.keys((JSON.parse(text) as { data: Record<string, unknown> }).data)).toEqual(['ok-1']);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ index: 0, id: 'sys-only', field: 'messages', code: 'VLIT_VALIDATION' });
    expect(rejects[0].reason).toMatch(/no user turn/);
    expect(JSON.parse(rejects[0].raw)).toEqual(noUser);
    // Without onReject the writer throws the same typed error.
    await expect(collect(writeRecords([noUser], { dialect: 'mimicit' }))).rejects.toMatchObject({ code: 'VLIT_VALIDATION' });
  });
});
