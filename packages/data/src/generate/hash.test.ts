import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '@vlit/core';
import { promptHash } from './hash.js';

// The chat-completions client itself (retries, backoff, Retry-After, timeouts, the concurrency
// limit, key redaction) is core's and is tested in packages/core/src/openai.
const messages = [{ role: 'user' as const, content: 'hello' }];

describe('prompt hash', () => {
  it('hashes with SHA-256 over canonical JSON (key order does not matter)', async () => {
    // Known SHA-256 test vector.
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    const a = await promptHash({ model: 'm', messages, params: { temperature: 0.2, seed: 1 } });
    const b = await promptHash({ model: 'm', messages, params: { seed: 1, temperature: 0.2 } });
    const c = await promptHash({ model: 'm', messages, params: { seed: 2, temperature: 0.2 } });
    const d = await promptHash({ model: 'other', messages, params: { seed: 1, temperature: 0.2 } });
    expect(a).toBe(b);
    expect(new Set([a, c, d]).size).toBe(3);
    expect(a).toBe(await sha256Hex('{"messages":[{"content":"hello","role":"user"}],"model":"m","params":{"seed":1,"temperature":0.2}}'));
  });
});
