/**
 * `@vlit/core/node`: node-only file helpers (safetensors files, root-confined paths, safe reads and writes
 * of user-named files).
 */
export * from './node-files.js';
export * from './checkpoint-node.js';
import { lstat, readFile, readlink, realpath } from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidArgumentError, NotFoundError, PathEscapeError, VlitError } from './errors.js';
import { writeFileAtomic } from './node-files.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile, type SafetensorsInput } from './safetensors.js';

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** Read and parse a safetensors file; FormatError/UnsupportedError name the file, a missing file gives NotFoundError. */
export async function readSafetensorsFile(filePath: string): Promise<SafetensorsFile> {
  let buf: Buffer;
  try {
    buf = await readFile(filePath);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NotFoundError(`safetensors file not found: ${filePath}`, { cause: err, details: { file: filePath } });
    }
    throw err;
  }
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), { file: filePath });
}

/** Serialize tensors to a safetensors file, atomically (written to a temporary sibling, then renamed). */
export async function writeSafetensorsFile(
  filePath: string,
  tensors: Record<string, SafetensorsInput> | Map<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = serializeSafetensors(tensors, metadata);
  } catch (err) {
    if (VlitError.isInstance(err) && typeof err.addDetails === 'function') err.addDetails({ file: filePath });
    throw err;
  }
  await writeFileAtomic(filePath, bytes);
}

/** True when `child` is `parent` or lies below it (both absolute, normalized). */
function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  if (rel === '') return true;
  if (path.isAbsolute(rel)) return false;
  const first = rel.split(path.sep)[0];
  return first !== '..';
}

const MAX_LINKS = 40;

/**
 * The real path of `p`, allowing trailing components that do not exist yet. A dangling symlink is
 * followed through its target, so a link to a not-yet-created file outside the root is caught.
 */
async function realpathLoose(p: string, budget: { links: number; loop: (at: string, cause?: unknown) => Error }): Promise<string> {
  try {
    return await realpath(p);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ELOOP') {
      throw budget.loop(p, err);
    }
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
  }
  const parent = path.dirname(p);
  if (parent === p) return p;
  const st = await lstat(p).catch(() => null);
  if (st?.isSymbolicLink()) {
    if (--budget.links < 0) {
      throw budget.loop(p);
    }
    const target = await readlink(p);
    const parentReal = await realpathLoose(parent, budget);
    return realpathLoose(path.resolve(parentReal, target), budget);
  }
  return path.join(await realpathLoose(parent, budget), path.basename(p));
}

/**
 * Resolve `relativePath` under `root` and return the absolute path (root joined with the
 * normalized relative path). Throws PathEscapeError for absolute paths, `..` segments that leave
 * the root, and symlinks (existing or dangling) whose real target lies outside the root's real path.
 */
export async function resolveUnderRoot(root: string, relativePath: string): Promise<string> {
  if (typeof root !== 'string' || root === '' || typeof relativePath !== 'string') {
    throw new InvalidArgumentError('resolveUnderRoot needs a non-empty root and a relative path string', {
      details: { field: 'root' },
    });
  }
  if (root.includes('\0') || relativePath.includes('\0')) {
    throw new InvalidArgumentError('paths must not contain NUL bytes', { details: { file: relativePath } });
  }
  const details = { file: relativePath, root };
  if (path.isAbsolute(relativePath) || path.win32.isAbsolute(relativePath)) {
    throw new PathEscapeError(`'${relativePath}' is absolute; a path relative to the root is required`, { details });
  }
  const rootAbs = path.resolve(root);
  const target = path.resolve(rootAbs, relativePath);
  if (!isWithin(rootAbs, target)) {
    throw new PathEscapeError(`'${relativePath}' leaves the root ${rootAbs}`, { details });
  }
  let rootReal: string;
  try {
    rootReal = await realpath(rootAbs);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NotFoundError(`root directory does not exist: ${rootAbs}`, { cause: err, details: { file: rootAbs } });
    }
    throw err;
  }
  const targetReal = await realpathLoose(target, {
    links: MAX_LINKS,
    loop: (at, cause) => new PathEscapeError(`'${relativePath}' cannot be resolved: symbolic link loop at ${at}`, { cause, details: { ...details, at } }),
  });
  if (!isWithin(rootReal, targetReal)) {
    throw new PathEscapeError(`'${relativePath}' resolves through a symbolic link to ${targetReal}, outside the root ${rootReal}`, {
      details: { ...details, realPath: targetReal },
    });
  }
  return target;
}
