// The LLaVA reader reads plainly valid records without zod (the common case, for speed) and sends
// everything else through the schema: both must give what the dialect documents.
import { ValidationError } from '@vlit/core';
import { describe, expect, it } from 'vitest';
import { llavaDialect } from './dialects/llava.js';

function fieldOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).details.field;
  }
  throw new Error('expected a ValidationError');
}

describe('llava decode', () => {
  it('a valid record with extra fields in any order decodes to the hand-worked draft, extras in input order', () => {
    const native = JSON.parse(
      '{"model": "gpt-4", "conversations": [{"value": "<image>\\nq", "from": "human", "lang": "en"}, {"from": "gpt", "value": "a"}], "id": 7, "image": ["x.jpg"], "z": 1}',
    );
    const draft = llavaDialect.decode(native, { index: 0 });
    expect(JSON.stringify(draft)).toBe(
      JSON.stringify({
        id: '7',
        images: ['x.jpg'],
        messages: [
          { role: 'user', content: '<image>\nq' },
          { role: 'assistant', content: 'a' },
        ],
        source: { dataset: 'llava', dialect: 'llava' },
        metadata: { model: 'gpt-4', z: 1, llava: { numericId: true, imageList: true, turnFields: { 0: { lang: 'en' } } } },
      }),
    );
  });

  it('invalid records still fail with the field that is wrong', () => {
    const turn = { from: 'human', value: 'q' };
    expect(fieldOf(() => llavaDialect.decode({ id: 'a', conversations: [] }, { index: 0 }))).toBe('conversations');
    expect(fieldOf(() => llavaDialect.decode({ id: '', conversations: [turn] }, { index: 0 }))).toBe('id');
    expect(fieldOf(() => llavaDialect.decode({ id: Number.NaN, conversations: [turn] }, { index: 0 }))).toBe('id');
    expect(fieldOf(() => llavaDialect.decode({ id: 'a', image: '', conversations: [turn] }, { index: 0 }))).toBe('image');
    expect(fieldOf(() => llavaDialect.decode({ id: 'a', image: ['x.jpg', 3], conversations: [turn] }, { index: 0 }))).toBe('image');
    expect(fieldOf(() => llavaDialect.decode({ id: 'a', conversations: [{ from: 'system', value: 's' }] }, { index: 0 }))).toBe('conversations.0.from');
    expect(fieldOf(() => llavaDialect.decode({ id: 'a', conversations: [turn, { from: 'gpt', value: 3 }] }, { index: 0 }))).toBe('conversations.1.value');
    expect(fieldOf(() => llavaDialect.decode({ id: 'a', conversations: [turn, null] }, { index: 0 }))).toBe('conversations.1');
  });

  it('an own __proto__ key never reaches the prototype chain', () => {
    const native = JSON.parse('{"id": "a", "__proto__": {"polluted": 1}, "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}');
    const draft = llavaDialect.decode(native, { index: 0 });
    expect(draft.messages).toHaveLength(2);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
