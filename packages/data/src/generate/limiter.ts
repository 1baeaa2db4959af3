import { InvalidArgumentError } from '@vlit/core';

/** Runs at most `limit` async tasks at once; the rest wait in arrival order. */
export interface ConcurrencyLimiter {
  readonly limit: number;
  /** Tasks running now. */
  readonly active: number;
  /** Run `task` when a slot is free. */
  run<T>(task: () => Promise<T>): Promise<T>;
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
  return {
    limit,
    get active() {
      return active;
    },
    async run<T>(task: () => Promise<T>): Promise<T> {
      // A released slot passes straight to the next waiter, so `active` never dips and over-admits.
      if (active < limit) active++;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}
