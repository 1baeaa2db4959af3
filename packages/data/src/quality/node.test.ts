import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSharpCodec } from '@vlit/runtime/node';
import { isVlitError, type VlitRecordInput } from '@vlit/core';
import { imageAnnotationsSchema } from '../annotations.js';
import { computeDataQuality, defaultQualityFilters, runQualityControl } from './index.js';
import { createRootImageLoader, generateCocoFixtureToDir, readJsonlFile, writeQualityReport, writeShards } from './node.js';

const codec = createSharpCodec();
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('quality control from disk', () => {
  it('a fixture written to a folder gives the same verdicts, and a symlink out of the root is refused', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'vlit-qc-'));
    const outside = await mkdtemp(path.join(tmpdir(), 'vlit-outside-'));
    dirs.push(root, outside);
    const { fixture, paths } = await generateCocoFixtureToDir(root, {
      images: 12,
      seed: 9,
      codec,
      faults: { 'wrong-count': 1, 'corrupt-image': 1, 'escaping-path': 2, 'blank-image': 1, duplicate: 1 },
    });
    // A symlink inside the root whose target is outside: lexically fine, refused on load.
    const [img] = fixture.images.values();
    await writeFile(path.join(outside, 'secret.png'), img);
    await symlink(path.join(outside, 'secret.png'), path.join(root, 'images', 'link.png'));
    const records = (await readJsonlFile(paths.records)) as VlitRecordInput[];
    const linked: VlitRecordInput = { ...structuredClone(records[0]), id: 'via-symlink', images: ['images/link.png'] };
    const result = await runQualityControl([...records, linked], defaultQualityFilters(), {
      annotations: (await readJsonlFile(paths.annotations)).map((a) => imageAnnotationsSchema.parse(a)),
      images: { codec, load: createRootImageLoader(root) },
    });
    expect(result.counts.read).toBe(records.length + 1);
    expect(result.counts.kept + result.counts.rejected).toBe(result.counts.read);
    const got = new Map(result.rejects.map((r) => [r.id, `${r.filter}/${r.reason}`]));
    for (const f of fixture.manifest.faults) expect(got.get(f.recordId)).toBe(`${f.filter}/${f.reason}`);
    expect(got.get('via-symlink')).toBe('image/path-escape');
    expect(result.kept.map((r) => r.id).sort()).toEqual([...fixture.manifest.clean].sort());
    const manifest = JSON.parse(await readFile(paths.manifest, 'utf8'));
    expect(manifest.faults).toHaveLength(6);

    const reportPaths = await writeQualityReport(path.join(root, 'report'), [
      await computeDataQuality(result.kept, { name: 'kept', annotations: fixture.annotations }),
    ]);
    expect(await readFile(reportPaths.markdown, 'utf8')).toContain('| Correctness rate % (C) | higher | 100.0 |');
  }, 30_000);

  it('a FIFO, a folder and an oversized file under the root become rejects with their reasons, never a hang', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'vlit-qc-fifo-'));
    dirs.push(root);
    const { fixture, paths } = await generateCocoFixtureToDir(root, { images: 4, seed: 3, codec });
    // A real FIFO with no writer: a plain open() or readFile() of it blocks forever.
    execFileSync('mkfifo', [path.join(root, 'images', 'pipe.png')]);
    await mkdir(path.join(root, 'images', 'folder.png'));
    const records = (await readJsonlFile(paths.records)) as VlitRecordInput[];
    const clean = records.find((r) => fixture.manifest.clean.includes(r.id as string))!;
    const cleanBytes = fixture.images.get(clean.images![0] as string)!.byteLength;
    // One byte under the clean image's size: the cap is checked on the open handle, before reading.
    const cap = cleanBytes - 1;
    const variant = (id: string, image: string): VlitRecordInput => ({ ...structuredClone(clean), id, images: [image] });
    const input = [variant('via-fifo', 'images/pipe.png'), variant('via-folder', 'images/folder.png'), variant('too-big', clean.images![0] as string)];
    const load = createRootImageLoader(root, { maxBytes: cap });
    const result = await runQualityControl(input, defaultQualityFilters(), {
      annotations: (await readJsonlFile(paths.annotations)).map((a) => imageAnnotationsSchema.parse(a)),
      images: { codec, load },
    });
    expect(result.counts).toMatchObject({ read: 3, kept: 0, rejected: 3 });
    const got = new Map(result.rejects.map((r) => [r.id, r]));
    expect(`${got.get('via-fifo')?.filter}/${got.get('via-fifo')?.reason}`).toBe('image/image-not-a-file');
    expect(got.get('via-fifo')?.message).toMatch(/is a FIFO/);
    expect(`${got.get('via-folder')?.filter}/${got.get('via-folder')?.reason}`).toBe('image/image-not-a-file');
    expect(got.get('via-folder')?.message).toMatch(/directory/);
    expect(`${got.get('too-big')?.filter}/${got.get('too-big')?.reason}`).toBe('image/image-too-large');
    // The loader itself: typed errors naming the file.
    const err = await load('images/pipe.png', clean as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isVlitError(err) && err.code).toBe('VLIT_INVALID_ARGUMENT');
    expect(isVlitError(err) && String(err.details.file)).toContain('pipe.png');
    // Without the small cap, the same clean image loads whole.
    expect((await createRootImageLoader(root)(clean.images![0] as string, clean as never)).byteLength).toBe(cleanBytes);
  }, 60_000);

  it('writes shards no larger than the target with an index whose totals match', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vlit-shards-'));
    dirs.push(dir);
    const records = Array.from({ length: 50 }, (_, i) => ({ id: `r${i}`, text: 'x'.repeat(i * 7) }));
    const index = await writeShards(records, { dir, targetBytes: 1000 });
    expect(index.records).toBe(50);
    let back: unknown[] = [];
    for (const s of index.shards) {
      const text = await readFile(path.join(dir, s.file), 'utf8');
      expect(Buffer.byteLength(text)).toBe(s.bytes);
      expect(s.bytes <= 1000 || s.records === 1).toBe(true);
      back = back.concat(
        text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
      );
    }
    expect(back).toEqual(records);
    expect(JSON.parse(await readFile(path.join(dir, 'shard-index.json'), 'utf8'))).toEqual(index);
  });
});
