import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isVlitError, type ProgressEvent } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { readImageAnnotations, WORLD_BACKGROUNDS, WORLD_HELDOUT_PHRASINGS } from '../index.js';
import { writeWorldDataset } from '../node.js';

const runtime = createNodeRuntime();
const made: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlit-world-'));
  made.push(dir);
  return dir;
}
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = path.join(prefix, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

describe('writeWorldDataset', () => {
  it('writes images, COCO annotations, VQA pairs and the benchmark, byte-identically for the same options', async () => {
    const [a, b] = [await tempDir(), await tempDir()];
    const events: ProgressEvent[] = [];
    const options = { seed: 4, scenes: 10, heldoutScenes: 12, runtime };
    const summary = await writeWorldDataset(path.join(a, 'world'), { ...options, onProgress: (e) => events.push(e) });
    await writeWorldDataset(path.join(b, 'world'), options);

    const files = await listFiles(path.join(a, 'world'));
    expect(files.filter((f) => f.startsWith('images/'))).toHaveLength(22);
    expect(summary.images).toBe(22);
    expect(files).toEqual(await listFiles(path.join(b, 'world')));
    for (const f of files) {
      const [x, y] = await Promise.all([readFile(path.join(a, 'world', f)), readFile(path.join(b, 'world', f))]);
      expect(x.equals(y), f).toBe(true);
    }

    // Progress counts every image once, in order, and ends with the total.
    const render = events.filter((e) => e.stage === 'render-world');
    expect(render.map((e) => e.done)).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(render.every((e) => e.total === 22)).toBe(true);

    // Every benchmark image exists and is a 128 x 128 PNG whose corner shows a background colour.
    const bench = JSON.parse(await readFile(path.join(a, 'world', summary.files.benchmark), 'utf8')) as { questions: Array<{ data_id: string }> };
    expect(bench.questions.length).toBe(summary.benchmarkQuestions);
    const backgrounds = Object.values(WORLD_BACKGROUNDS).map((x) => x.rgb.join(','));
    for (const id of new Set(bench.questions.map((q) => q.data_id))) {
      const img = await runtime.images.decode(await readFile(path.join(a, 'world', id)));
      expect([img.width, img.height]).toEqual([128, 128]);
      expect(backgrounds).toContain(Array.from(img.data.subarray(0, 3)).join(','));
    }
    const unseen = JSON.parse(await readFile(path.join(a, 'world', summary.files.benchmarkUnseen), 'utf8')) as { questions: unknown[] };
    expect(unseen.questions).toHaveLength(bench.questions.length);

    // The training annotation files read back through the COCO + VQAv2 reader.
    const read = [];
    const file = (f: string) => readFile(path.join(a, 'world', f));
    for await (const img of readImageAnnotations({
      captions: await file(summary.files.trainCaptions),
      instances: await file(summary.files.trainInstances),
      vqaQuestions: await file(summary.files.trainVqaQuestions),
      vqaAnnotations: await file(summary.files.trainVqaAnnotations),
    }))
      read.push(img);
    expect(read).toHaveLength(10);
    expect(read.every((r) => r.objects.length >= 1 && r.captions.length === 2 && r.vqa.length >= 6)).toBe(true);
    for (const r of read) expect(files).toContain(r.file);

    const manifest = JSON.parse(await readFile(path.join(a, 'world', 'world.json'), 'utf8')) as {
      heldoutPhrasings: string[];
      counts: { train: number; heldout: number };
    };
    expect(manifest.heldoutPhrasings).toEqual([...WORLD_HELDOUT_PHRASINGS]);
    expect(manifest.counts).toMatchObject({ train: 10, heldout: 12 });
  });

  it('refuses a codec that cannot render SVG and a folder Vlit did not make', async () => {
    const dir = await tempDir();
    const { svgToPng: _unused, ...noSvg } = runtime.images;
    await expect(writeWorldDataset(path.join(dir, 'w'), { seed: 1, scenes: 1, runtime: { images: noSvg } })).rejects.toSatisfy((e: unknown) =>
      isVlitError(e, 'VLIT_UNSUPPORTED'),
    );
    await writeFile(path.join(dir, 'user-file.txt'), 'mine');
    await expect(writeWorldDataset(dir, { seed: 1, scenes: 1, heldoutScenes: 1, runtime })).rejects.toSatisfy((e: unknown) => isVlitError(e, 'VLIT_CONFLICT'));
    expect(await readFile(path.join(dir, 'user-file.txt'), 'utf8')).toBe('mine');
  });
});
