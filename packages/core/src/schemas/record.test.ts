import { describe, expect, it } from 'vitest';
import { countMessageImages, IMAGE_PLACEHOLDER, parseVlitRecord, vlitRecordSchema, type VlitRecordInput } from './record.js';
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
});
