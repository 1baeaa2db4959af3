import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRng } from '@vlit/core';
import { base64ToBytes, bytesToBase64, sha256Hex, stableStringify } from './sha256.js';

describe('sha256Hex (plain TypeScript)', () => {
  it('matches node:crypto on every length around the block boundaries and on random data', () => {
    const rng = createRng('sha');
    for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 70_001]) {
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = rng.int(0, 256);
      expect(sha256Hex(bytes), `length ${n}`).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    expect(sha256Hex('héllo ✓')).toBe(createHash('sha256').update('héllo ✓', 'utf8').digest('hex'));
  });

  it('stableStringify sorts keys at every level and drops undefined', () => {
    expect(stableStringify({ b: 1, a: { d: [2, { z: 1, y: undefined, x: 0 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,{"x":0,"z":1}]},"b":1}');
  });

  it('base64 round trip agrees with Buffer', () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
    expect(bytesToBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
    expect(base64ToBytes(Buffer.from(bytes).toString('base64'))).toEqual(bytes);
  });
});
