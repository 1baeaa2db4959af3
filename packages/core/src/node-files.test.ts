// Real files, real FIFOs (mkfifo), hard links and symlinks in a temp folder; expectations are the bytes
// and file-system facts the test itself set up.
import { execFileSync } from 'node:child_process';
import { constants as fsConstants, existsSync } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, open, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVlitError, type VlitError } from './errors.js';
import {
  VLIT_OUTPUT_MARKER,
  assertDirectory,
  assertDistinctPaths,
  assertRegularFile,
  createAtomicFileWriter,
  prepareOutputDir,
  readUserFile,
  writeFileAtomic,
} from './node-files.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vlit-node-files-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<VlitError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isVlitError(err), `expected a VlitError, got ${String(err)}`).toBe(true);
  return err as VlitError;
}

/** Release anything blocked opening `fifo` for reading (O_RDWR on a FIFO never blocks on Linux), then give up. */
async function unblock(fifo: string): Promise<void> {
  const h = await open(fifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK).catch(() => undefined);
  await h?.close();
}

describe('readUserFile', () => {
  it('refuses a FIFO at once instead of blocking on it (fails, not hangs, if that regresses)', async () => {
    const fifo = join(dir, 'images.fifo');
    execFileSync('mkfifo', [fifo]);
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('readUserFile blocked on a FIFO')), 30_000);
    });
    try {
      const err = await failure(Promise.race([readUserFile(fifo, { what: 'image' }), watchdog]));
      expect(err.code).toBe('VLIT_INVALID_ARGUMENT');
      expect(err.message).toContain('a FIFO');
      expect(err.details.file).toBe(fifo);
      // stat alone never opens, so it cannot block either.
      expect((await failure(assertRegularFile(fifo))).message).toContain('a FIFO');
    } finally {
      clearTimeout(timer);
      await unblock(fifo);
    }
  }, 60_000);

  it('refuses a directory, a character device, a missing file and a file used as a folder, naming each', async () => {
    const isDir = await failure(readUserFile(dir, { what: 'dataset' }));
    expect([isDir.code, isDir.details.file]).toEqual(['VLIT_INVALID_ARGUMENT', dir]);
    expect(isDir.message).toContain('dataset');
    expect(isDir.message).toContain('a directory');
    // /dev/zero would otherwise be read forever.
    expect((await failure(readUserFile('/dev/zero'))).message).toContain('a character device');
    const missing = join(dir, 'nope.jsonl');
    expect(await failure(readUserFile(missing))).toMatchObject({ code: 'VLIT_NOT_FOUND', details: { file: missing } });
    const plain = join(dir, 'plain.txt');
    await writeFile(plain, 'x');
    const under = join(plain, 'sub');
    expect(await failure(readUserFile(under))).toMatchObject({ code: 'VLIT_NOT_FOUND', details: { file: under } });
    expect(await failure(assertRegularFile(under))).toMatchObject({ code: 'VLIT_NOT_FOUND' });
  });

  it('caps the size: exactly maxBytes is read whole, one byte more is a LimitExceededError with the size', async () => {
    const file = join(dir, 'thousand.bin');
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 256));
    await writeFile(file, bytes);
    expect(await readUserFile(file, { maxBytes: 1000 })).toEqual(bytes);
    const over = await failure(readUserFile(file, { maxBytes: 999, what: 'image' }));
    expect(over).toMatchObject({ code: 'VLIT_LIMIT_EXCEEDED', details: { file, size: 1000, maxBytes: 999 } });
    expect(await failure(assertRegularFile(file, { maxBytes: 999 }))).toMatchObject({ code: 'VLIT_LIMIT_EXCEEDED' });
    expect(await assertRegularFile(file)).toBe(1000);
  });

  it('enforces the cap while reading when the size on disk lies (a /proc file reports 0 bytes)', async () => {
    expect((await stat('/proc/self/status')).size).toBe(0);
    expect(await failure(readUserFile('/proc/self/status', { maxBytes: 16 }))).toMatchObject({ code: 'VLIT_LIMIT_EXCEEDED' });
    expect((await readUserFile('/proc/self/status', { maxBytes: 1 << 20 })).toString('utf8')).toMatch(/^Name:\t/);
    // /proc/self/smaps comes a page per read: every read until the end, not just the first short one.
    const smaps = (await readUserFile('/proc/self/smaps', { maxBytes: 1 << 26 })).toString('utf8');
    expect(smaps.length).toBeGreaterThan(3 * 4096);
    expect(smaps.trimEnd().split('\n').pop()).toMatch(/^VmFlags:/);
  });

  it('reads regular files whole in one request, small and larger than one read', async () => {
    for (const size of [0, 1, 4095, 65537, 300_000]) {
      const file = join(dir, `whole-${size}.bin`);
      const bytes = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31) % 251));
      await writeFile(file, bytes);
      expect((await readUserFile(file, { maxBytes: 1 << 20 })).equals(bytes), `${size} bytes`).toBe(true);
    }
  });
});

describe('assertDirectory', () => {
  it('accepts a folder, refuses a file (InvalidArgument) and a missing path (NotFound)', async () => {
    await assertDirectory(dir);
    const file = join(dir, 'not-a-dir.txt');
    await writeFile(file, 'x');
    expect(await failure(assertDirectory(file, { what: 'dataset root' }))).toMatchObject({ code: 'VLIT_INVALID_ARGUMENT', details: { file } });
    expect(await failure(assertDirectory('/nonexistent-vlit-root'))).toMatchObject({ code: 'VLIT_NOT_FOUND', details: { file: '/nonexistent-vlit-root' } });
  });
});

describe('writeFileAtomic and createAtomicFileWriter', () => {
  it('replaces content, keeps the permission bits, writes through a symlink and leaves no temporary file', async () => {
    const sub = join(dir, 'atomic');
    await mkdir(sub);
    const file = join(sub, 'out.json');
    await writeFile(file, 'old');
    await chmod(file, 0o640);
    await writeFileAtomic(file, 'new content');
    expect(await readFile(file, 'utf8')).toBe('new content');
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    const viaLink = join(sub, 'link.json');
    await symlink('out.json', viaLink);
    await writeFileAtomic(viaLink, 'through the link');
    expect((await lstat(viaLink)).isSymbolicLink()).toBe(true);
    expect(await readFile(file, 'utf8')).toBe('through the link');
    const dangling = join(sub, 'dangling.json');
    await symlink('made-later.json', dangling);
    await writeFileAtomic(dangling, 'created at the target');
    expect(await readFile(join(sub, 'made-later.json'), 'utf8')).toBe('created at the target');
    expect(await readlink(dangling)).toBe('made-later.json');
    expect((await readdir(sub)).sort()).toEqual(['dangling.json', 'link.json', 'made-later.json', 'out.json']);
  });

  it('refuses a directory or FIFO as the target and a missing parent folder, with typed errors', async () => {
    expect(await failure(writeFileAtomic(dir, 'x'))).toMatchObject({ code: 'VLIT_INVALID_ARGUMENT', details: { file: dir } });
    const fifo = join(dir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    expect((await failure(writeFileAtomic(fifo, 'x'))).message).toContain('a FIFO');
    expect((await lstat(fifo)).isFIFO()).toBe(true);
    const orphan = join(dir, 'no-such-folder', 'out.json');
    expect(await failure(writeFileAtomic(orphan, 'x'))).toMatchObject({ code: 'VLIT_NOT_FOUND', details: { file: orphan } });
    const plain = join(dir, 'a-file');
    await writeFile(plain, 'x');
    expect(await failure(writeFileAtomic(join(plain, 'out.json'), 'x'))).toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
  });

  it('a streaming writer shows nothing until commit; abort keeps the old content and removes the temporary file', async () => {
    const sub = join(dir, 'stream');
    await mkdir(sub);
    const file = join(sub, 'rejects.jsonl');
    await writeFile(file, 'precious\n');
    const aborted = await createAtomicFileWriter(file);
    for (let i = 0; i < 5000; i++) void aborted.write(`{"i":${i}}\n`);
    await aborted.abort();
    expect(await readFile(file, 'utf8')).toBe('precious\n');
    expect(await readdir(sub)).toEqual(['rejects.jsonl']);

    const writer = await createAtomicFileWriter(file);
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const line = `{"i":${i},"pad":"${'x'.repeat(i % 50)}"}\n`;
      expected.push(line);
      void writer.write(line);
    }
    expect(await readFile(file, 'utf8')).toBe('precious\n');
    await writer.commit();
    expect(await readFile(file, 'utf8')).toBe(expected.join(''));
    expect(await readdir(sub)).toEqual(['rejects.jsonl']);
    await expect(writer.write('late')).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
  });
});

describe('assertDistinctPaths', () => {
  it('refuses the same file by spelling, through a symlinked folder (existing or not) and through a hard link', async () => {
    const real = join(dir, 'real');
    await mkdir(real);
    const input = join(real, 'in.json');
    await writeFile(input, '[]');
    await symlink(real, join(dir, 'linked'));
    const same = await failure(assertDistinctPaths({ input, '--rejects': join(dir, 'real', '..', 'real', 'in.json') }));
    expect(same.code).toBe('VLIT_CONFLICT');
    expect(same.message).toContain('--rejects');
    expect(same.message).toContain('input');
    expect(same.details).toMatchObject({ field: '--rejects', otherField: 'input' });
    expect((await failure(assertDistinctPaths({ input, output: join(dir, 'linked', 'in.json') }))).code).toBe('VLIT_CONFLICT');
    // Neither exists yet: two outputs that would land on one file.
    expect((await failure(assertDistinctPaths({ output: join(real, 'new.jsonl'), '--rejects': join(dir, 'linked', 'new.jsonl') }))).code).toBe('VLIT_CONFLICT');
    const hard = join(dir, 'hard-link.json');
    await link(input, hard);
    const linked = await failure(assertDistinctPaths({ input, output: hard }));
    expect(linked.code).toBe('VLIT_CONFLICT');
    expect(linked.details.file).toBe(hard);
    // A dangling symlink is where writing through it would create a file.
    const dangling = join(dir, 'points-at-new');
    await symlink(join(real, 'later.jsonl'), dangling);
    expect((await failure(assertDistinctPaths({ output: join(real, 'later.jsonl'), '--rejects': dangling }))).code).toBe('VLIT_CONFLICT');
  });

  it('accepts distinct files, skips undefined entries and "-"', async () => {
    await expect(
      assertDistinctPaths({ input: join(dir, 'a.json'), output: join(dir, 'b.json'), rejects: undefined, log: '-', other: '-' }),
    ).resolves.toBeUndefined();
  });
});

describe('prepareOutputDir', () => {
  it('refuses a non-empty folder Vlit did not make; the user file survives; force writes beside it without deleting or marking', async () => {
    const x = join(dir, 'x');
    await mkdir(x);
    await writeFile(join(x, 'thesis.txt'), 'keep\n');
    const err = await failure(prepareOutputDir(x, { clean: true }));
    expect(err).toMatchObject({ code: 'VLIT_CONFLICT', details: { file: x } });
    expect(await readFile(join(x, 'thesis.txt'), 'utf8')).toBe('keep\n');
    expect(await prepareOutputDir(x, { clean: true, force: true })).toEqual({ created: false, owned: false, removed: 0 });
    expect(await readdir(x)).toEqual(['thesis.txt']);
  });

  it('creates and marks a new folder, marks an empty one, and cleans only a marked one', async () => {
    const fresh = join(dir, 'fresh', 'nested');
    expect(await prepareOutputDir(fresh, { owner: 'vlit demo' })).toEqual({ created: true, owned: true, removed: 0 });
    expect(await readFile(join(fresh, VLIT_OUTPUT_MARKER), 'utf8')).toBe('vlit demo\n');
    await writeFile(join(fresh, 'kept.jsonl'), 'old run');
    await mkdir(join(fresh, 'coco'));
    await writeFile(join(fresh, 'coco', 'a.png'), 'x');
    expect(await prepareOutputDir(fresh, { clean: true })).toEqual({ created: false, owned: true, removed: 2 });
    expect(await readdir(fresh)).toEqual([VLIT_OUTPUT_MARKER]);
    const empty = join(dir, 'empty');
    await mkdir(empty);
    expect(await prepareOutputDir(empty)).toEqual({ created: false, owned: true, removed: 0 });
    expect(existsSync(join(empty, VLIT_OUTPUT_MARKER))).toBe(true);
  });

  it("a symlink posing as the marker does not make a folder Vlit's, and its target is never written", async () => {
    const trap = join(dir, 'trap');
    await mkdir(trap);
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'mine\n');
    await symlink(victim, join(trap, VLIT_OUTPUT_MARKER));
    await writeFile(join(trap, 'notes.txt'), 'keep');
    expect((await failure(prepareOutputDir(trap, { clean: true }))).code).toBe('VLIT_CONFLICT');
    expect(await readFile(join(trap, 'notes.txt'), 'utf8')).toBe('keep');
    expect(await readFile(victim, 'utf8')).toBe('mine\n');
  });

  it('a file, or a path under a file (ENOTDIR), is an InvalidArgumentError naming it', async () => {
    const afile = join(dir, 'afile');
    await writeFile(afile, 'x');
    expect(await failure(prepareOutputDir(afile))).toMatchObject({ code: 'VLIT_INVALID_ARGUMENT', details: { file: afile } });
    const sub = join(afile, 'sub');
    const err = await failure(prepareOutputDir(sub));
    expect(err).toMatchObject({ code: 'VLIT_INVALID_ARGUMENT', details: { file: sub } });
    expect(err.message).toContain('a parent is a file');
    expect(await readFile(afile, 'utf8')).toBe('x');
  });

  it('follows a symlinked output folder and judges what is inside it', async () => {
    const target = join(dir, 'link-target');
    await mkdir(target);
    await symlink(target, join(dir, 'out-link'));
    expect((await prepareOutputDir(join(dir, 'out-link'))).owned).toBe(true);
    expect(existsSync(join(target, VLIT_OUTPUT_MARKER))).toBe(true);
  });
});
