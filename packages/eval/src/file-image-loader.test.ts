/**
 * Issue 13, sibling of the server's item 3: the benchmark image loader reads user-named files, so a FIFO
 * under the image root must be refused (not waited on forever) and a huge file refused by its size.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { createSharpCodec } from '@vlit/runtime/node';
import { createFileImageLoader } from './node.js';
import { makeImage } from './testing.js';

const root = mkdtempSync(join(tmpdir(), 'vlit-eval-fifo-'));
const codec = createSharpCodec();

beforeAll(async () => {
  writeFileSync(join(root, 'a.png'), await codec.encode(makeImage('file', 5, 4), 'png'));
  execFileSync('mkfifo', [join(root, 'pipe.png')]);
  // 800 MB, sparse: reading it whole is what the cap prevents.
  execFileSync('truncate', ['-s', '800M', join(root, 'huge.png')]);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('createFileImageLoader on hostile files', () => {
  it('refuses a FIFO under the root with a typed error naming it, instead of blocking', async () => {
    const load = createFileImageLoader({ root, codec });
    const err = await load('pipe.png').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isVlitError(err, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    expect((err as { details: { file: string } }).details.file).toContain('pipe.png');
    // Still loads real images afterwards.
    expect((await load('a.png')).width).toBe(5);
  });

  it('refuses a file over the cap (default 64 MiB, or maxBytes) by its size', async () => {
    const load = createFileImageLoader({ root, codec });
    await expect(load('huge.png')).rejects.toSatisfy((e: unknown) => isVlitError(e, 'VLIT_LIMIT_EXCEEDED'));
    const size = statSync(join(root, 'a.png')).size;
    await expect(createFileImageLoader({ root, codec, maxBytes: size - 1 })('a.png')).rejects.toSatisfy((e: unknown) => isVlitError(e, 'VLIT_LIMIT_EXCEEDED'));
    expect((await createFileImageLoader({ root, codec, maxBytes: size })('a.png')).height).toBe(4);
  });
});
