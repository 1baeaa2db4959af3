/**
 * A bounded request queue: at most `concurrency` jobs run, at most `maxWaiting` wait; beyond that a
 * request is refused at once (the server answers 429) instead of piling up memory and latency.
 * Requests that carry the same batch key and wait at the same moment are granted one slot together
 * (up to `maxBatchSize`), so the server can run them as one batched generation.
 */
import { BackendError, InvalidArgumentError } from '@vlit/core';

/** Releases a slot taken from the queue. */
export type Release = () => void;

/** Snapshot of the queue. */
export interface QueueStats {
  /** Requests holding a slot (every member of a running batch counts). */
  running: number;
  waiting: number;
  concurrency: number;
  maxWaiting: number;
  /** Most requests granted one slot together. */
  maxBatchSize: number;
  /** Batched runs so far (one per group that handed work in, whatever its size). */
  batches: number;
  /** Requests that ran in a batch of two or more. */
  batchedRequests: number;
  /** The largest batch run so far. */
  largestBatch: number;
}

/** A slot granted to a request, possibly shared with other requests of the same batch key. */
export interface Ticket {
  /** Requests granted this slot together (this one included). */
  readonly size: number;
  /**
   * Hand this request's item to the group; once every member has handed its item in or released,
   * `run` is called once with all the items (in arrival order) and each member gets its own outcome.
   */
  join<I, R>(item: I, run: (items: I[]) => Promise<PromiseSettledResult<R>[]>): Promise<R>;
  /** Give the slot back (a member that never joined drops out of the group). */
  release(): void;
}

interface Entry {
  item: unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The requests granted one slot together, collecting their items until all are in. */
class BatchGroup {
  private readonly entries: Entry[] = [];
  private accounted = 0;
  private runner: ((items: unknown[]) => Promise<PromiseSettledResult<unknown>[]>) | undefined;

  constructor(
    readonly size: number,
    private readonly onRun: (n: number) => void,
  ) {}

  join(item: unknown, run: (items: unknown[]) => Promise<PromiseSettledResult<unknown>[]>): Promise<unknown> {
    this.runner ??= run;
    const p = new Promise<unknown>((resolve, reject) => this.entries.push({ item, resolve, reject }));
    this.account();
    return p;
  }

  leave(): void {
    this.account();
  }

  private account(): void {
    this.accounted++;
    if (this.accounted < this.size || this.entries.length === 0 || !this.runner) return;
    const entries = this.entries.splice(0);
    this.onRun(entries.length);
    this.runner(entries.map((e) => e.item)).then(
      (results) =>
        entries.forEach((e, i) => {
          const r = results[i];
          if (r?.status === 'fulfilled') e.resolve(r.value);
          else e.reject(r ? r.reason : new BackendError(`the batch returned no result for item ${i}`, { details: { record: i } }));
        }),
      (err: unknown) => entries.forEach((e) => e.reject(err)),
    );
  }
}

interface Waiter {
  key: string | undefined;
  grant: (t: Ticket) => void;
  fail: (e: unknown) => void;
}

/** A bounded FIFO of work slots; waiting requests with the same batch key share a slot. */
export class BoundedQueue {
  private running = 0;
  private slotsInUse = 0;
  private batches = 0;
  private batchedRequests = 0;
  private largestBatch = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
    readonly maxBatchSize = 1,
  ) {}

  /** Current load and batching counts. */
  stats(): QueueStats {
    return {
      running: this.running,
      waiting: this.waiters.length,
      concurrency: this.concurrency,
      maxWaiting: this.maxWaiting,
      maxBatchSize: this.maxBatchSize,
      batches: this.batches,
      batchedRequests: this.batchedRequests,
      largestBatch: this.largestBatch,
    };
  }

  /**
   * A promise of a slot, or null when every slot is taken and the waiting line is full. An aborted
   * signal takes a waiting request out of the line (the promise rejects with the signal's reason).
   */
  tryAcquire(signal?: AbortSignal): Promise<Release> | null {
    return this.tryJoin(signal, undefined)?.then((t) => () => t.release()) ?? null;
  }

  /**
   * Like tryAcquire, with a batch key: when a slot frees, the first waiter takes it together with
   * the next waiters of the same key (up to maxBatchSize). An undefined key is never grouped.
   */
  tryJoin(signal: AbortSignal | undefined, key: string | undefined): Promise<Ticket> | null {
    if (this.slotsInUse < this.concurrency && this.waiters.length === 0) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      return Promise.resolve(this.grantGroup(1)[0]);
    }
    if (this.waiters.length >= this.maxWaiting) return null;
    return new Promise<Ticket>((resolve, reject) => {
      const entry: Waiter = {
        key,
        grant: (t) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(t);
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

  /** Take a slot for `n` requests: one ticket each, the slot freed when all have released. */
  private grantGroup(n: number): Ticket[] {
    this.slotsInUse++;
    this.running += n;
    let remaining = n;
    const group = new BatchGroup(n, (k) => {
      this.batches++;
      if (k > 1) this.batchedRequests += k;
      this.largestBatch = Math.max(this.largestBatch, k);
    });
    return Array.from({ length: n }, (): Ticket => {
      let joined = false;
      let released = false;
      return {
        size: n,
        join<I, R>(item: I, run: (items: I[]) => Promise<PromiseSettledResult<R>[]>): Promise<R> {
          if (joined || released)
            return Promise.reject(new InvalidArgumentError('a ticket joins its batch once, before it is released', { details: { field: 'ticket' } }));
          joined = true;
          return group.join(item, run as (items: unknown[]) => Promise<PromiseSettledResult<unknown>[]>) as Promise<R>;
        },
        release: () => {
          if (released) return;
          released = true;
          if (!joined) group.leave();
          this.running--;
          if (--remaining === 0) {
            this.slotsInUse--;
            this.grantNext();
          }
        },
      };
    });
  }

  private grantNext(): void {
    while (this.slotsInUse < this.concurrency && this.waiters.length > 0) {
      const first = this.waiters.shift()!;
      const members = [first];
      if (first.key !== undefined) {
        for (let i = 0; i < this.waiters.length && members.length < this.maxBatchSize; ) {
          if (this.waiters[i].key === first.key) members.push(...this.waiters.splice(i, 1));
          else i++;
        }
      }
      const tickets = this.grantGroup(members.length);
      members.forEach((m, i) => m.grant(tickets[i]));
    }
  }
}
