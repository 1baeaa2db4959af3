/**
 * The chat-completions client's retry policy, apart from the request itself: which failures are worth
 * another attempt, and how long to wait first (exponential backoff with jitter, or the server's
 * Retry-After). Plain functions of their inputs, so the arithmetic is tested by hand-worked cases.
 */
import { InvalidArgumentError } from '../errors.js';

/** The retry settings a client resolved from its options (defaults filled in, ranges checked). */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly maxRetries: number;
  /** The first retry's backoff before jitter; each later retry doubles it, up to `maxMs`. */
  readonly initialMs: number;
  readonly maxMs: number;
  /** Fraction of each backoff that is random, in [0, 1]. */
  readonly jitter: number;
  /** Longest Retry-After honoured; longer values are cut to this. */
  readonly maxRetryAfterMs: number;
}

/** The options a retry policy is resolved from (the client's `maxRetries`, `backoff`, `maxRetryAfterMs`). */
export interface RetryPolicyOptions {
  maxRetries?: number;
  backoff?: { initialMs?: number; maxMs?: number; jitter?: number };
  maxRetryAfterMs?: number;
}

/** A failed attempt, as far as the policy cares. */
export interface FailedAttempt {
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  readonly retryable: boolean;
  /** What the server's Retry-After asked for, when it sent one. */
  readonly retryAfterMs?: number;
}

/** The wait before the next attempt, and whether it came from the server's Retry-After. */
export interface RetryDelay {
  readonly delayMs: number;
  readonly retryAfter: boolean;
}

/** `value`, or `fallback` when undefined; InvalidArgumentError naming `field` when it is negative or not a number. */
export function nonNegativeOption(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === 'number' && value >= 0 && !Number.isNaN(value))) {
    throw new InvalidArgumentError(`${field} must be a non-negative number, got ${String(value)}`, { details: { field } });
  }
  return value;
}

/** The retry policy of a client's options: 5 retries, backoff 500 ms doubling to 30 000 ms with jitter 0.5, Retry-After up to 120 000 ms. */
export function resolveRetryPolicy(options: RetryPolicyOptions): RetryPolicy {
  return {
    maxRetries: nonNegativeOption(options.maxRetries, 5, 'maxRetries'),
    initialMs: nonNegativeOption(options.backoff?.initialMs, 500, 'backoff.initialMs'),
    maxMs: nonNegativeOption(options.backoff?.maxMs, 30_000, 'backoff.maxMs'),
    jitter: Math.min(1, nonNegativeOption(options.backoff?.jitter, 0.5, 'backoff.jitter')),
    maxRetryAfterMs: nonNegativeOption(options.maxRetryAfterMs, 120_000, 'maxRetryAfterMs'),
  };
}

/**
 * The wait before retrying a failed attempt, or undefined to give up (not retryable, or no retries
 * left). Retry-After wins, cut to `maxRetryAfterMs`; otherwise the n-th retry waits a uniform time in
 * [d (1 - jitter), d] with d = min(maxMs, initialMs * 2^(n-1)), drawing `random()` (uniform [0, 1)) only then.
 */
export function retryDelay(policy: RetryPolicy, failure: FailedAttempt, random: () => number): RetryDelay | undefined {
  if (!failure.retryable || failure.attempt > policy.maxRetries) return undefined;
  if (failure.retryAfterMs !== undefined) return { delayMs: Math.min(failure.retryAfterMs, policy.maxRetryAfterMs), retryAfter: true };
  const d = Math.min(policy.maxMs, policy.initialMs * 2 ** (failure.attempt - 1));
  return { delayMs: d * (1 - policy.jitter) + random() * d * policy.jitter, retryAfter: false };
}

/** Milliseconds a Retry-After header asks for (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  // An HTTP date always names its weekday and month; anything else (`-3`, `soon`) is ignored.
  const date = /[a-z]/i.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Whether an HTTP status is worth retrying: 408, 409, 425, 429 and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 425 || status === 429 || status >= 500;
}
