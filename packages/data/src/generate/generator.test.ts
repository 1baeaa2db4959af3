import { builtinInstructionPools, createInstructionSampler } from '@vlit/templates';
import { afterEach, describe, expect, it } from 'vitest';
import { imageAnnotationsSchema } from '../annotations.js';
import { createChatCompletionsClient } from '@vlit/core/openai';
import { createMemoryGenerationCache, createSelfInstructGenerator } from './generator.js';
import { promptHash } from './hash.js';
import { parseConversationReply } from './parse.js';
import { buildSelfInstructMessages, describeAnnotations } from './prompt.js';
import { startFakeServer, type FakeServer } from './test-server.js';

const KEY = 'sk-unit-key';
const image = imageAnnotationsSchema.parse({
  imageId: '42',
  file: 'images/42.jpg',
  width: 640,
  height: 480,
  captions: ['Three dogs on the grass.'],
  objects: [{ category: 'dog', bbox: [10, 300, 50, 40], attributes: ['brown'] }],
});
let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('parsing model replies into turns', () => {
  it('reads labelled lines in several styles and multi-line answers', () => {
    const r = parseConversationReply('Sure, here you go:\nUser: How many dogs?\nAssistant: Three.\nThey are brown.\n**Human:** Where?\nGPT: On grass.');
    expect(r).toEqual({
      ok: true,
      turns: [
        { role: 'user', content: 'How many dogs?' },
        { role: 'assistant', content: 'Three.\nThey are brown.' },
        { role: 'user', content: 'Where?' },
        { role: 'assistant', content: 'On grass.' },
      ],
    });
    expect(parseConversationReply('Question: Why?\nAnswer: Because.')).toEqual({
      ok: true,
      turns: [
        { role: 'user', content: 'Why?' },
        { role: 'assistant', content: 'Because.' },
      ],
    });
  });

  it('reads JSON conversations, fenced or not', () => {
    const json = '```json\n[{"from":"human","value":"Hi?"},{"from":"gpt","value":"Hello."}]\n```';
    expect(parseConversationReply(json)).toEqual({
      ok: true,
      turns: [
        { role: 'user', content: 'Hi?' },
        { role: 'assistant', content: 'Hello.' },
      ],
    });
    expect(parseConversationReply('{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}').ok).toBe(true);
  });

  it('rejects replies that are not conversations, with a reason', () => {
    const reason = (text: string) => {
      const r = parseConversationReply(text);
      return r.ok ? 'ok' : r.reason;
    };
    expect(reason('')).toBe('empty reply');
    expect(reason('I cannot help with that.')).toMatch(/no labelled turns/);
    expect(reason('Assistant: hi\nUser: q')).toMatch(/start with a user/);
    expect(reason('User: a\nUser: b\nAssistant: c')).toMatch(/both user/);
    expect(reason('User: a\nAssistant: b\nUser: c')).toMatch(/ends without an assistant/);
    expect(reason('User: a\nAssistant:')).toMatch(/turn 2 is empty/);
    expect(reason('User: look <image>\nAssistant: b')).toMatch(/placeholder/);
  });
});

describe('self-instruct prompts and generator', () => {
  it('gives the model captions and objects with boxes normalised to 0..1 (LLaVA style)', () => {
    // dog [10,300,50,40] in 640x480 -> [10/640, 300/480, 60/640, 340/480] = [0.016, 0.625, 0.094, 0.708].
    expect(describeAnnotations(image)).toBe('Captions:\n- Three dogs on the grass.\n\nObjects:\n- dog (brown): [0.016, 0.625, 0.094, 0.708]');
    const messages = buildSelfInstructMessages(image, 'complex-reasoning');
    expect(messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(messages[0].content).toMatch(/reasoning/);
  });

  it('makes a record with provenance and caches the reply by prompt hash', async () => {
    server = await startFakeServer({ apiKey: KEY, reply: () => 'User: How many dogs?\nAssistant: There are three dogs.' });
    const client = createChatCompletionsClient({ baseURL: server.baseUrl, apiKey: KEY });
    const cache = createMemoryGenerationCache();
    const generator = createSelfInstructGenerator({
      client,
      model: 'tiny-llm',
      dataset: 'si',
      seed: 4,
      cache,
      types: { dialogue: 2 },
      now: () => new Date('2024-05-01T00:00:00Z'),
    });
    const units = generator.units(image);
    expect(units.map((u) => u.id)).toEqual(['si:42:dialogue:0', 'si:42:dialogue:1']);
    expect(units[0].seed).not.toBe(units[1].seed);
    const first = await generator.generate(units[0], image);
    if (first.status !== 'record') throw new Error('expected a record');
    expect(first.record.messages).toEqual([
      { role: 'user', content: '<image>\nHow many dogs?' },
      { role: 'assistant', content: 'There are three dogs.' },
    ]);
    expect(first.record.task).toBe('dialogue');
    expect(first.record.source).toEqual({ dataset: 'si', originalId: '42', method: 'self-instruct' });
    const expectedHash = await promptHash({
      model: 'tiny-llm',
      messages: buildSelfInstructMessages(image, 'dialogue'),
      params: { temperature: 0.7, max_tokens: 1024, seed: units[0].seed },
    });
    expect(first.record.metadata?.generation).toEqual({
      model: 'tiny-llm',
      endpoint: `${server.baseUrl}/chat/completions`,
      promptHash: expectedHash,
      seed: units[0].seed,
      time: '2024-05-01T00:00:00.000Z',
      type: 'dialogue',
      cached: false,
      attempts: 1,
      finishReason: 'stop',
    });
    expect(JSON.stringify(first.record)).not.toContain(KEY);
    const again = await generator.generate(units[0], image);
    expect(server.requests).toBe(1);
    expect(again.status === 'record' && (again.record.metadata?.generation as { cached: boolean } | undefined)?.cached).toBe(true);
    // Another seed is another prompt: a second request.
    await generator.generate(units[1], image);
    expect(server.requests).toBe(2);
    expect(cache.size).toBe(2);
  });

  it('pairs detailed descriptions with a sampled caption-detailed instruction, and rejects bad replies with the raw text', async () => {
    let reply = 'A brown dog lies on the grass on the left side of a sunny park.';
    server = await startFakeServer({ apiKey: KEY, reply: () => reply });
    const client = createChatCompletionsClient({ baseURL: server.baseUrl, apiKey: KEY });
    const sampler = createInstructionSampler({ seed: 1, holdout: 2 });
    const generator = createSelfInstructGenerator({
      client,
      model: 'tiny-llm',
      dataset: 'si',
      sampler,
      types: { 'detailed-description': 1, 'complex-reasoning': 1 },
    });
    const [detail, reasoning] = generator.units(image);
    const out = await generator.generate(detail, image);
    if (out.status !== 'record') throw new Error('expected a record');
    const template = (out.record.metadata?.generation as { template?: { family: string; phrasingIndex: number } } | undefined)?.template;
    if (!template) throw new Error('expected metadata.generation.template');
    const pool = builtinInstructionPools.find((p) => p.family === 'caption-detailed')!;
    expect(out.record.messages[0].content).toBe(`<image>\n${pool.phrasings[template.phrasingIndex]}`);
    expect(sampler.phrasingIndices('caption-detailed', 'train')).toContain(template.phrasingIndex);
    expect(out.record.messages[1].content).toBe(reply);

    reply = 'User: Why?\nAssistant: Because.\nUser: And?\nAssistant: That is all.';
    const rejected = await generator.generate(reasoning, image);
    expect(rejected.status).toBe('reject');
    if (rejected.status === 'reject') {
      expect(rejected.reject).toMatchObject({ id: 'si:42:complex-reasoning:0', imageId: '42', type: 'complex-reasoning', raw: reply });
      expect(rejected.reject.reason).toMatch(/one question and one answer/);
      expect(rejected.reject.provenance.promptHash).toMatch(/^[0-9a-f]{64}$/);
    }
    reply = 'Too short.';
    const short = await createSelfInstructGenerator({ client, model: 'tiny-llm', dataset: 'si2', types: { 'detailed-description': 1 } }).generate(
      detail,
      image,
    );
    expect(short.status === 'reject' && short.reject.reason).toMatch(/shorter than 40/);
  });
});
