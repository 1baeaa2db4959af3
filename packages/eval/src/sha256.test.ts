import { describe, expect, it } from 'vitest';
import { base64ToBytes, bytesToBase64 } from './sha256.js';

describe('base64 without Buffer', () => {
  it('base64 round trip agrees with Buffer', () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
    expect(bytesToBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
    expect(base64ToBytes(Buffer.from(bytes).toString('base64'))).toEqual(bytes);
  });
});
