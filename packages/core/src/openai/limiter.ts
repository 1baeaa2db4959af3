import { InvalidArgumentError } from '../errors.js';

/** Runs at most `limit` async tasks at once; the rest wait in arrival order. */
export interface ConcurrencyLimiter {
  readonly limit: number;
  /** Tasks running (slots held) now. */
  readonly active: number;
  /** Callers queued for a slot now (read-only; lets callers and tests see who waits without timing it). */
  readonly waiting: number;
  /** Run `task` when a slot is free. */
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Wait for a slot and hold it until the returned release is called (once; later calls do nothing). */
  acquire(): Promise<() => void>;
}

/** Create a concurrency limiter (a counting semaphore with a FIFO queue). */
export function createConcurrencyLimiter(limit: number): ConcurrencyLimiter {
  if (!(Number.isInteger(limit) && limit >= 1)) {
    throw new InvalidArgumentError(`concurrency must be a positive integer, got ${limit}`, { details: { field: 'concurrency' } });
  }
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  const acquire = async (): Promise<() => void> => {
    // A released slot passes straight to the next waiter, so `active` never dips and over-admits.
    if (active < limit) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  };
  return {
    limit,
    get active() {
      return active;
    },
    get waiting() {
      return waiting.length;
    },
    acquire,
    async run<T>(task: () => Promise<T>): Promise<T> {
      const done = await acquire();
      try {
        return await task();
      } finally {
        done();
      }
    },
  };
}
