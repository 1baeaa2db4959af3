/**
 * Global-norm gradient clipping as torch.nn.utils.clip_grad_norm_ (torch 2.13): the total norm is the
 * norm of the per-tensor norms, and every gradient is multiplied by min(max_norm / (total + 1e-6), 1)
 * in float32, also when that factor is 1 (as torch does).
 */
import { InvalidArgumentError, ValidationError } from '@vlit/core';
import type { Gradients } from './adamw.js';

/** Options of clipGradNorm. */
export interface ClipGradNormOptions {
  /** Largest allowed total norm. */
  maxNorm: number;
  /** Norm order: 2 (default), 1 or Infinity. */
  normType?: number;
  /** Throw a ValidationError (field `gradients`) when the total norm is NaN or infinite. Default false, as torch. */
  errorIfNonfinite?: boolean;
}

const f = Math.fround;

function tensorNorm(g: Float32Array, p: number): number {
  if (p === Infinity) {
    let m = 0;
    for (let i = 0; i < g.length; i++) {
      const a = Math.abs(g[i]);
      if (a > m || Number.isNaN(a)) m = a;
    }
    return m;
  }
  let s = 0;
  for (let i = 0; i < g.length; i++) s += Math.abs(g[i]) ** p;
  return f(s ** (1 / p));
}

/** The global norm of the gradients (torch's `_get_total_norm`), in float32. */
export function totalGradNorm(grads: Gradients, normType = 2): number {
  if (!(normType === Infinity || (Number.isFinite(normType) && normType > 0))) {
    throw new InvalidArgumentError(`normType must be > 0 or Infinity, got ${normType}`, { details: { field: 'normType' } });
  }
  const list = grads instanceof Map ? [...grads.values()] : Object.values(grads);
  const norms = list.map((g) => tensorNorm(g, normType));
  if (normType === Infinity) return norms.reduce((a, b) => (b > a || Number.isNaN(b) ? b : a), 0);
  let s = 0;
  for (const n of norms) s += n ** normType;
  return f(s ** (1 / normType));
}

/** Scale the gradients in place so their global norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(grads: Gradients, options: ClipGradNormOptions): number {
  const { maxNorm, normType = 2 } = options;
  if (!(maxNorm >= 0) || !Number.isFinite(maxNorm)) {
    throw new InvalidArgumentError(`maxNorm must be a finite number >= 0, got ${maxNorm}`, { details: { field: 'maxNorm' } });
  }
  const total = totalGradNorm(grads, normType);
  if (options.errorIfNonfinite && !Number.isFinite(total)) {
    throw new ValidationError(`the total gradient norm is ${total}`, { details: { field: 'gradients', norm: String(total) } });
  }
  const coef = Math.min(f(f(maxNorm) / f(total + f(1e-6))), 1);
  const list = grads instanceof Map ? [...grads.values()] : Object.values(grads);
  for (const g of list) for (let i = 0; i < g.length; i++) g[i] = g[i] * coef;
  return total;
}
