// The server's request schema is core's wire schema (one definition): it differs only where a server
// must accept more (no `model`: the server serves one) or less (no messages at all).
import { chatCompletionsRequestSchema } from '@vlit/core/openai';
import { describe, expect, it } from 'vitest';
import { chatCompletionRequestSchema, chatRequestMessageSchema } from './schema.js';

const user = { role: 'user', content: 'hi' };
const samples: unknown[] = [
  { model: 'm', messages: [user] },
  { model: 'm', messages: [user], temperature: 2.5 },
  { model: 'm', messages: [user], top_p: 0 },
  { model: 'm', messages: [user], max_tokens: null, seed: 3, stop: 'x', top_k: 4, extra: { a: 1 } },
  {
    model: 'm',
    messages: [
      { role: 'developer', content: 'sys' },
      { role: 'user', content: [{ type: 'image_url', image_url: 'a.png' }] },
    ],
  },
  { model: 'm', messages: [{ role: 'user', content: [] }] },
  { model: 'm', messages: [{ role: 'tool', content: 'x' }] },
  { model: '', messages: [user] },
];

describe('server request schema', () => {
  it('agrees with core on every request that names a model and at least one message', () => {
    for (const s of samples) {
      expect(chatCompletionRequestSchema.safeParse(s).success, JSON.stringify(s)).toBe(chatCompletionsRequestSchema.safeParse(s).success);
    }
    expect(chatCompletionRequestSchema.safeParse(samples[0]).success).toBe(true);
    expect(chatCompletionRequestSchema.safeParse(samples[1]).success).toBe(false);
  });

  it('accepts a request without a model and refuses one without messages, unlike the client side', () => {
    expect(chatCompletionRequestSchema.safeParse({ messages: [user] }).success).toBe(true);
    expect(chatCompletionsRequestSchema.safeParse({ messages: [user] }).success).toBe(false);
    expect(chatCompletionRequestSchema.safeParse({ model: 'm', messages: [] }).success).toBe(false);
    expect(chatCompletionsRequestSchema.safeParse({ model: 'm', messages: [] }).success).toBe(true);
    expect(chatRequestMessageSchema.safeParse(user).success).toBe(true);
  });
});
