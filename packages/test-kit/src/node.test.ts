import { inflateSync, crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { RUNTIME_PLATFORMS, createRuntimePair, writePng } from './node.js';

const pattern = (x: number, y: number): number[] => [x * 40, y * 60, (x * 7 + y * 13) % 256, x === 0 ? 128 : 255];

/** Split a PNG into its chunks, checking each CRC (PNG spec section 5.3). */
function chunks(png: Uint8Array): { type: string; body: Buffer }[] {
  const buf = Buffer.from(png);
  expect([...buf.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const out: { type: string; body: Buffer }[] = [];
  for (let at = 8; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    const body = buf.subarray(at + 8, at + 8 + len);
    expect(buf.readUInt32BE(at + 8 + len)).toBe(crc32(buf.subarray(at + 4, at + 8 + len)) >>> 0);
    out.push({ type, body });
    at += 12 + len;
  }
  return out;
}

describe('writePng', () => {
  it('writes IHDR, one IDAT of filter-0 scanlines and IEND, as the specification lays them out', () => {
    for (const channels of [3, 4] as const) {
      const parts = chunks(writePng(3, 2, channels, pattern));
      expect(parts.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
      const ihdr = parts[0].body;
      expect([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4), ...ihdr.subarray(8)]).toEqual([3, 2, 8, channels === 4 ? 6 : 2, 0, 0, 0]);
      const raw = [...inflateSync(parts[1].body)];
      const expected: number[] = [];
      for (let y = 0; y < 2; y++) {
        expected.push(0);
        for (let x = 0; x < 3; x++) expected.push(...pattern(x, y).slice(0, channels));
      }
      expect(raw).toEqual(expected);
      expect(parts[2].body.length).toBe(0);
    }
  });

  it('decodes with the native codec to exactly its pixels', async () => {
    const { node } = createRuntimePair();
    for (const channels of [3, 4] as const) {
      const img = await node.images.decode(writePng(5, 3, channels, pattern), { channels });
      expect([img.width, img.height, img.channels]).toEqual([5, 3, channels]);
      for (let y = 0; y < 3; y++) {
        for (let x = 0; x < 5; x++) {
          expect(Array.from(img.data.subarray((y * 5 + x) * channels, (y * 5 + x + 1) * channels))).toEqual(pattern(x, y).slice(0, channels));
        }
      }
    }
  });
});

describe('createRuntimePair', () => {
  it('gives one native and one web runtime, in RUNTIME_PLATFORMS order', () => {
    const pair = createRuntimePair();
    expect(Object.keys(pair)).toEqual([...RUNTIME_PLATFORMS]);
    for (const p of RUNTIME_PLATFORMS) {
      expect(pair[p].platform).toBe(p);
      expect(pair[p].backend.platform).toBe(p);
    }
    expect(pair.node.backend.name).not.toBe(pair.web.backend.name);
  });
});
