import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, fnv1a32, sha256Hex } from './hash.js';
import { createRng } from './rng.js';

describe('sha256Hex (plain TypeScript)', () => {
  it('matches node:crypto on every length around the block boundaries and on random data', () => {
    const rng = createRng('sha');
    for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 70_001]) {
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = rng.int(0, 256);
      expect(sha256Hex(bytes), `length ${n}`).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    expect(sha256Hex('héllo ✓')).toBe(createHash('sha256').update('héllo ✓', 'utf8').digest('hex'));
    // FIPS 180-2's example.
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level, drops undefined and functions from objects, and writes null for them in arrays', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined, x: 0 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,{"x":0,"z":1}]},"b":1}');
    expect(canonicalJson({ f: () => 1, a: [undefined, () => 1, null] })).toBe('{"a":[null,null,null]}');
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson('x')).toBe('"x"');
  });

  it('equals Python json.dumps(sort_keys=True, separators=(",", ":")) on plain JSON values', () => {
    // Hand-worked: what Python writes for {"é": [1.5, true, None], "B": {"y": "\\"", "a": 1}}.
    expect(canonicalJson({ é: [1.5, true, null], B: { y: '"', a: 1 } })).toBe('{"B":{"a":1,"y":"\\""},"é":[1.5,true,null]}');
  });

  it('writes bytes as their hash, so equal bytes give equal text and different bytes different text', () => {
    const a = new Uint8Array([1, 2, 3]);
    expect(canonicalJson({ data: a })).toBe(`{"data":{"$bytes":"${sha256Hex(a)}"}}`);
    expect(canonicalJson({ data: new Uint8Array([1, 2, 4]) })).not.toBe(canonicalJson({ data: a }));
  });
});

describe('fnv1a32', () => {
  it('gives the published FNV-1a 32-bit test vectors, hashes UTF-8 bytes, and continues from a seed', () => {
    // From the FNV reference test suite (isthe.com/chongo/src/fnv/test_fnv.c): "", "a", "foobar".
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    // 'é' is the two UTF-8 bytes C3 A9, each folded in as FNV-1a defines (xor, then multiply by the FNV prime).
    const afterC3 = Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) >>> 0;
    expect(fnv1a32('é')).toBe(Math.imul(afterC3 ^ 0xa9, 0x01000193) >>> 0);
    expect(fnv1a32('bar', fnv1a32('foo'))).toBe(fnv1a32('foobar'));
  });
});
