/**
 * Safe handling of files a user named: regular files only (a FIFO or device never wedges a reader),
 * size caps checked before reading, atomic writes, outputs that can never be the same file as an input,
 * and output folders that are only cleared when Vlit made them.
 */
import { constants as fsConstants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { ConflictError, InvalidArgumentError, LimitExceededError, NotFoundError } from './errors.js';

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** Options of readUserFile. */
export interface ReadUserFileOptions {
  /** Refuse files larger than this many bytes (checked on the open handle before reading). Default: no cap. */
  maxBytes?: number;
  /** What the file is, for messages ("image", "dataset"). Default "file". */
  what?: string;
}

/**
 * Read a file a user named, whole. Opens with O_NONBLOCK so a FIFO cannot block the open, then checks
 * the open handle (no race between check and read): anything but a regular file is an
 * InvalidArgumentError, a file over `maxBytes` a LimitExceededError, a missing one NotFoundError; each
 * names the file.
 */
export async function readUserFile(file: string, options: ReadUserFileOptions = {}): Promise<Buffer> {
  const what = options.what ?? 'file';
  let handle;
  try {
    handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new NotFoundError(`${what} not found: ${file}`, { cause: err, details: { file } });
    if (code === 'EISDIR') throw new InvalidArgumentError(`${what} ${file} is a directory, not a file`, { cause: err, details: { file } });
    if (code === 'ENOTDIR') throw new NotFoundError(`${what} not found: a parent of ${file} is not a directory`, { cause: err, details: { file } });
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      throw new InvalidArgumentError(`${what} ${file} is ${kindOf(st)}; only regular files are read`, { details: { file } });
    }
    if (options.maxBytes !== undefined && st.size > options.maxBytes) {
      throw new LimitExceededError(`${what} ${file} is ${st.size} bytes, over the ${options.maxBytes}-byte limit`, {
        details: { file, size: st.size, maxBytes: options.maxBytes },
      });
    }
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/**
 * Check that `file` exists and is a regular file (following symlinks), without opening it. Returns its
 * size. Typed errors as readUserFile's.
 */
export async function assertRegularFile(file: string, options: ReadUserFileOptions = {}): Promise<number> {
  const what = options.what ?? 'file';
  let st: Stats;
  try {
    st = await stat(file);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`${what} not found: ${file}`, { cause: err, details: { file } });
    throw err;
  }
  if (!st.isFile()) throw new InvalidArgumentError(`${what} ${file} is ${kindOf(st)}; only regular files are read`, { details: { file } });
  if (options.maxBytes !== undefined && st.size > options.maxBytes) {
    throw new LimitExceededError(`${what} ${file} is ${st.size} bytes, over the ${options.maxBytes}-byte limit`, {
      details: { file, size: st.size, maxBytes: options.maxBytes },
    });
  }
  return st.size;
}

/** A temporary sibling path for `file` (same folder, so the final rename is atomic). */
export function temporarySibling(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Write `data` to `file` atomically: to a temporary sibling first, then renamed over the target, so a
 * crash never leaves a half-written file and readers see the old or the new content.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = temporarySibling(file);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** The identity of a path for collision checks: real path, plus device and inode when it exists. */
async function identify(p: string): Promise<{ real: string; inode?: string }> {
  const abs = path.resolve(p);
  try {
    const st = await stat(abs);
    return { real: await realpath(abs), inode: `${st.dev}:${st.ino}` };
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
    // Not there yet: resolve the nearest existing parent so "dir/../x" and a symlinked folder still match.
    let parent = path.dirname(abs);
    const tail = [path.basename(abs)];
    for (;;) {
      try {
        return { real: path.join(await realpath(parent), ...tail.reverse()) };
      } catch {
        const up = path.dirname(parent);
        if (up === parent) return { real: abs };
        tail.push(path.basename(parent));
        parent = up;
      }
    }
  }
}

/**
 * Refuse when any two of the named paths are the same file (same real path, or the same inode through a
 * hard link): an output equal to an input, or two outputs, would silently destroy data. `paths` maps a
 * role ("input", "--rejects") to a path; undefined entries are skipped. Throws ConflictError naming both roles.
 */
export async function assertDistinctPaths(paths: Record<string, string | undefined>): Promise<void> {
  const seen: Array<{ role: string; file: string; real: string; inode?: string }> = [];
  for (const [role, file] of Object.entries(paths)) {
    if (file === undefined || file === '-') continue;
    const id = await identify(file);
    for (const other of seen) {
      if (other.real === id.real || (id.inode !== undefined && other.inode === id.inode)) {
        throw new ConflictError(`${role} (${file}) is the same file as ${other.role} (${other.file}); refusing to overwrite it`, {
          details: { file, field: role, other: other.file, otherField: other.role },
        });
      }
    }
    seen.push({ role, file, ...id });
  }
}

/** The file that marks a folder as made by Vlit, so later runs may clear it. */
export const VLIT_OUTPUT_MARKER = '.vlit-output';

/** Options of prepareOutputDir. */
export interface PrepareOutputDirOptions {
  /** Remove the folder's contents first (only when Vlit made it, or `force`). Default false. */
  clean?: boolean;
  /** Clear a non-empty folder even without Vlit's marker. Default false. */
  force?: boolean;
  /** Text written into the marker file (which tool made the folder). */
  owner?: string;
}

/**
 * Make `dir` ready as an output folder. A missing or empty folder is created and marked as Vlit's. A
 * non-empty folder without the marker is refused (ConflictError) unless `force`, so a user's files are
 * never deleted; a path that exists and is not a directory is an InvalidArgumentError. With `clean`, the
 * contents of a Vlit-made folder are removed (the marker stays).
 */
export async function prepareOutputDir(dir: string, options: PrepareOutputDirOptions = {}): Promise<void> {
  let st: Stats | null = null;
  try {
    st = await lstat(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTDIR') {
      throw new InvalidArgumentError(`output folder ${dir}: a parent is a file, not a folder`, { cause: err, details: { file: dir } });
    }
    if (code !== 'ENOENT') throw err;
  }
  if (st && !st.isDirectory()) {
    throw new InvalidArgumentError(`output folder ${dir} exists and is ${kindOf(st)}`, { details: { file: dir } });
  }
  if (st) {
    const entries = await readdir(dir);
    const marked = entries.includes(VLIT_OUTPUT_MARKER);
    if (entries.length > 0 && !marked && !options.force) {
      throw new ConflictError(
        `output folder ${dir} is not empty and was not made by Vlit (no ${VLIT_OUTPUT_MARKER} file); choose an empty or new folder, or pass --force to clear it`,
        { details: { file: dir, entries: entries.length } },
      );
    }
    if (options.clean) {
      for (const name of entries) if (name !== VLIT_OUTPUT_MARKER) await rm(path.join(dir, name), { recursive: true, force: true });
    }
  } else {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR' || errnoCode(err) === 'EEXIST') {
        throw new InvalidArgumentError(`output folder ${dir}: a parent is a file, not a folder`, { cause: err, details: { file: dir } });
      }
      throw err;
    }
  }
  await writeFile(path.join(dir, VLIT_OUTPUT_MARKER), `${options.owner ?? 'vlit'}\n`);
}
