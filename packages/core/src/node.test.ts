import { mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, NotFoundError, PathEscapeError, TensorShapeError, isVlitError } from './errors.js';
import { readSafetensorsFile, resolveUnderRoot, writeSafetensorsFile } from './node.js';
import { createTensor } from './tensor.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vlit-core-node-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('safetensors files', () => {
  it('writes and reads back tensors and metadata', async () => {
    const file = path.join(dir, 'model.safetensors');
    await writeSafetensorsFile(
      file,
      {
        w: createTensor('float32', [2, 2], new Float32Array([1, 2, 3, 4])),
        ids: createTensor('int64', [2], new BigInt64Array([-1n, 2n ** 62n])),
      },
      { format: 'pt' },
    );
    const back = await readSafetensorsFile(file);
    expect(back.metadata).toEqual({ format: 'pt' });
    expect(Array.from(back.get('w').toFloat32())).toEqual([1, 2, 3, 4]);
    expect(Array.from(back.get('ids').toTensor().data as BigInt64Array)).toEqual([-1n, 2n ** 62n]);
    // no temporary files left behind
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('FormatError names the file', async () => {
    const file = path.join(dir, 'broken.safetensors');
    const good = path.join(dir, 'good.safetensors');
    await writeSafetensorsFile(good, { x: createTensor('float32', [4]) });
    const bytes = await readFile(good);
    await writeFile(file, bytes.subarray(0, bytes.length - 3)); // truncated buffer
    const err = await rejection(readSafetensorsFile(file));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).details.file).toBe(file);
    expect((err as FormatError).message).toContain(file);
    expect((err as FormatError).message).toContain("'x'");
  });

  it('a missing file is NotFoundError', async () => {
    const missing = path.join(dir, 'nope.safetensors');
    const err = await rejection(readSafetensorsFile(missing));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).details.file).toBe(missing);
  });

  it('serialization errors carry the file and leave nothing on disk', async () => {
    const target = path.join(dir, 'bad-write.safetensors');
    const err = await rejection(writeSafetensorsFile(target, { x: { dtype: 'F32', shape: [2], bytes: new Uint8Array(3) } }));
    expect(err).toBeInstanceOf(TensorShapeError);
    expect((err as TensorShapeError).details.file).toBe(target);
    expect((await readdir(dir)).includes('bad-write.safetensors')).toBe(false);
  });
});

describe('resolveUnderRoot', () => {
  let root: string;
  let outside: string;

  beforeAll(async () => {
    root = path.join(dir, 'root');
    outside = path.join(dir, 'outside');
    await mkdir(path.join(root, 'sub', 'deeper'), { recursive: true });
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(root, 'sub', 'a.txt'), 'a');
    await writeFile(path.join(outside, 'secret.txt'), 's');
    await symlink(outside, path.join(root, 'link-out'));
    await symlink(path.join(root, 'sub'), path.join(root, 'link-in'));
    await symlink(path.join(outside, 'not-yet.txt'), path.join(root, 'dangling-out'));
    await symlink(path.join(root, 'sub', 'new.txt'), path.join(root, 'dangling-in'));
    await symlink(path.join(root, 'loop-b'), path.join(root, 'loop-a'));
    await symlink(path.join(root, 'loop-a'), path.join(root, 'loop-b'));
  });

  async function escapes(rel: string): Promise<PathEscapeError> {
    const err = await rejection(resolveUnderRoot(root, rel));
    expect(err).toBeInstanceOf(PathEscapeError);
    expect(isVlitError(err, 'VLIT_PATH_ESCAPE')).toBe(true);
    expect((err as PathEscapeError).details.file).toBe(rel);
    return err as PathEscapeError;
  }

  it('resolves plain, nested, not-yet-existing and self-cancelling paths', async () => {
    expect(await resolveUnderRoot(root, 'sub/a.txt')).toBe(path.join(root, 'sub', 'a.txt'));
    expect(await resolveUnderRoot(root, 'sub/deeper/../a.txt')).toBe(path.join(root, 'sub', 'a.txt'));
    expect(await resolveUnderRoot(root, 'new/dir/file.bin')).toBe(path.join(root, 'new', 'dir', 'file.bin'));
    expect(await resolveUnderRoot(root, '')).toBe(path.resolve(root));
    expect(await resolveUnderRoot(root, '.')).toBe(path.resolve(root));
    expect(await resolveUnderRoot(root, '..dotted-name')).toBe(path.join(root, '..dotted-name'));
  });

  it('refuses .. segments that leave the root', async () => {
    await escapes('..');
    await escapes('../outside/secret.txt');
    await escapes('sub/../../outside');
    await escapes(`../${path.basename(root)}-sibling/x`);
  });

  it('refuses absolute paths, even ones inside the root', async () => {
    await escapes(path.join(root, 'sub', 'a.txt'));
    await escapes('/etc/passwd');
  });

  it('refuses symlinks whose real path is outside the root', async () => {
    await escapes('link-out');
    await escapes('link-out/secret.txt');
    await escapes('link-out/new-file.txt');
    await escapes('dangling-out');
    await escapes('loop-a');
  });

  it('allows symlinks that stay inside the root', async () => {
    expect(await resolveUnderRoot(root, 'link-in/a.txt')).toBe(path.join(root, 'link-in', 'a.txt'));
    expect(await resolveUnderRoot(root, 'dangling-in')).toBe(path.join(root, 'dangling-in'));
  });

  it('works when the root itself is reached through a symlink', async () => {
    const alias = path.join(dir, 'root-alias');
    await symlink(root, alias);
    expect(await resolveUnderRoot(alias, 'sub/a.txt')).toBe(path.join(alias, 'sub', 'a.txt'));
    const err = await rejection(resolveUnderRoot(alias, 'link-out/secret.txt'));
    expect(err).toBeInstanceOf(PathEscapeError);
    expect(await realpath(await resolveUnderRoot(alias, 'sub/a.txt'))).toBe(await realpath(path.join(root, 'sub', 'a.txt')));
  });

  it('a missing root is NotFoundError', async () => {
    const err = await rejection(resolveUnderRoot(path.join(dir, 'no-such-root'), 'x'));
    expect(err).toBeInstanceOf(NotFoundError);
  });
});
