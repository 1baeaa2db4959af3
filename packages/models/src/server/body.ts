/**
 * Reading request bodies without letting clients choose the server's memory: a declared length over
 * the limit is refused before a byte is read, the running length is checked per chunk, every body
 * buffered anywhere in the server draws on one shared byte budget, and a body that does not arrive
 * in time is cut off (slow and stalled uploads cannot hold memory or a connection for long).
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/** The first bytes of every body may use the budget's headroom, so small requests pass while large bodies fill the rest. */
export const SMALL_BODY_BYTES = 64 * 1024;

/**
 * A byte budget shared by every body the server holds: reserved as bytes arrive (not as declared, so a
 * client that announces a large body and stalls holds nothing), released when the request is done.
 * Bodies may hold `maxBytes` together; the first SMALL_BODY_BYTES of each may also use a headroom of an
 * eighth more, so ordinary requests keep being read while large uploads fill the budget.
 */
export class BodyBudget {
  private used = 0;
  readonly headroom: number;

  constructor(readonly maxBytes: number) {
    this.headroom = Math.floor(maxBytes / 8);
  }

  /** Bytes held now. */
  get held(): number {
    return this.used;
  }

  /** Take `n` more bytes for a body that already holds `held`, if they fit. */
  tryReserve(n: number, held = 0): boolean {
    const small = Math.max(0, Math.min(n, SMALL_BODY_BYTES - held));
    if (this.used + n > this.maxBytes + this.headroom) return false;
    if (n > small && this.used + n > this.maxBytes) return false;
    this.used += n;
    return true;
  }

  /** Give back `n` bytes. */
  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** A body read in full and decoded as UTF-8, with its share of the budget (give it back once the request is done). */
export interface ReadBody {
  /** The body as text (the bytes are dropped as soon as they are decoded). */
  text: string;
  /** Releases the body's reservation; idempotent. */
  release(): void;
}

/** Limits of one body read. */
export interface ReadBodyOptions {
  limit: number;
  budget: BodyBudget;
  timeoutMs: number;
  /** Aborted when the server closes. */
  signal: AbortSignal;
}

/** The client left before sending its whole body; there is no one to answer. */
export const CLIENT_CLOSED = 'client_closed';

/** 413 for a body over `limit`. */
export function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'invalid_request_error', 'request_too_large', `request body exceeds the limit of ${limit} bytes`);
}

/**
 * Read `req`'s body within the limits. Rejects with an HttpError: 413 `request_too_large` (declared or
 * running length over `limit`), 503 `server_busy` (the shared budget is spent), 408 `body_timeout`,
 * 503 `server_shutting_down`, or one with code `client_closed` when the client went away.
 */
export function readBody(req: IncomingMessage, options: ReadBodyOptions): Promise<ReadBody> {
  const { limit, budget } = options;
  const header = req.headers['content-length'];
  const declared = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise<ReadBody>((resolve, reject) => {
    // With a declared length the body is copied into one buffer as it arrives (no concatenation copy);
    // its pages become resident only as bytes are written, so a declared-but-unsent body costs nothing.
    let whole: Buffer | undefined = declared !== undefined ? Buffer.allocUnsafe(declared) : undefined;
    let chunks: Buffer[] = [];
    let reserved = 0;
    let settled = false;
    const giveBack = (): void => {
      budget.release(reserved);
      reserved = 0;
    };
    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onClose);
      options.signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: HttpError): void => {
      if (settled) return;
      cleanup();
      chunks = [];
      whole = undefined;
      giveBack();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      if (settled) return;
      if (reserved + chunk.length > limit) {
        fail(tooLarge(limit));
        return;
      }
      if (!budget.tryReserve(chunk.length, reserved)) {
        fail(
          new HttpError(503, 'server_error', 'server_busy', 'the server is holding as many request bodies as it can; retry later', null, {
            'retry-after': '1',
          }),
        );
        return;
      }
      if (whole) chunk.copy(whole, reserved);
      else chunks.push(chunk);
      reserved += chunk.length;
    };
    const onEnd = (): void => {
      if (settled) return;
      cleanup();
      const bytes = whole ? whole.subarray(0, reserved) : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, reserved);
      chunks = [];
      whole = undefined;
      const text = bytes.toString('utf8');
      const held = reserved;
      let released = false;
      resolve({
        text,
        release: () => {
          if (released) return;
          released = true;
          budget.release(held);
        },
      });
    };
    const gone = (): HttpError => new HttpError(400, 'invalid_request_error', CLIENT_CLOSED, 'the client closed the connection before sending the whole body');
    const onGone = (): void => fail(gone());
    const onClose = (): void => {
      if (!req.complete) fail(gone());
    };
    const onAbort = (): void => fail(new HttpError(503, 'server_error', 'server_shutting_down', 'the server is shutting down', null, { connection: 'close' }));
    const timer = setTimeout(
      () =>
        fail(
          new HttpError(408, 'invalid_request_error', 'body_timeout', `the request body did not arrive within ${options.timeoutMs} ms`, null, {
            connection: 'close',
          }),
        ),
      options.timeoutMs,
    );
    if (options.signal.aborted) return onAbort();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onClose);
    options.signal.addEventListener('abort', onAbort, { once: true });
  });
}
