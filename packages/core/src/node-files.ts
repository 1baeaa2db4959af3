/**
 * Safe handling of files a user named: regular files only (a FIFO or device never wedges a reader),
 * size caps enforced while reading, atomic writes, outputs that can never be the same file as an input,
 * and output folders that are only cleared when Vlit made them.
 */
import { constants as fsConstants, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readlink, realpath, rename, rm, stat, type FileHandle } from 'node:fs/promises';
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

/**
 * A Node file-system error (ENOENT, EISDIR, EACCES, ...) as a typed Vlit error naming `file`; errors
 * that are not about the path itself (EIO, ENOSPC, ...) and Vlit errors come back unchanged.
 */
export function fileSystemError(err: unknown, file: string, what = 'file'): unknown {
  switch (errnoCode(err)) {
    case 'ENOENT':
      return new NotFoundError(`${what} not found: ${file}`, { cause: err, details: { file } });
    case 'ENOTDIR':
      return new NotFoundError(`${what} not found: a parent of ${file} is not a directory`, { cause: err, details: { file } });
    case 'EISDIR':
      return new InvalidArgumentError(`${what} ${file} is a directory, not a file`, { cause: err, details: { file } });
    case 'EACCES':
    case 'EPERM':
      return new InvalidArgumentError(`${what} ${file}: permission denied`, { cause: err, details: { file } });
    case 'ELOOP':
      return new InvalidArgumentError(`${what} ${file}: too many levels of symbolic links`, { cause: err, details: { file } });
    case 'ENAMETOOLONG':
      return new InvalidArgumentError(`${what} ${file}: name too long`, { cause: err, details: { file } });
    default:
      return err;
  }
}

/** Options of readUserFile. */
export interface ReadUserFileOptions {
  /** Refuse files larger than this many bytes (checked before reading, and again while reading). Default: no cap. */
  maxBytes?: number;
  /** What the file is, for messages ("image", "dataset"). Default "file". */
  what?: string;
}

function tooLarge(what: string, file: string, size: number | string, maxBytes: number): LimitExceededError {
  return new LimitExceededError(`${what} ${file} is ${size} bytes, over the ${maxBytes}-byte limit`, {
    details: { file, size, maxBytes },
  });
}

/**
 * Read a file a user named, whole. Opens with O_NONBLOCK so a FIFO cannot block the open, then checks
 * the open handle (no race between check and read): anything but a regular file is an
 * InvalidArgumentError, a file over `maxBytes` a LimitExceededError (also when it grows while being
 * read: at most `maxBytes + 1` bytes are ever read), a missing one NotFoundError; each names the file.
 */
export async function readUserFile(file: string, options: ReadUserFileOptions = {}): Promise<Buffer> {
  const what = options.what ?? 'file';
  let handle: FileHandle;
  try {
    handle = await open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw fileSystemError(err, file, what);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      throw new InvalidArgumentError(`${what} ${file} is ${kindOf(st)}; only regular files are read`, { details: { file } });
    }
    const cap = options.maxBytes;
    if (cap === undefined) return await handle.readFile();
    if (st.size > cap) throw tooLarge(what, file, st.size, cap);
    // stat's size can be stale (a file still being written, /proc files report 0): read to EOF, but never past cap + 1.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(cap + 1 - total, 1 << 24, Math.max(st.size - total + 1, 1 << 16));
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > cap) throw tooLarge(what, file, `over ${cap}`, cap);
      // A short read that ends exactly at stat's size is the end of the file: no need to ask again
      // (files whose size stat does not know, as /proc's, still read until a read returns nothing).
      if (bytesRead < want && total === st.size) break;
    }
    // One read that filled its buffer but for the byte that proves the end: hand it over as is (a
    // small file's 64 KiB read buffer is copied to its size instead of being kept alive by the result).
    return chunks.length === 1 && chunks[0].buffer.byteLength - total <= 1 ? chunks[0] : Buffer.concat(chunks, total);
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
    throw fileSystemError(err, file, what);
  }
  if (!st.isFile()) throw new InvalidArgumentError(`${what} ${file} is ${kindOf(st)}; only regular files are read`, { details: { file } });
  if (options.maxBytes !== undefined && st.size > options.maxBytes) throw tooLarge(what, file, st.size, options.maxBytes);
  return st.size;
}

/** Check that `dir` exists and is a directory (following symlinks): NotFoundError or InvalidArgumentError naming it. */
export async function assertDirectory(dir: string, options: { what?: string } = {}): Promise<void> {
  const what = options.what ?? 'folder';
  let st: Stats;
  try {
    st = await stat(dir);
  } catch (err) {
    throw fileSystemError(err, dir, what);
  }
  if (!st.isDirectory()) throw new InvalidArgumentError(`${what} ${dir} is ${kindOf(st)}, not a directory`, { details: { file: dir } });
}

/** A temporary sibling path for `file` (same folder, so the final rename is atomic). */
export function temporarySibling(file: string): string {
  // Long names would push the temporary name past NAME_MAX (255) where the target itself fits.
  return path.join(path.dirname(file), `.${path.basename(file).slice(0, 120)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Where an atomic write to `file` must go, and the mode to give it: an existing symlink is followed (the
 * user's link stays a link), an existing non-regular file (a directory, a FIFO, a device) is refused.
 */
async function writeTarget(file: string, what: string): Promise<{ target: string; mode?: number }> {
  let target = path.resolve(file);
  try {
    target = await realpath(target);
    const st = await stat(target);
    if (!st.isFile()) throw new InvalidArgumentError(`${what} ${file} is ${kindOf(st)}; outputs must be regular files`, { details: { file } });
    return { target, mode: st.mode & 0o7777 };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      // A dangling symlink: write where it points, so the link resolves afterwards.
      const link = await lstat(target).catch(() => undefined);
      if (link?.isSymbolicLink()) return { target: path.resolve(path.dirname(target), await readlink(target)) };
      return { target };
    }
    if (errnoCode(err) === 'ENOTDIR') throw new InvalidArgumentError(`${what} ${file}: a parent is a file, not a folder`, { cause: err, details: { file } });
    throw fileSystemError(err, file, what);
  }
}

/** A file being written atomically: chunks go to a temporary sibling, `commit` renames it over the target. */
export interface AtomicFileWriter {
  /** The path the data lands at on commit (symlinks resolved). */
  readonly path: string;
  /** Queue a chunk; writes happen in order. Awaiting is optional (errors surface at `commit` too). */
  write(chunk: string | Uint8Array): Promise<void>;
  /** Flush, sync and rename into place. After a failure the target is untouched and the temporary file gone. */
  commit(): Promise<void>;
  /** Drop everything written; the target is untouched. Safe to call after commit or twice. */
  abort(): Promise<void>;
}

/**
 * Start an atomic write of `file`: nothing appears at `file` until `commit`, and a failed or aborted run
 * leaves the previous content (or no file) there. An existing file keeps its permission bits.
 */
export async function createAtomicFileWriter(file: string, options: { what?: string } = {}): Promise<AtomicFileWriter> {
  const what = options.what ?? 'output';
  const { target, mode } = await writeTarget(file, what);
  const tmp = temporarySibling(target);
  let handle: FileHandle | undefined;
  try {
    // 'wx': never follow or reuse something already at the temporary name.
    handle = await open(tmp, 'wx', mode ?? 0o666);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new NotFoundError(`the folder of ${what} ${file} does not exist`, { cause: err, details: { file } });
    if (code === 'ENOTDIR') throw new InvalidArgumentError(`${what} ${file}: a parent is a file, not a folder`, { cause: err, details: { file } });
    throw fileSystemError(err, file, what);
  }
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown;
  let pending: Array<string | Uint8Array> = [];
  let pendingBytes = 0;
  let done = false;
  const flush = (): Promise<void> => {
    if (pending.length === 0) return chain;
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    chain = chain.then(async () => {
      if (failure !== undefined || !handle) return;
      try {
        for (const c of batch) await handle.write(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
      } catch (err) {
        failure = err;
      }
    });
    return chain;
  };
  const discard = async (): Promise<void> => {
    done = true;
    const h = handle;
    handle = undefined;
    await chain.catch(() => undefined);
    await h?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
  };
  return {
    path: target,
    write(chunk) {
      if (done) return Promise.reject(new InvalidArgumentError(`${what} ${file} was already committed or aborted`, { details: { file } }));
      pending.push(chunk);
      pendingBytes += chunk.length;
      // Small chunks (one JSON line each) are batched so a million rejects are not a million syscalls.
      return pendingBytes >= 1 << 16 ? flush() : Promise.resolve();
    },
    async commit() {
      if (done) throw new InvalidArgumentError(`${what} ${file} was already committed or aborted`, { details: { file } });
      await flush();
      try {
        if (failure !== undefined) throw failure;
        await handle!.sync();
        await handle!.close();
        handle = undefined;
        if (mode !== undefined) await chmod(tmp, mode);
        await rename(tmp, target);
        done = true;
      } catch (err) {
        await discard();
        throw fileSystemError(err, file, what);
      }
    },
    abort: discard,
  };
}

/**
 * Write `data` to `file` atomically: to a temporary sibling first, synced, then renamed over the target,
 * so a crash never leaves a half-written file and readers see the old or the new content. A symlink at
 * `file` is written through; a directory, FIFO or device there is refused with a typed error.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const writer = await createAtomicFileWriter(file);
  try {
    await writer.write(data);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.commit();
}

/** The identity of a path for collision checks: real path, plus device and inode when it exists. */
async function identify(p: string, depth = 0): Promise<{ real: string; inode?: string }> {
  const abs = path.resolve(p);
  try {
    const st = await stat(abs);
    return { real: await realpath(abs), inode: `${st.dev}:${st.ino}` };
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') throw fileSystemError(err, p);
    // A dangling symlink: writing through it creates its target, so it is that target.
    if (code === 'ENOENT' && depth < 32) {
      const link = await lstat(abs).catch(() => undefined);
      if (link?.isSymbolicLink()) return identify(path.resolve(path.dirname(abs), await readlink(abs)), depth + 1);
    }
    // Not there yet: resolve the nearest existing parent so "dir/../x" and a symlinked folder still match.
    let parent = path.dirname(abs);
    const tail = [path.basename(abs)];
    for (;;) {
      try {
        return { real: path.join(await realpath(parent), ...[...tail].reverse()) };
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
 * role ("input", "--rejects") to a path; undefined entries and "-" are skipped. Throws ConflictError
 * naming both roles; call it before opening anything.
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
  /** Remove the contents of a folder Vlit made (marked) first. Default false. */
  clean?: boolean;
  /**
   * Use a non-empty folder Vlit did not make: files Vlit writes there are overwritten, nothing else is
   * removed (even with `clean`) and the folder is not marked. Default false (such a folder is refused).
   */
  force?: boolean;
  /** Text written into the marker file (which tool made the folder). */
  owner?: string;
}

/** What prepareOutputDir found and did. */
export interface PreparedOutputDir {
  /** The folder did not exist and was created. */
  created: boolean;
  /** The folder carries Vlit's marker (it was made by Vlit, now or earlier). */
  owned: boolean;
  /** Entries removed by `clean`. */
  removed: number;
}

/**
 * Make `dir` ready as an output folder. A missing or empty folder is created and marked as Vlit's; a
 * marked one is Vlit's and is emptied with `clean`. A non-empty folder without the marker is refused
 * (ConflictError) unless `force`, and even then nothing in it is deleted, so a user's files never are.
 * A path that exists and is not a directory (or has a file as a parent) is an InvalidArgumentError.
 */
export async function prepareOutputDir(dir: string, options: PrepareOutputDirOptions = {}): Promise<PreparedOutputDir> {
  let st: Stats | undefined;
  try {
    st = await stat(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTDIR') {
      throw new InvalidArgumentError(`output folder ${dir}: a parent is a file, not a folder`, { cause: err, details: { file: dir } });
    }
    if (code !== 'ENOENT') throw fileSystemError(err, dir, 'output folder');
  }
  if (st && !st.isDirectory()) {
    throw new InvalidArgumentError(`output folder ${dir} exists and is ${kindOf(st)}, not a folder`, { details: { file: dir } });
  }
  const marker = path.join(dir, VLIT_OUTPUT_MARKER);
  let created = false;
  let removed = 0;
  if (st) {
    const entries = await readdir(dir);
    // Only a regular file counts: a symlink named like the marker must not make a folder look like Vlit's.
    const owned =
      entries.includes(VLIT_OUTPUT_MARKER) &&
      (await lstat(marker).then(
        (m) => m.isFile(),
        () => false,
      ));
    if (entries.length > 0 && !owned) {
      if (!options.force) {
        throw new ConflictError(
          `output folder ${dir} is not empty and was not made by Vlit (no ${VLIT_OUTPUT_MARKER} file); choose an empty or new folder, or force (--force) to write into it without deleting anything`,
          { details: { file: dir, entries: entries.length } },
        );
      }
      return { created: false, owned: false, removed: 0 };
    }
    if (owned && options.clean) {
      for (const name of entries) {
        if (name === VLIT_OUTPUT_MARKER) continue;
        await rm(path.join(dir, name), { recursive: true, force: true });
        removed++;
      }
    }
  } else {
    try {
      await mkdir(dir, { recursive: true });
      created = true;
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR' || errnoCode(err) === 'EEXIST') {
        throw new InvalidArgumentError(`output folder ${dir}: a parent is a file, not a folder`, { cause: err, details: { file: dir } });
      }
      throw fileSystemError(err, dir, 'output folder');
    }
  }
  await writeFileAtomic(marker, `${options.owner ?? 'vlit'}\n`);
  return { created, owned: true, removed };
}
