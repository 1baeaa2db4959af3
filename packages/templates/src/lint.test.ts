import { describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { createBuiltinTemplate, createChatTemplate } from './chat-template.js';
import { assertLintClean, formatLintReport, lintTemplate } from './lint.js';
import { loadQwen3 } from './test-support.js';

const record = (id: string, answer = 'Hello there.') => ({
  id,
  images: ['a.jpg'],
  messages: [
    { role: 'user', content: '<image>\nSay hello.' },
    { role: 'assistant', content: answer },
  ],
});

// The planted mismatch: the assistant prefix ends in a space that Qwen3's BPE merges into the first
// answer token ("Ġ" + "Hello" -> "ĠHello"), so the prompt tokenizes differently alone than in context.
const planted = createChatTemplate({
  name: 'planted-space',
  imageToken: '<|image_pad|>',
  imageText: '<|vision_start|><|image_pad|><|vision_end|>',
  system: { kind: 'unsupported' },
  user: { prefix: 'User: ', suffix: '\n' },
  assistant: { prefix: 'Assistant: ', close: '<|im_end|>', suffix: '\n' },
  generationPrompt: 'Assistant: ',
});

describe('template linter', () => {
  it('catches a planted assistant-prefix mismatch, naming the sample and the offending tokens', async () => {
    const { tokenizer } = await loadQwen3();
    const report = lintTemplate([record('planted-1')], { template: planted, tokenizer, imageTokens: 4 });
    expect(report.ok).toBe(false);
    const issues = report.samples[0].issues;
    const mismatch = issues.find((i) => i.code === 'inference-mismatch')!;
    // Hand-derived: inference ends with the lone space token, training has " Hello" there.
    expect(mismatch.expectedTokens).toEqual([' ']);
    expect(mismatch.tokens).toEqual([' Hello']);
    expect(mismatch.message).toContain('planted-1');
    expect(mismatch.message).toContain('" Hello"');
    expect(issues.some((i) => i.code === 'boundary-straddle' && i.tokens?.[0] === ' Hello')).toBe(true);

    let err: unknown;
    try {
      assertLintClean(report);
    } catch (e) {
      err = e;
    }
    expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
    expect((err as Error).message).toContain('planted-1');
    expect((err as Error).message).toContain('" Hello"');
    expect((err as { details: { record: string } }).details.record).toBe('planted-1');
  });

  it('passes the built-in ChatML template with the real Qwen3 tokenizer, and shows trained tokens', async () => {
    const { tokenizer } = await loadQwen3();
    const report = lintTemplate([record('clean-1'), record('clean-2', 'Hi! 你好 🚌')], {
      template: createBuiltinTemplate('chatml'),
      tokenizer,
      imageTokens: 4,
      roundTrip: 'exact',
    });
    expect(report.samples.flatMap((s) => s.issues)).toEqual([]);
    expect(report.ok).toBe(true);
    // Hand-written: "Hello there." is Hello / Ġthere / . in Qwen3's BPE, then <|im_end|>.
    expect(report.samples[0].tokens.filter((t) => t.trained).map((t) => t.text)).toEqual(['Hello', ' there', '.', '<|im_end|>']);
    const plain = formatLintReport(report, { color: false });
    expect(plain).toContain('[Hello] [ there] [.] [<|im_end|>]');
    expect(plain).toContain('[<|image_pad|>x4]');
    expect(formatLintReport(report)).toContain('\u001b[42;30mHello\u001b[0m');
    expect(JSON.parse(JSON.stringify(report)).counts).toEqual({ samples: 2, failed: 0, issues: 0 });
  });

  it('fails on all-masked labels and on image count mismatches', async () => {
    const { tokenizer } = await loadQwen3();
    const template = createBuiltinTemplate('chatml');
    const masked = lintTemplate([record('masked')], { template, tokenizer, assistantTurns: 'flagged' });
    expect(masked.samples[0].issues.map((i) => i.code)).toEqual(['all-masked']);
    expect(masked.samples[0].issues[0].message).toContain('masked');
    const images = lintTemplate([{ ...record('two-images'), images: ['a.jpg', 'b.jpg'] }], { template, tokenizer });
    expect(images.samples[0].issues.map((i) => [i.code, i.field])).toEqual([['image-count', 'images']]);
    expect(images.samples[0].id).toBe('two-images');
  });
});
