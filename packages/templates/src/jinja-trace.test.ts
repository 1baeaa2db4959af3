import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { createRng, type ChatMessage } from '@vlit/core';
import { describe, expect, it } from 'vitest';
import { createJinjaChatTemplate } from './jinja-template.js';
import { guardsHold, traceContentGuards } from './jinja-trace.js';
import { QWEN3_DIR, referenceRenderings } from './test-support.js';

const ref = referenceRenderings();
const qwenSource = (JSON.parse(readFileSync(join(QWEN3_DIR, 'tokenizer_config.json'), 'utf8')) as { chat_template: string }).chat_template;
const sources: Array<[string, string, Record<string, string>]> = [
  ['qwen3', qwenSource, {}],
  ...Object.entries(ref.published).map(([name, spec]) => [name, spec.template, spec.special] as [string, string, Record<string, string>]),
];

const probe = (i: number): string => `\uE000${i}\uE001`;
const PIECES = [
  'Hi',
  'what is on the left',
  '<image>\n',
  '',
  ' ',
  '\n',
  'trailing space ',
  ' leading',
  'ends\n',
  '\nstarts',
  '</think>',
  '<think>\nreason\n</think>\n\n',
  '<tool_response>',
  '</tool_response>',
  '!',
  'multi\n\nline',
];

/** Random conversations: optional system message, 1-3 user/assistant turns, contents built from awkward pieces. */
function conversations(seed: string, count: number): Array<{ messages: ChatMessage[]; addGenerationPrompt: boolean }> {
  const rng = createRng(seed);
  const content = (): string => Array.from({ length: rng.int(0, 3) }, () => rng.choice(PIECES)).join('');
  const out: Array<{ messages: ChatMessage[]; addGenerationPrompt: boolean }> = [];
  for (let k = 0; k < count; k++) {
    const messages: ChatMessage[] = [];
    if (rng.int(0, 2) === 0) messages.push({ role: 'system', content: rng.int(0, 3) === 0 ? content() : 'You are helpful.' });
    const turns = rng.int(1, 3);
    for (let t = 0; t < turns; t++) {
      messages.push({ role: 'user', content: rng.int(0, 2) === 0 ? `<image>\n${content()}` : content() });
      messages.push({ role: 'assistant', content: rng.int(0, 2) === 0 ? 'A plain answer.' : content() });
    }
    const addGenerationPrompt = rng.int(0, 3) === 0;
    out.push({ messages: addGenerationPrompt ? messages.slice(0, -1) : messages, addGenerationPrompt });
  }
  return out;
}

const outcome = (fn: () => unknown): unknown => {
  try {
    return fn();
  } catch (e) {
    return (e as { code?: string }).code ?? 'error';
  }
};

describe('content tracing of Jinja chat templates', () => {
  it('wherever the guards hold, the real rendering is the traced rendering with the contents substituted', () => {
    let held = 0;
    let failed = 0;
    const traced: string[] = [];
    for (const [name, source, special] of sources) {
      const template = new Template(source);
      const traces = new Map<string, ReturnType<typeof traceContentGuards>>();
      for (const { messages, addGenerationPrompt } of conversations(`trace-${name}`, 150)) {
        const variables = { ...special, add_generation_prompt: addGenerationPrompt };
        const key = JSON.stringify([messages.map((m) => m.role), addGenerationPrompt]);
        if (!traces.has(key))
          traces.set(
            key,
            traceContentGuards(
              template,
              variables,
              messages.map((m, i) => ({ role: m.role, content: probe(i) })),
            ),
          );
        const trace = traces.get(key)!;
        if (!trace) continue;
        const contents = messages.map((m) => m.content as string);
        if (!guardsHold(trace.guards, contents)) {
          failed++;
          continue;
        }
        held++;
        const expected = trace.text.replace(/\uE000(\d+)\uE001/g, (_, i: string) => contents[Number(i)]);
        expect(template.render({ ...variables, messages }), `${name} ${JSON.stringify(messages)}`).toBe(expected);
      }
      if ([...traces.values()].some((t) => t !== null)) traced.push(name);
    }
    // Every fixture template is traceable, and both outcomes of the guards are exercised.
    expect(traced.sort()).toEqual(sources.map(([n]) => n).sort());
    expect(held).toBeGreaterThan(200);
    expect(failed).toBeGreaterThan(50);
  });

  it('one-render segments equal the prefix method on every fixture template and generated conversations', () => {
    for (const [name, source, special] of sources) {
      const cached = createJinjaChatTemplate({ source, name, variables: special, imageText: '<|vision_start|><|image_pad|><|vision_end|>' });
      const plain = createJinjaChatTemplate({
        source,
        name,
        variables: special,
        imageText: '<|vision_start|><|image_pad|><|vision_end|>',
        segmentCache: false,
      });
      let ok = 0;
      for (const { messages, addGenerationPrompt } of conversations(`segments-${name}`, 120)) {
        const want = outcome(() => plain.renderSegments(messages, { addGenerationPrompt }));
        const got = outcome(() => cached.renderSegments(messages, { addGenerationPrompt }));
        expect(got, `${name} ${JSON.stringify(messages)} ${addGenerationPrompt}`).toEqual(want);
        if (Array.isArray(got)) {
          ok++;
          expect(got.map((s: { text: string }) => s.text).join('')).toBe(plain.render(messages, { addGenerationPrompt }));
        }
      }
      expect(ok, name).toBeGreaterThan(10);
    }
  });

  it('records the questions a template asks about content, and a different answer falls back to rendering', () => {
    const source = "{% for m in messages %}{% if m.content.startswith('!') %}LOUD {% endif %}[{{ m.role }}]{{ m.content }}[/{{ m.role }}]{% endfor %}";
    const trace = traceContentGuards(new Template(source), {}, [
      { role: 'user', content: probe(0) },
      { role: 'assistant', content: probe(1) },
    ]);
    expect(trace?.guards).toEqual([
      { parts: [0], op: 'startswith', arg: '!', result: false },
      { parts: [1], op: 'startswith', arg: '!', result: false },
    ]);
    expect(guardsHold(trace!.guards, ['hello', 'world'])).toBe(true);
    expect(guardsHold(trace!.guards, ['hello', '!world'])).toBe(false);
    const cached = createJinjaChatTemplate({ source });
    const plain = createJinjaChatTemplate({ source, segmentCache: false });
    const quiet: ChatMessage[] = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'yo' },
    ];
    const loud: ChatMessage[] = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: '!yo' },
    ];
    expect(cached.renderSegments(quiet)).toEqual(plain.renderSegments(quiet));
    const segs = cached.renderSegments(loud);
    expect(segs).toEqual(plain.renderSegments(loud));
    expect(segs.map((s) => s.text).join('')).toBe('[user]hi[/user]LOUD [assistant]!yo[/assistant]');
  });

  it.each([
    ['a filter on content', '{% for m in messages %}{{ m.content|lower }}{% endfor %}'],
    ['slicing content', '{% for m in messages %}{{ m.content[1:] }}{% endfor %}'],
    ['content length', '{% for m in messages %}{{ m.content|length }}:{{ m.content }}{% endfor %}'],
    [
      'content passed to a function',
      "{% for m in messages %}{% if m.content == 'x' %}{{ raise_exception(m.content) }}{% endif %}{{ m.content|upper }}{% endfor %}",
    ],
    ['printing a message object', '{% for m in messages %}{{ m }}{% endfor %}'],
    ['a block assignment', '{% for m in messages %}{% set x %}{{ m.content }}{% endset %}{{ x }}{% endfor %}'],
    ['a macro', '{% macro show(c) %}{{ c }}{% endmacro %}{% for m in messages %}{{ show(m.content) }}{% endfor %}'],
    ['a method that transforms content', '{% for m in messages %}{{ m.content.upper() }}{% endfor %}'],
    ['stripping that changes the probe', "{% for m in messages %}{{ ('  ' + m.content).strip() }}{% endfor %}"],
  ])('does not trace %s, and segments still match the prefix method', (_what, body) => {
    const source = `${body}{% if add_generation_prompt %}>{% endif %}`;
    const trace = traceContentGuards(new Template(source), {}, [
      { role: 'user', content: probe(0) },
      { role: 'assistant', content: probe(1) },
    ]);
    expect(trace).toBeNull();
    const cached = createJinjaChatTemplate({ source });
    const plain = createJinjaChatTemplate({ source, segmentCache: false });
    for (const content of ['  hi  ', 'plain', 'x']) {
      const messages: ChatMessage[] = [
        { role: 'user', content: 'q' },
        { role: 'assistant', content },
      ];
      expect(outcome(() => cached.renderSegments(messages))).toEqual(outcome(() => plain.renderSegments(messages)));
    }
  });
});
