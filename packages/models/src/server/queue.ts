/**
 * A bounded request queue: at most `concurrency` jobs run, at most `maxWaiting` wait; beyond that a
 * request is refused at once (the server answers 429) instead of piling up memory and latency.
 */

/** Releases a slot taken from the queue. */
export type Release = () => void;

/** Snapshot of the queue. */
export interface QueueStats {
  running: number;
  waiting: number;
  concurrency: number;
  maxWaiting: number;
}

/** A bounded FIFO of work slots. */
export class BoundedQueue {
  private running = 0;
  private readonly waiters: Array<{ grant: (r: Release) => void; fail: (e: unknown) => void }> = [];

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
  ) {}

  /** Current load. */
  stats(): QueueStats {
    return { running: this.running, waiting: this.waiters.length, concurrency: this.concurrency, maxWaiting: this.maxWaiting };
  }

  /**
   * A promise of a slot, or null when every slot is taken and the waiting line is full. An aborted
   * signal takes a waiting request out of the line (the promise rejects with the signal's reason).
   */
  tryAcquire(signal?: AbortSignal): Promise<Release> | null {
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.maxWaiting) return null;
    return new Promise<Release>((resolve, reject) => {
      const entry = {
        grant: (r: Release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        fail: reject,
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(entry);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason);
      };
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(entry);
    });
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next.grant(this.releaser());
      else this.running--;
    };
  }
}
