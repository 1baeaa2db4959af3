// The chat-completions wire schema against hand-written requests and replies in the shapes OpenAI,
// vLLM and llama.cpp document.
import { describe, expect, it } from 'vitest';
import { chatCompletionsChunkSchema, chatCompletionsErrorSchema, chatCompletionsRequestSchema, chatCompletionsResponseSchema } from './wire.js';

describe('chat-completions wire schema', () => {
  it('accepts OpenAI and vLLM requests, passing unknown fields through', () => {
    const request = {
      model: 'qwen',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        {
          role: 'user',
          name: 'ann',
          content: [
            { type: 'text', text: 'What is it?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
          ],
        },
        { role: 'user', content: [{ type: 'image_url', image_url: 'file:///tmp/x.png' }] },
      ],
      max_tokens: null,
      temperature: 0,
      top_p: 1,
      top_k: 20,
      repetition_penalty: 1.1,
      stop: ['\n'],
      seed: 7,
      stream: true,
      stream_options: { include_usage: true },
      logit_bias: { '42': -100 },
    };
    const parsed = chatCompletionsRequestSchema.parse(request);
    expect(parsed).toEqual(request);
  });

  it('rejects what no server accepts: out-of-range sampling, empty part lists, unknown roles and part types', () => {
    const base = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    for (const bad of [
      { ...base, temperature: 2.5 },
      { ...base, top_p: 0 },
      { ...base, max_tokens: 1.5 },
      { ...base, seed: 0.5 },
      { ...base, stop: Array.from({ length: 17 }, () => 'x') },
      { ...base, model: '' },
      { ...base, messages: [{ role: 'user', content: [] }] },
      { ...base, messages: [{ role: 'tool', content: 'x' }] },
      { ...base, messages: [{ role: 'user', content: [{ type: 'audio', data: 'x' }] }] },
    ]) {
      expect(chatCompletionsRequestSchema.safeParse(bad).success, JSON.stringify(bad).slice(0, 120)).toBe(false);
    }
  });

  it('reads replies leniently: null content, extra fields, usage-only chunks', () => {
    const reply = {
      id: 'x',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      system_fingerprint: 'fp',
      choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [] }, finish_reason: 'tool_calls' }],
    };
    expect(chatCompletionsResponseSchema.parse(reply)).toEqual(reply);
    expect(chatCompletionsResponseSchema.safeParse({ choices: [] }).success).toBe(false);
    expect(chatCompletionsChunkSchema.parse({ usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } })).toEqual({
      choices: [],
      usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
    });
    expect(chatCompletionsErrorSchema.parse({ error: { message: 'bad', type: 'invalid_request_error', param: null, code: 'x' } }).error.message).toBe('bad');
  });
});
