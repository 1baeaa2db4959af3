import { describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { createBuiltinTemplate } from './chat-template.js';
import { createJinjaChatTemplate } from './jinja-template.js';
import { buildWordLevelTokenizer } from './word-level-tokenizer.js';
import { encodeBatch, encodeConversation } from './encode.js';
import { referenceRenderings } from './test-support.js';

const template = createBuiltinTemplate('chatml');
const tokenizer = buildWordLevelTokenizer({
  corpus: ['What is it ? A bus . Where ? On the street . Describe it'],
  specialTokens: ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|image_pad|>', '<|vision_end|>'],
});
const good = (id: string) => ({
  id,
  images: ['x.jpg'],
  messages: [
    { role: 'user', content: '<image>\nWhat is it?' },
    { role: 'assistant', content: 'A bus.' },
  ],
});

function caught(fn: () => unknown): { code?: string; details: Record<string, unknown>; message: string } {
  try {
    fn();
  } catch (e) {
    if (isVlitError(e)) return e as never;
    throw e;
  }
  throw new Error('expected a throw');
}

describe('bad input is a typed error naming record and field', () => {
  it('a message with an unknown role', () => {
    const err = caught(() =>
      encodeConversation(
        {
          id: 'r-role',
          images: [],
          messages: [
            { role: 'narrator', content: 'Hi' },
            { role: 'assistant', content: 'A bus.' },
          ],
        },
        { template, tokenizer },
      ),
    );
    expect(err.code).toBe('VLIT_VALIDATION');
    expect(err.details.record).toBe('r-role');
    expect(err.details.field).toBe('messages.0.role');
  });

  it('an image placeholder without an image', () => {
    const err = caught(() => encodeConversation({ ...good('r-img'), images: [] }, { template, tokenizer }));
    expect(err.code).toBe('VLIT_VALIDATION');
    expect(err.details.record).toBe('r-img');
    expect(err.details.field).toBe('images');
  });

  it('an image token typed literally into message text', () => {
    const record = good('r-literal');
    record.messages[0].content = '<image>\nWhat is <|image_pad|> it?';
    const err = caught(() => encodeConversation(record, { template, tokenizer }));
    expect(err.code).toBe('VLIT_FORMAT');
    expect(err.details).toMatchObject({ record: 'r-literal', field: 'images' });
  });

  it('a template that raises for a record (published Gemma refuses a system message)', () => {
    const gemma = createJinjaChatTemplate({ source: referenceRenderings().published.gemma.template, name: 'gemma-2', variables: { bos_token: '<bos>' } });
    const record = {
      id: 'r-sys',
      images: [],
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hi' },
      ],
    };
    const err = caught(() => encodeConversation(record, { template: gemma, tokenizer }));
    expect(err.code).toBe('VLIT_FORMAT');
    expect(err.details).toMatchObject({ record: 'r-sys', field: 'messages' });
    expect(err.message).toContain('System role not supported');
  });

  it('a record with nothing to train on', () => {
    const err = caught(() => encodeConversation(good('r-empty'), { template, tokenizer, assistantTurns: 'flagged' }));
    expect(err.code).toBe('VLIT_VALIDATION');
    expect(err.details).toMatchObject({ record: 'r-empty', field: 'messages' });
  });
});

describe('encodeBatch', () => {
  it('puts bad records in rejects with reason and field, encodes the rest, and the counts add up', () => {
    const records = [
      good('ok-1'),
      {
        id: 'bad-role',
        images: [],
        messages: [
          { role: 'robot', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
      },
      good('ok-2'),
      { ...good('bad-image'), images: [] },
      'not even an object',
      good('ok-3'),
    ];
    const events: number[] = [];
    const result = encodeBatch(records, { template, tokenizer, onProgress: (e) => events.push(e.done), progressEvery: 2 });
    expect(result.encoded.map((s) => s.id)).toEqual(['ok-1', 'ok-2', 'ok-3']);
    expect(result.rejects.map((r) => [r.id, r.field, r.code])).toEqual([
      ['bad-role', 'messages.0.role', 'VLIT_VALIDATION'],
      ['bad-image', 'images', 'VLIT_VALIDATION'],
      [4, '(root)', 'VLIT_VALIDATION'],
    ]);
    for (const r of result.rejects) expect(r.reason.length).toBeGreaterThan(0);
    expect(result.counts).toEqual({ read: 6, encoded: 3, rejected: 3 });
    expect(result.counts.read).toBe(result.counts.encoded + result.counts.rejected);
    expect(events).toEqual([2, 4, 6, 6]);
  });
});

describe('truncation never cuts an image span', () => {
  const long = {
    id: 'long',
    images: ['a.jpg', 'b.jpg'],
    messages: [
      { role: 'user', content: '<image>\nWhat is it?' },
      { role: 'assistant', content: 'A bus.' },
      { role: 'user', content: '<image>\nWhere?' },
      { role: 'assistant', content: 'On the street.' },
    ],
  };
  // Hand-counted chatml tokens (word-level): turn 1 is <|im_start|> user \n <|vision_start|> [image x10]
  // <|vision_end|> \n What is it ? <|im_end|> \n = 4 + 10 + 8 = 22, then <|im_start|> assistant \n A bus . <|im_end|> \n = 8.
  it('turns: keeps whole messages (30 tokens) when the limit falls inside the second image', () => {
    const s = encodeConversation(long, { template, tokenizer, imageTokens: 10, maxLength: 40, truncation: 'turns' });
    expect(s.truncated).toBe(true);
    expect(s.inputIds).toHaveLength(30);
    expect(s.imageSpans).toEqual([{ imageIndex: 0, start: 4, end: 14 }]);
    expect(s.labels.filter((l) => l !== -100).map((l) => tokenizer.idToToken(l))).toEqual(['A', 'bus', '.', '<|im_end|>']);
  });

  it('right: moves the cut to the start of an image span it would split', () => {
    // Second image starts after 30 + <|im_start|> user \n <|vision_start|> = 34.
    const s = encodeConversation(long, { template, tokenizer, imageTokens: 10, maxLength: 38, truncation: 'right' });
    expect(s.inputIds).toHaveLength(34);
    expect(s.imageSpans).toHaveLength(1);
  });

  it('error: rejects an over-long record', () => {
    const err = caught(() => encodeConversation(long, { template, tokenizer, imageTokens: 10, maxLength: 38, truncation: 'error' }));
    expect(err.details).toMatchObject({ record: 'long', field: 'messages' });
  });

  it('image token counts may depend on the image (e.g. its size)', () => {
    const sized = {
      ...long,
      images: [
        { path: 'a.jpg', width: 336, height: 336 },
        { path: 'b.jpg', width: 672, height: 336 },
      ],
    };
    const s = encodeConversation(sized, {
      template,
      tokenizer,
      imageTokens: (img) => (typeof img === 'string' ? 1 : ((img.width ?? 0) / 336) * ((img.height ?? 0) / 336) * 3),
    });
    expect(s.imageSpans.map((x) => x.end - x.start)).toEqual([3, 6]);
  });
});
