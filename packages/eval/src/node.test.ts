import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { createSharpCodec } from '@vlit/runtime/node';
import { createFileImageLoader, loadMmbenchFile, loadSeedBenchFile, writeReports } from './node.js';
import { parseCocoCaptions, parsePopeJsonl, parseVqaV2, cocoImageName } from './formats.js';
import { makeImage } from './testing.js';
import { makeRuns } from './report/fixtures.js';
import { seedBenchQuestion } from './benchmarks.fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'vlit-eval-node-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('@vlit/eval/node', () => {
  it('loads images under a root with the injected codec and refuses paths that escape it', async () => {
    const codec = createSharpCodec();
    const img = makeImage('file', 5, 4);
    mkdirSync(join(tmp, 'images'), { recursive: true });
    writeFileSync(join(tmp, 'images', 'a.png'), await codec.encode(img, 'png'));
    const load = createFileImageLoader({ root: join(tmp, 'images'), codec });
    const back = await load('a.png');
    expect([back.width, back.height, back.channels]).toEqual([5, 4, 3]);
    expect(back.data).toEqual(img.data);
    await expect(load('../secret.png')).rejects.toSatisfy((e: unknown) => isVlitError(e, 'VLIT_PATH_ESCAPE'));
    const inline = await load({ name: 'inline', bytes: await codec.encode(img, 'png') });
    expect(inline.data).toEqual(img.data);
  });

  it('reads benchmark files with their hashes', async () => {
    const seed = join(tmp, 'seed.json');
    writeFileSync(
      seed,
      JSON.stringify({
        questions: [seedBenchQuestion({ answer: 'C', data_id: 'x.jpg', question: 'Q?', question_id: '1', question_type_id: 6 })],
      }),
    );
    const s = await loadSeedBenchFile(seed);
    expect(s.items[0]).toMatchObject({ answer: 2, dimension: 'SR' });
    expect(s.sha256).toMatch(/^[0-9a-f]{64}$/);
    const tsv = join(tmp, 'mm.tsv');
    writeFileSync(tsv, 'index\tquestion\tA\tB\tanswer\n1\tQ\tx\ty\tA\n');
    expect((await loadMmbenchFile(tsv)).items).toHaveLength(1);
  });

  it('writes JSON, markdown and HTML reports', async () => {
    const paths = await writeReports(join(tmp, 'out'), await makeRuns(), { title: 'T' });
    expect(JSON.parse(readFileSync(paths.json, 'utf8')).runs).toHaveLength(3);
    expect(readFileSync(paths.markdown, 'utf8')).toContain('| Run | Overall | SU |');
    expect(readFileSync(paths.html, 'utf8')).toContain('<svg');
  });
});

describe('file formats', () => {
  it('VQAv2 questions + annotations', () => {
    const { items, skipped } = parseVqaV2(
      {
        questions: [
          { question_id: 1, image_id: 42, question: 'How many?' },
          { question_id: 2, image_id: 42, question: 'Orphan?' },
        ],
      },
      { annotations: [{ question_id: 1, answer_type: 'number', question_type: 'how many', answers: [{ answer: '2' }, { answer: 'two' }] }] },
    );
    expect(skipped).toBe(1);
    expect(items).toEqual([
      { id: '1', question: 'How many?', images: ['COCO_val2014_000000000042.jpg'], answers: ['2', 'two'], answerType: 'number', questionType: 'how many' },
    ]);
    expect(cocoImageName(7, 'train2014')).toBe('COCO_train2014_000000000007.jpg');
  });

  it('COCO captions and POPE question files', () => {
    expect(
      parseCocoCaptions({
        images: [{ id: 5, file_name: 'f.jpg' }],
        annotations: [
          { image_id: 5, caption: 'a' },
          { image_id: 5, caption: 'b' },
        ],
      }),
    ).toEqual([{ id: '5', images: ['f.jpg'], references: ['a', 'b'] }]);
    const q = parsePopeJsonl('{"question_id": 1, "image": "x.jpg", "text": "Is there an apple in the image?", "label": "yes"}\n\n');
    expect(q).toEqual([{ id: '1', image: 'x.jpg', question: 'Is there an apple in the image?', label: 'yes', object: 'apple' }]);
    expect(() => parsePopeJsonl('{"bad": 1}', { file: 'p.jsonl' })).toThrow(/p\.jsonl/);
  });
});
