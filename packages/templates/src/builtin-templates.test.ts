import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '@vlit/core';
import { createBuiltinTemplate, builtinTemplateNames, VICUNA_SYSTEM_PROMPT, type BuiltinTemplateName } from './chat-template.js';
import { buildWordLevelTokenizer } from './word-level-tokenizer.js';
import { encodeConversation } from './encode.js';
import { referenceRenderings } from './test-support.js';

const ref = referenceRenderings();

// The conversation of the must-show: 3 turns, 2 images.
const conversation: ChatMessage[] = [
  { role: 'user', content: '<image>\nWhat is in the picture?' },
  { role: 'assistant', content: 'A red bus on a street.' },
  { role: 'user', content: '<image>\nAnd in this one?' },
  { role: 'assistant', content: 'Two dogs playing.' },
  { role: 'user', content: 'Which image is brighter?' },
  { role: 'assistant', content: 'The first one.' },
];

describe('built-in templates match their published form', () => {
  for (const name of ['llama-2', 'llama-3', 'chatml', 'gemma', 'phi-3'] as const) {
    it(`${name} renders exactly what the published chat_template renders in Jinja2`, () => {
      const tpl = createBuiltinTemplate(name, name === 'chatml' ? { imageToken: '<image>' } : {});
      for (const r of ref.published[name].renders) {
        expect(tpl.render(r.messages, { addGenerationPrompt: r.addGenerationPrompt })).toBe(r.expected);
      }
    });
  }

  it('llava-v1 renders conv_vicuna_v1.get_prompt() after the tokenizer BOS (hand-written from conversation.py)', () => {
    const expected =
      '<s>' +
      VICUNA_SYSTEM_PROMPT +
      ' USER: <image>\nWhat is in the picture? ASSISTANT: A red bus on a street.</s>' +
      'USER: <image>\nAnd in this one? ASSISTANT: Two dogs playing.</s>' +
      'USER: Which image is brighter? ASSISTANT: The first one.</s>';
    expect(createBuiltinTemplate('llava-v1').render(conversation)).toBe(expected);
    // get_prompt() with an empty last message ends in "ASSISTANT:" with no space.
    expect(createBuiltinTemplate('llava-v1').render(conversation.slice(0, 1), { addGenerationPrompt: true })).toBe(
      '<s>' + VICUNA_SYSTEM_PROMPT + ' USER: <image>\nWhat is in the picture? ASSISTANT:',
    );
  });

  it('llava-plain renders preprocess_plain: image marker + caption + "\\n" (hand-written)', () => {
    expect(
      createBuiltinTemplate('llava-plain').render([
        { role: 'user', content: '<image>' },
        { role: 'assistant', content: 'A red bus on a street.' },
      ]),
    ).toBe('<s><image>A red bus on a street.\n');
  });
});

// Special tokens of each format: the word-level tokenizer keeps them whole.
const SPECIALS: Record<BuiltinTemplateName, string[]> = {
  'llava-plain': ['<s>', '<image>'],
  'llava-v1': ['<s>', '</s>', '<image>'],
  'llama-2': ['<s>', '</s>', '<image>'],
  'llama-3': ['<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<image>'],
  chatml: ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|image_pad|>', '<|vision_end|>'],
  gemma: ['<bos>', '<start_of_turn>', '<end_of_turn>', '<image>'],
  'phi-3': ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<|endoftext|>', '<image>'],
};

// Hand-written: the word-level tokens of each answer, then the format's end-of-turn token(s).
const EXPECTED_LABELS: Record<BuiltinTemplateName, string[]> = {
  'llava-plain': ['A', 'red', 'bus', 'on', 'a', 'street', '.', '\n', 'Two', 'dogs', 'playing', '.', '\n', 'The', 'first', 'one', '.', '\n'],
  'llava-v1': ['A', 'red', 'bus', 'on', 'a', 'street', '.', '</s>', 'Two', 'dogs', 'playing', '.', '</s>', 'The', 'first', 'one', '.', '</s>'],
  'llama-2': ['A', 'red', 'bus', 'on', 'a', 'street', '.', '</s>', 'Two', 'dogs', 'playing', '.', '</s>', 'The', 'first', 'one', '.', '</s>'],
  'llama-3': ['A', 'red', 'bus', 'on', 'a', 'street', '.', '<|eot_id|>', 'Two', 'dogs', 'playing', '.', '<|eot_id|>', 'The', 'first', 'one', '.', '<|eot_id|>'],
  chatml: ['A', 'red', 'bus', 'on', 'a', 'street', '.', '<|im_end|>', 'Two', 'dogs', 'playing', '.', '<|im_end|>', 'The', 'first', 'one', '.', '<|im_end|>'],
  gemma: [
    'A',
    'red',
    'bus',
    'on',
    'a',
    'street',
    '.',
    '<end_of_turn>',
    'Two',
    'dogs',
    'playing',
    '.',
    '<end_of_turn>',
    'The',
    'first',
    'one',
    '.',
    '<end_of_turn>',
  ],
  'phi-3': ['A', 'red', 'bus', 'on', 'a', 'street', '.', '<|end|>', 'Two', 'dogs', 'playing', '.', '<|end|>', 'The', 'first', 'one', '.', '<|end|>'],
};

describe('labels of a 3-turn conversation with 2 images', () => {
  for (const name of builtinTemplateNames) {
    it(`${name}: labels are exactly the answer tokens plus end-of-turn tokens`, () => {
      const template = createBuiltinTemplate(name);
      const tokenizer = buildWordLevelTokenizer({ corpus: [template.render(conversation)], specialTokens: SPECIALS[name] });
      const record = { id: `three-turns-${name}`, images: ['a.jpg', 'b.jpg'], messages: conversation };
      const sample = encodeConversation(record, { template, tokenizer, imageTokens: 4 });

      const trained = sample.labels.flatMap((l, i) => (l === -100 ? [] : [i]));
      expect(trained.map((i) => tokenizer.idToToken(sample.labels[i]))).toEqual(EXPECTED_LABELS[name]);
      for (const i of trained) expect(sample.labels[i]).toBe(sample.inputIds[i]);

      const imageId = tokenizer.tokenToId(template.imageToken)!;
      expect(sample.imageSpans.map((s) => [s.imageIndex, s.end - s.start])).toEqual([
        [0, 4],
        [1, 4],
      ]);
      for (const s of sample.imageSpans) {
        for (let k = s.start; k < s.end; k++) {
          expect(sample.inputIds[k]).toBe(imageId);
          expect(sample.labels[k]).toBe(-100);
        }
      }
      expect(sample.attentionMask.every((m) => m === 1)).toBe(true);
      expect(sample.boundaryIssues).toEqual([]);
    });
  }

  it('last-only and per-turn flags select which answers are trained', () => {
    const template = createBuiltinTemplate('chatml');
    const tokenizer = buildWordLevelTokenizer({ corpus: [template.render(conversation)], specialTokens: SPECIALS.chatml });
    const record = { id: 'policy', images: ['a.jpg', 'b.jpg'], messages: conversation };
    const last = encodeConversation(record, { template, tokenizer, assistantTurns: 'last' });
    expect(last.labels.filter((l) => l !== -100).map((l) => tokenizer.idToToken(l))).toEqual(['The', 'first', 'one', '.', '<|im_end|>']);
    const flagged = encodeConversation(
      { ...record, messages: conversation.map((m, i) => (i === 3 ? { ...m, train: true } : m)) },
      { template, tokenizer, assistantTurns: 'flagged' },
    );
    expect(flagged.labels.filter((l) => l !== -100).map((l) => tokenizer.idToToken(l))).toEqual(['Two', 'dogs', 'playing', '.', '<|im_end|>']);
  });
});
