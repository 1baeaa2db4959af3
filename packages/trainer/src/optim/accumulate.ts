/**
 * Gradient accumulation over micro-batches: gradients are summed in float32 and scaled once at the
 * end, by the number of micro-batches or by a caller's divisor (e.g. the trained-token count, so
 * micro-batches with different numbers of labels weigh as one big batch would).
 */
import { InvalidArgumentError, NotFoundError, TensorShapeError } from '@vlit/core';
import type { Gradients } from './adamw.js';

/** Sums gradients of several micro-batches. */
export interface GradientAccumulator {
  /** Micro-batches added since the last reset. */
  readonly count: number;
  /** Add one micro-batch's gradients (sizes are checked). */
  add(grads: Gradients): void;
  /** The sum divided by `divisor` (default: count), as new arrays. */
  result(divisor?: number): Map<string, Float32Array>;
  /** Zero the sums. */
  reset(): void;
}

/** Create an accumulator for parameters of the given sizes (element counts by name). */
export function createGradientAccumulator(sizes: ReadonlyMap<string, number> | Readonly<Record<string, number>>): GradientAccumulator {
  const entries = sizes instanceof Map ? [...sizes.entries()] : Object.entries(sizes);
  const sums = new Map<string, Float32Array>(entries.map(([name, n]) => [name, new Float32Array(n)]));
  let count = 0;
  return {
    get count() {
      return count;
    },
    add(grads) {
      const list = grads instanceof Map ? [...grads.entries()] : Object.entries(grads);
      for (const [name, g] of list) {
        const sum = sums.get(name);
        if (!sum) throw new NotFoundError(`gradient for unknown parameter '${name}'`, { details: { field: name } });
        if (g.length !== sum.length) {
          throw new TensorShapeError(`gradient of '${name}' has ${g.length} elements, expected ${sum.length}`, { details: { field: name } });
        }
      }
      for (const [name, g] of list) {
        const sum = sums.get(name) as Float32Array;
        for (let i = 0; i < g.length; i++) sum[i] += g[i];
      }
      count++;
    },
    result(divisor = count) {
      if (!(divisor > 0) || !Number.isFinite(divisor)) {
        throw new InvalidArgumentError(`divisor must be a finite number > 0, got ${divisor}`, { details: { field: 'divisor' } });
      }
      const out = new Map<string, Float32Array>();
      for (const [name, sum] of sums) {
        const g = new Float32Array(sum.length);
        for (let i = 0; i < sum.length; i++) g[i] = sum[i] / divisor;
        out.set(name, g);
      }
      return out;
    },
    reset() {
      for (const sum of sums.values()) sum.fill(0);
      count = 0;
    },
  };
}
