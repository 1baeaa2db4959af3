/** How {@link maxAbsDiff} reports a NaN difference. */
export interface MaxAbsDiffOptions {
  /**
   * 'infinity' (default): a NaN counts as an infinite difference, so it fails every `<=` check and
   * passes every `>` check. 'propagate': the result is NaN, so it fails `>` checks as well (for
   * assertions that two outputs differ).
   */
  nan?: 'infinity' | 'propagate';
}

/** Largest absolute elementwise difference; Infinity when lengths differ, and for a NaN (see options). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, options: MaxAbsDiffOptions = {}): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return options.nan === 'propagate' ? NaN : Infinity;
    if (d > m) m = d;
  }
  return m;
}
