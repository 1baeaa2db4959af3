// The retry policy's arithmetic against hand-worked cases (the client's own tests drive it over HTTP).
import { describe, expect, it } from 'vitest';
import { isRetryableStatus, resolveRetryPolicy, retryDelay, type RetryPolicy } from './retry-policy.js';

const policy: RetryPolicy = { maxRetries: 3, initialMs: 100, maxMs: 250, jitter: 0.5, maxRetryAfterMs: 5000 };
const never = (): number => {
  throw new Error('random() drawn where no jitter applies');
};

describe('resolveRetryPolicy', () => {
  it('fills in the documented defaults and caps jitter at 1', () => {
    expect(resolveRetryPolicy({})).toEqual({ maxRetries: 5, initialMs: 500, maxMs: 30_000, jitter: 0.5, maxRetryAfterMs: 120_000 });
    expect(resolveRetryPolicy({ maxRetries: 0, backoff: { initialMs: 1, maxMs: 2, jitter: 3 }, maxRetryAfterMs: 0 })).toEqual({
      maxRetries: 0,
      initialMs: 1,
      maxMs: 2,
      jitter: 1,
      maxRetryAfterMs: 0,
    });
  });

  it('refuses negative and NaN settings, naming the field', () => {
    expect(() => resolveRetryPolicy({ maxRetries: -1 })).toThrowError(
      expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT', details: expect.objectContaining({ field: 'maxRetries' }) }),
    );
    expect(() => resolveRetryPolicy({ backoff: { jitter: Number.NaN } })).toThrowError(
      expect.objectContaining({ details: expect.objectContaining({ field: 'backoff.jitter' }) }),
    );
  });
});

describe('retryDelay', () => {
  it('doubles the backoff from initialMs up to maxMs, the jittered part drawn from random()', () => {
    // d = min(250, 100 * 2^(n-1)) = 100, 200, 250; the wait is d/2 + u * d/2.
    expect(retryDelay(policy, { attempt: 1, retryable: true }, () => 0)).toEqual({ delayMs: 50, retryAfter: false });
    expect(retryDelay(policy, { attempt: 2, retryable: true }, () => 0.5)).toEqual({ delayMs: 150, retryAfter: false });
    expect(retryDelay(policy, { attempt: 3, retryable: true }, () => 0.2)).toEqual({ delayMs: 150, retryAfter: false });
    expect(retryDelay({ ...policy, jitter: 0 }, { attempt: 3, retryable: true }, () => 0.9)).toEqual({ delayMs: 250, retryAfter: false });
  });

  it('honours Retry-After without jitter, cut to maxRetryAfterMs', () => {
    expect(retryDelay(policy, { attempt: 1, retryable: true, retryAfterMs: 7000 }, never)).toEqual({ delayMs: 5000, retryAfter: true });
    expect(retryDelay(policy, { attempt: 2, retryable: true, retryAfterMs: 0 }, never)).toEqual({ delayMs: 0, retryAfter: true });
  });

  it('gives up on failures that are not retryable and after maxRetries retries', () => {
    expect(retryDelay(policy, { attempt: 1, retryable: false, retryAfterMs: 10 }, never)).toBeUndefined();
    expect(retryDelay(policy, { attempt: 3, retryable: true }, () => 0)).toEqual({ delayMs: 125, retryAfter: false });
    expect(retryDelay(policy, { attempt: 4, retryable: true, retryAfterMs: 10 }, never)).toBeUndefined();
  });

  it('retries 408, 409, 425, 429 and 5xx only', () => {
    expect([400, 401, 404, 408, 409, 422, 425, 429, 500, 503, 599].filter(isRetryableStatus)).toEqual([408, 409, 425, 429, 500, 503, 599]);
  });
});
