import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { isVlitError, NotFoundError, PathEscapeError, ValidationError, type VlitRecord } from '@vlit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageAnnotations } from '../annotations.js';
import { readImageAnnotations, readVqaV2Records, toCocoJson, toVqaV2Json } from './coco.js';
import { dialectFromDatasetInfo } from './dialects/sharegpt.js';
import {
  convertFile,
  extractMimicItImages,
  readDatasetInfoFile,
  readImageAnnotationsFiles,
  readRecordsFile,
  writeDatasetInfoFile,
  writeRecordsFile,
  writeTextFile,
} from './node.js';
import type { RejectedRecord } from './records.js';

const execFileAsync = promisify(execFile);

let dir: string;
let root: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vlit-data-io-'));
  root = path.join(dir, 'root');
  await mkdir(path.join(root, 'img'), { recursive: true });
  await mkdir(path.join(dir, 'outside'), { recursive: true });
  await writeFile(path.join(dir, 'outside', 'secret.jpg'), 'x');
  await writeFile(path.join(root, 'img', 'ok.jpg'), 'x');
  await symlink(path.join(dir, 'outside'), path.join(root, 'img', 'link-out'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

const rec = (id: string, image?: string) => ({
  id,
  ...(image ? { image } : {}),
  conversations: [
    { from: 'human', value: `${image ? '<image>\n' : ''}What is it?` },
    { from: 'gpt', value: 'A thing.' },
  ],
});

describe('files', () => {
  it('convertFile: symlink escapes, lexical escapes and malformed lines are rejects; read = written + rejected', async () => {
    const input = path.join(dir, 'in.jsonl');
    await writeFile(
      input,
      [
        JSON.stringify(rec('a', 'img/ok.jpg')),
        JSON.stringify(rec('b', 'img/link-out/secret.jpg')),
        '{"id": oops',
        JSON.stringify(rec('c', '../outside/secret.jpg')),
        JSON.stringify(rec('d')),
      ].join('\n'),
    );
    const output = path.join(dir, 'out.json');
    const rejectsFile = path.join(dir, 'rejects.jsonl');
    const progress: number[] = [];
    const stats = await convertFile({
      input,
      output,
      rejects: rejectsFile,
      from: 'llava',
      to: 'sharegpt',
      toContainer: 'json',
      root,
      onProgress: (e) => progress.push(e.done),
    });
    expect(stats).toMatchObject({ read: 5, written: 2, rejected: 3 });
    const rejects = (await readFile(rejectsFile, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RejectedRecord);
    expect(rejects.map((r) => [r.id ?? null, r.index, r.line, r.code, r.field])).toEqual([
      ['b', 1, 2, 'VLIT_PATH_ESCAPE', 'images.0'],
      [null, 2, 3, 'VLIT_FORMAT', '(root)'],
      ['c', 3, 4, 'VLIT_PATH_ESCAPE', 'images.0'],
    ]);
    expect(rejects.every((r) => r.file === input && r.raw.length > 0)).toBe(true);
    expect(rejects[1].raw).toBe('{"id": oops');
    const written = JSON.parse(await readFile(output, 'utf8')) as { id: string }[];
    expect(written.map((r) => r.id)).toEqual(['a', 'd']);
    expect(progress.at(-1)).toBeGreaterThan(0);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('readRecordsFile without onReject throws the typed error of the first bad record', async () => {
    const input = path.join(dir, 'esc.json');
    await writeFile(input, JSON.stringify([rec('a', 'img/ok.jpg'), rec('b', 'img/link-out/secret.jpg')]));
    const err = await collect(readRecordsFile(input, { dialect: 'llava', root })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PathEscapeError);
    expect((err as PathEscapeError).details).toMatchObject({ file: input, record: 'b', index: 1, field: 'images.0' });
    const missing = await collect(readRecordsFile(path.join(dir, 'nope.json'), { dialect: 'llava' })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
  });

  it('writeRecordsFile + dataset_info.json: LLaMA-Factory reads the columns we describe', async () => {
    const records: VlitRecord[] = [
      {
        id: 'x',
        images: ['img/ok.jpg'],
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: '<image>\nWhat?' },
          { role: 'assistant', content: 'A dog.' },
        ],
      },
    ];
    const file = path.join(dir, 'ds', 'mllm.json');
    await writeRecordsFile(file, records, { dialect: 'sharegpt', container: 'json' });
    const infoFile = path.join(dir, 'ds', 'dataset_info.json');
    await writeDatasetInfoFile(infoFile, {
      mllm: { file_name: 'mllm.json', formatting: 'sharegpt', columns: { messages: 'conversations', images: 'images', system: 'system' } },
    });
    const info = await readDatasetInfoFile(infoFile);
    const back = await collect(readRecordsFile(file, { dialect: dialectFromDatasetInfo(info.mllm), root: path.join(dir, '..', path.basename(dir), 'root') }));
    expect(back.map((r) => [r.id, r.messages[0].content])).toEqual([['x', 'Be brief.']]);
    await writeFile(infoFile, '{"mllm": {"formatting": "chatml"}}');
    const err = await readDatasetInfoFile(infoFile).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).details).toMatchObject({ file: infoFile, field: 'mllm.formatting' });
  });

  it('writeTextFile writes strings and arrays of strings byte for byte, across its 1 MiB buffer, multi-byte text included', async () => {
    const file = path.join(dir, 'text.out');
    const big = 'é🌳x'.repeat(200_000); // longer than a third of the buffer: written on its own
    const lines = Array.from({ length: 5000 }, (_, i) => (i % 2 ? `line ${i} ✓\n` : [`l${i}`, ' 日本\n']));
    const chunks: (string | string[])[] = ['head ', ['a', 'ü', '🌳\n'], big, ...lines];
    await writeTextFile(file, chunks);
    const expected = chunks.map((c) => (typeof c === 'string' ? c : c.join(''))).join('');
    expect(await readFile(file, 'utf8')).toBe(expected);
    expect(await readdir(dir)).not.toContain(expect.stringMatching(/text\.out\..*\.tmp$/));
  });

  it('writeTextFile keeps the order of strings and UTF-8 byte chunks of every size (buffered, or over 1 MiB written on their own)', async () => {
    const file = path.join(dir, 'mixed.out');
    const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
    const chunks: (string | Uint8Array | (string | Uint8Array)[])[] = [];
    for (let i = 0; i < 60; i++) {
      chunks.push(`s${i} ✓\n`, utf8(`b${i} 日本\n`));
      if (i % 7 === 0) chunks.push(utf8(`${i}é`.repeat(20_000 + i))); // 60 KB to 120 KB
      if (i % 11 === 0) chunks.push([`p${i},`, utf8('🌳'.repeat(17_000)), `,q${i}\n`]);
      if (i === 30) chunks.push(utf8('x'.repeat(1_500_000))); // over the 1 MiB buffer
    }
    await writeTextFile(file, chunks);
    const text = (c: string | Uint8Array): string => (typeof c === 'string' ? c : new TextDecoder().decode(c));
    const expected = chunks.map((c) => (Array.isArray(c) ? c.map(text).join('') : text(c))).join('');
    expect(await readFile(file, 'utf8')).toBe(expected);
  });

  it('writeTextFile copies byte chunks: a caller may refill one buffer between yields', async () => {
    const file = path.join(dir, 'reused.out');
    const sizes = [100, 70_000, 300_000, 1_200_000];
    async function* refilled(): AsyncGenerator<Uint8Array> {
      for (const size of sizes) {
        const shared = new Uint8Array(size);
        for (let i = 0; i < 6; i++) {
          yield shared.fill(97 + i); // 'a', 'b', ... in the same memory each time
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    }
    await writeTextFile(file, refilled());
    const expected = sizes.map((size) => [0, 1, 2, 3, 4, 5].map((i) => String.fromCharCode(97 + i).repeat(size)).join('')).join('');
    expect(await readFile(file, 'utf8')).toBe(expected);
  });

  it('a disk that fails mid-write (a file-size limit) rejects writeTextFile and convertFile with the error and leaves no temporary file', async () => {
    const built = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'node.js');
    expect(existsSync(built), 'build the package first (npx tsup): the child process runs dist/node.js').toBe(true);
    const work = await mkdtemp(path.join(tmpdir(), 'vlit-efbig-'));
    try {
      // A 6 MB LLaVA file converted on a worker, and byte chunks that arrive while no write waits for the disk.
      const records = Array.from({ length: 12_000 }, (_, i) => ({
        id: `r${i}`,
        conversations: [
          { from: 'human', value: `question ${i} ${'q'.repeat(200)}` },
          { from: 'gpt', value: `answer ${i} ${'a'.repeat(200)}` },
        ],
      }));
      await writeFile(path.join(work, 'in.json'), JSON.stringify(records));
      const script = path.join(work, 'child.mjs');
      await writeFile(
        script,
        `import { convertFile, writeTextFile } from ${JSON.stringify(pathToFileURL(built).href)};
const out = {};
async function* slow() { for (let i = 0; i < 40; i++) { yield new Uint8Array(100_000).fill(97); await new Promise((r) => setTimeout(r, 2)); } }
try { await writeTextFile(${JSON.stringify(path.join(work, 'text.out'))}, slow()); out.text = 'written'; } catch (e) { out.text = e.code; }
try { await convertFile({ input: ${JSON.stringify(path.join(work, 'in.json'))}, output: ${JSON.stringify(path.join(work, 'out.jsonl'))}, from: 'llava', to: 'vlit', workers: 1 }); out.convert = 'written'; } catch (e) { out.convert = e.code ?? e.cause?.code ?? String(e); }
console.log(JSON.stringify(out));
`,
      );
      // 512 KiB per file (bash counts in KiB); node ignores SIGXFSZ, so a write past it fails with EFBIG
      const { stdout } = await execFileAsync('bash', ['-c', `ulimit -f 512; exec "${process.execPath}" "${script}"`], { encoding: 'utf8' });
      expect(JSON.parse(stdout.trim())).toEqual({ text: 'EFBIG', convert: 'EFBIG' });
      expect((await readdir(work)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(existsSync(path.join(work, 'text.out')) || existsSync(path.join(work, 'out.jsonl'))).toBe(false);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('extractMimicItImages unpacks base64 images and refuses ids that leave the folder', async () => {
    const imagesJson = path.join(dir, 'LA.json');
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    await writeFile(imagesJson, JSON.stringify({ LA_IMG_1: png.toString('base64'), '../../evil': png.toString('base64'), LA_IMG_2: 42 }));
    const rejects: RejectedRecord[] = [];
    const out = path.join(dir, 'mimic-images');
    const counts = await extractMimicItImages(imagesJson, out, { onReject: (r) => rejects.push(r) });
    expect(counts).toEqual({ read: 3, written: 1, rejected: 2 });
    expect(await readFile(path.join(out, 'LA_IMG_1.jpg'))).toEqual(png);
    expect(rejects.map((r) => [r.id, r.code])).toEqual([
      ['../../evil', 'VLIT_PATH_ESCAPE'],
      ['LA_IMG_2', 'VLIT_VALIDATION'],
    ]);
  });
});

describe('COCO and VQAv2', () => {
  // hand-written expectations: two images, captions, boxes, categories listed after annotations
  const images: ImageAnnotations[] = [
    {
      imageId: '1',
      file: 'train2014/a.jpg',
      width: 640,
      height: 480,
      captions: ['A dog on grass.', 'A brown dog.'],
      objects: [{ id: 10, category: 'dog', bbox: [10, 20, 100, 80] }],
      regions: [],
      vqa: [{ question: 'What animal?', answers: ['dog', 'dog', 'puppy'], answerType: 'other' }],
      ocr: [],
    },
    {
      imageId: '2',
      file: 'train2014/b.jpg',
      width: 320,
      height: 240,
      captions: ['Two cats.'],
      objects: [
        { id: 11, category: 'cat', bbox: [0, 0, 50, 50] },
        { id: 12, category: 'cat', bbox: [60, 0, 50, 50] },
      ],
      regions: [],
      vqa: [],
      ocr: [],
    },
  ];

  it('COCO captions + instances + VQAv2 join into ImageAnnotations (round trip through the writers)', async () => {
    const coco = toCocoJson(images);
    const vqa = toVqaV2Json(images);
    // move categories before annotations to prove order does not matter, and check the written shape
    expect((coco.instances.categories as unknown[]).length).toBe(2);
    const got = await collect(
      readImageAnnotations({
        captions: JSON.stringify(coco.captions),
        instances: JSON.stringify({ categories: coco.instances.categories, annotations: coco.instances.annotations, images: coco.instances.images }),
        vqaQuestions: JSON.stringify(vqa.questions),
        vqaAnnotations: JSON.stringify(vqa.annotations),
      }),
    );
    expect(got).toEqual(images);
  });

  it('bad COCO entries are rejects naming file, index and field; good ones survive', async () => {
    const rejects: RejectedRecord[] = [];
    const captions = JSON.stringify({
      images: [
        { id: 1, file_name: 'a.jpg', width: 10, height: 10 },
        { id: 2, file_name: '../../etc/passwd', width: 10, height: 10 },
      ],
      annotations: [
        { image_id: 1, caption: 'ok' },
        { image_id: 1, caption: 7 },
        { image_id: 99, caption: 'orphan' },
      ],
    });
    const got = await collect(readImageAnnotations({ captions }, { files: { captions: 'captions.json' }, onReject: (r) => rejects.push(r) }));
    expect(got.map((g) => [g.imageId, g.captions])).toEqual([['1', ['ok']]]);
    expect(rejects.map((r) => [r.file, r.index, r.code, r.field])).toEqual([
      ['captions.json', 1, 'VLIT_PATH_ESCAPE', 'images.1.file_name'],
      ['captions.json', 1, 'VLIT_VALIDATION', 'annotations.1.caption'],
      ['captions.json', 2, 'VLIT_VALIDATION', 'annotations.2.image_id'],
    ]);
    const err = await collect(readImageAnnotations({ captions }, { files: { captions: 'captions.json' } })).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_PATH_ESCAPE')).toBe(true);
  });

  it('readImageAnnotationsFiles checks images against the root, symlinks followed', async () => {
    const coco = toCocoJson([
      { ...images[0], file: 'img/ok.jpg' },
      { ...images[1], file: 'img/link-out/secret.jpg' },
    ]);
    const f = path.join(dir, 'captions.json');
    await writeFile(f, JSON.stringify(coco.captions));
    const rejects: RejectedRecord[] = [];
    const got = await collect(readImageAnnotationsFiles({ captions: f }, { root, onReject: (r) => rejects.push(r) }));
    expect(got.map((g) => g.file)).toEqual(['img/ok.jpg']);
    expect(rejects.map((r) => [r.id, r.code])).toEqual([['2', 'VLIT_PATH_ESCAPE']]);
  });

  it('VQAv2 questions + annotations become records, one per question', async () => {
    const questions = JSON.stringify({
      data_subtype: 'val2014',
      questions: [
        { image_id: 42, question: 'What color is the bus?', question_id: 420 },
        { image_id: 42, question: 'Unanswered?', question_id: 421 },
      ],
    });
    const annotations = JSON.stringify({
      annotations: [
        { question_id: 420, image_id: 42, answers: [{ answer: 'red' }, { answer: 'red and white' }], multiple_choice_answer: 'red', answer_type: 'other' },
      ],
    });
    const rejects: RejectedRecord[] = [];
    const got = await collect(readVqaV2Records({ questions, annotations }, { files: { questions: 'q.json' }, onReject: (r) => rejects.push(r) }));
    expect(got).toEqual([
      {
        id: '420',
        images: ['val2014/COCO_val2014_000000000042.jpg'],
        messages: [
          { role: 'user', content: '<image>\nWhat color is the bus?' },
          { role: 'assistant', content: 'red' },
        ],
        task: 'vqa',
        source: { dataset: 'vqav2', dialect: 'vqav2', originalId: '420' },
        metadata: { vqav2: { answers: ['red', 'red and white'], answer_type: 'other' } },
      },
    ]);
    expect(rejects.map((r) => [r.file, r.index, r.id, r.field])).toEqual([['q.json', 1, '421', 'question_id']]);
  });
});

describe('files a user names', () => {
  it('a FIFO, a folder or an over-cap file is a typed error naming it, never a hang; a missing one is NotFoundError', async () => {
    const { execFileSync } = await import('node:child_process');
    const fifo = path.join(dir, 'pipe.jsonl');
    execFileSync('mkfifo', [fifo]);
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'no error',
        (e: unknown) => (isVlitError(e) ? `${e.code} ${String(e.details.file)}` : `untyped ${String(e)}`),
      );
    expect(await codeOf(collect(readRecordsFile(fifo, { dialect: 'llava' })))).toBe(`VLIT_INVALID_ARGUMENT ${fifo}`);
    expect(await codeOf(collect(readRecordsFile(dir, { dialect: 'llava' })))).toBe(`VLIT_INVALID_ARGUMENT ${dir}`);
    expect(await codeOf(convertFile({ input: fifo, output: path.join(dir, 'fifo-out.jsonl'), from: 'llava', to: 'vlit' }))).toBe(
      `VLIT_INVALID_ARGUMENT ${fifo}`,
    );
    expect(await codeOf(collect(readRecordsFile(path.join(dir, 'nope.jsonl'), { dialect: 'llava' })))).toBe(`VLIT_NOT_FOUND ${path.join(dir, 'nope.jsonl')}`);
    const small = path.join(dir, 'small.jsonl');
    await writeFile(small, '{"id": 1}\n'.repeat(10));
    const { fileSource } = await import('./node.js');
    expect(await codeOf(collect(fileSource(small, { maxBytes: 99 })))).toBe(`VLIT_LIMIT_EXCEEDED ${small}`);
    expect((await collect(fileSource(small, { maxBytes: 100 }))).reduce((n, c) => n + c.length, 0)).toBe(100);
  }, 60_000);

  it('convertFile refuses rejects or output paths that are the input, and leaves the input intact', async () => {
    const input = path.join(dir, 'keep.jsonl');
    const text = `${JSON.stringify({
      id: 'k',
      image: 'img/ok.jpg',
      conversations: [
        { from: 'human', value: '<image>\nq' },
        { from: 'gpt', value: 'a' },
      ],
    })}\n`;
    await writeFile(input, text);
    await expect(convertFile({ input, output: path.join(dir, 'o.jsonl'), rejects: input, from: 'llava', to: 'vlit' })).rejects.toMatchObject({
      code: 'VLIT_CONFLICT',
    });
    await expect(convertFile({ input, output: path.join(dir, '.', 'keep.jsonl'), from: 'llava', to: 'vlit' })).rejects.toMatchObject({ code: 'VLIT_CONFLICT' });
    await expect(
      convertFile({ input, output: path.join(dir, 'o.jsonl'), rejects: path.join(dir, 'o.jsonl'), from: 'llava', to: 'vlit' }),
    ).rejects.toMatchObject({ code: 'VLIT_CONFLICT' });
    expect(await readFile(input, 'utf8')).toBe(text);
  });
});
