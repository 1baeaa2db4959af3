/**
 * An exclusive lock on a job folder, so two runs of one generation job can never write the same
 * outputs at once. The lock is a small JSON file created atomically (written to a temporary file,
 * then hard-linked into place, which fails if the lock exists: an O_EXCL create that can never leave a
 * half-written lock behind). A lock whose process is gone (same host, dead pid) is taken over.
 */
import { ConflictError, type VlitWarning } from '@vlit/core';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Name of the lock file inside a job folder. */
export const JOB_LOCK_FILE = 'job.lock';

/** What a lock file says about its holder. */
export interface JobLockInfo {
  pid: number;
  host: string;
  /** ISO time the holder took the lock. */
  startedAt: string;
  /** Random value that tells this holder's lock from a later one at the same path. */
  token: string;
}

/** A lock held by this process. */
export interface JobLock {
  file: string;
  info: JobLockInfo;
  /** Remove the lock if it is still this holder's (idempotent). */
  release(): Promise<void>;
}

/** Options of acquireJobLock. */
export interface AcquireJobLockOptions {
  /** Receives `VLIT_W_STALE_LOCK` when a dead holder's lock is taken over. */
  onWarning?: (warning: VlitWarning) => void;
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** True when a process with this pid exists on this host (EPERM: it exists but belongs to another user). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

function parseLock(text: string): JobLockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<JobLockInfo>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.startedAt === 'string' && typeof v.token === 'string') return v as JobLockInfo;
  } catch {
    // not a lock this code wrote
  }
  return undefined;
}

async function readLock(file: string): Promise<{ text: string; info?: JobLockInfo } | undefined> {
  try {
    const text = await readFile(file, 'utf8');
    return { text, info: parseLock(text) };
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Create `file` with `content` only if it does not exist; false when it does. */
async function createExclusive(file: string, content: string): Promise<boolean> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, content);
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EEXIST') return false;
    // File systems without hard links: plain O_EXCL create (a kill between create and write could
    // leave an empty lock, which is then refused as unreadable rather than ignored).
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      try {
        const handle = await open(file, 'wx');
        try {
          await handle.writeFile(content);
        } finally {
          await handle.close();
        }
        return true;
      } catch (inner) {
        if (errnoOf(inner) === 'EEXIST') return false;
        throw inner;
      }
    }
    throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

function describe(info: JobLockInfo): string {
  return `pid ${info.pid} on ${info.host} since ${info.startedAt}`;
}

/**
 * Take the exclusive lock of a job folder, or throw ConflictError naming the lock file and its holder
 * when another live process holds it (or a process on another host, whose liveness cannot be checked).
 * A lock left by a dead process on this host is taken over with a `VLIT_W_STALE_LOCK` warning.
 */
export async function acquireJobLock(dir: string, options: AcquireJobLockOptions = {}): Promise<JobLock> {
  const file = join(dir, JOB_LOCK_FILE);
  const info: JobLockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), token: randomBytes(12).toString('hex') };
  const content = `${JSON.stringify(info)}\n`;
  let released = false;
  const lock: JobLock = {
    file,
    info,
    async release() {
      if (released) return;
      released = true;
      const current = await readLock(file);
      if (current?.info?.token === info.token) await unlink(file).catch(() => undefined);
    },
  };
  // A few rounds: each lost race (another process took over the same stale lock first) starts over.
  for (let round = 0; round < 8; round++) {
    if (await createExclusive(file, content)) return lock;
    const held = await readLock(file);
    if (!held) continue; // released between our attempt and the read
    const holder = held.info;
    if (!holder) {
      throw new ConflictError(`job folder ${dir} has a lock file that is not Vlit's (${JOB_LOCK_FILE}); if no job is running there, delete it`, {
        details: { file },
      });
    }
    if (holder.host !== info.host || isProcessAlive(holder.pid)) {
      throw new ConflictError(
        `job folder ${dir} is in use by another generation job (${describe(holder)}); wait for it to finish, or delete ${file} if that job is gone`,
        { details: { file, pid: holder.pid, host: holder.host, startedAt: holder.startedAt } },
      );
    }
    // Stale: move it aside under a unique name. Only one contender's rename can take a given file.
    const aside = `${file}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
    try {
      await rename(file, aside);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') continue;
      throw err;
    }
    const moved = await readLock(aside);
    if (moved?.info?.token !== holder.token) {
      // Another process replaced the stale lock with its own live one just before our rename: put it back.
      await link(aside, file).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
      const other = moved?.info;
      throw new ConflictError(`job folder ${dir} is in use by another generation job${other ? ` (${describe(other)})` : ''}`, { details: { file } });
    }
    await unlink(aside).catch(() => undefined);
    options.onWarning?.({
      code: 'VLIT_W_STALE_LOCK',
      message: `took over the lock of a job that is no longer running (${describe(holder)})`,
      details: { file, pid: holder.pid, startedAt: holder.startedAt },
    });
  }
  throw new ConflictError(`job folder ${dir}: could not take the lock after several attempts (other processes keep taking it)`, { details: { file } });
}
