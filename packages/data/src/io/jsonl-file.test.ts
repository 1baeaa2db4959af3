import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { readImageAnnotationsJsonl, readJsonLinesFile } from './jsonl-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vlit-jsonl-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readJsonLinesFile', () => {
  it('values keep their 1-based line numbers; blank lines are skipped; a bad line is a reject, not a throw', async () => {
    const file = join(dir, 'a.jsonl');
    await writeFile(file, '{"id":1}\n\n{not json\n[2]\n"x"');
    const r = await readJsonLinesFile(file);
    expect(r.values).toEqual([{ id: 1 }, [2], 'x']);
    expect(r.lines).toEqual([1, 4, 5]);
    expect(r.rejects.map((x) => [x.line, x.text])).toEqual([[3, '{not json']]);
    expect(r.rejects[0].message.length).toBeGreaterThan(0);
  });

  it('a missing file, a folder and a FIFO are typed errors naming the path (never a hang)', async () => {
    const codeOf = async (p: string): Promise<string> => {
      try {
        await readJsonLinesFile(p);
        return 'none';
      } catch (e) {
        expect(isVlitError(e)).toBe(true);
        expect(String((e as Error).message)).toContain(p);
        return (e as { code: string }).code;
      }
    };
    expect(await codeOf(join(dir, 'missing.jsonl'))).toBe('VLIT_NOT_FOUND');
    expect(await codeOf(dir)).toBe('VLIT_INVALID_ARGUMENT');
    const fifo = join(dir, 'f.fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await codeOf(fifo)).toBe('VLIT_INVALID_ARGUMENT');
  });
});

describe('readImageAnnotationsJsonl', () => {
  it('reads valid annotations and names the file, line and field of the first invalid one', async () => {
    const good = { imageId: 'i1', file: 'a.png', width: 4, height: 4, captions: ['A cat.'] };
    const file = join(dir, 'ann.jsonl');
    await writeFile(file, `${JSON.stringify(good)}\n${JSON.stringify({ imageId: 'i2', file: 'b.png', width: 'wide', height: 4 })}\n`);
    await expect(readImageAnnotationsJsonl(file)).rejects.toMatchObject({ code: 'VLIT_VALIDATION', details: { file, record: 2, field: 'width' } });
    await writeFile(file, `${JSON.stringify(good)}\n`);
    const [a] = await readImageAnnotationsJsonl(file);
    expect(a).toMatchObject(good);
    await writeFile(file, `${JSON.stringify(good)}\n{oops\n`);
    await expect(readImageAnnotationsJsonl(file)).rejects.toMatchObject({ code: 'VLIT_VALIDATION', details: { file, record: 2 } });
  });
});
