/**
 * Test helpers shared by @vlit/graph's tests (never imported by library code): catching the error a
 * call throws, and deterministic weights for the small models the tests build.
 */
import { createTensor, isVlitError, type Tensor, type VlitError } from '@vlit/core';

/** The error `fn` throws; fails the test when it returns instead. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

/** The typed Vlit error `fn` throws; rethrows any other error and fails the test when it returns instead. */
export function thrownVlitError(fn: () => unknown): VlitError {
  const err = thrown(fn);
  if (isVlitError(err)) return err;
  throw err;
}

/** A float32 tensor of `dims` holding i / divisor at row-major index i (0, 1/divisor, 2/divisor, ...). */
export function rampTensor(dims: number[], divisor: number): Tensor<'float32'> {
  const size = dims.reduce((a, d) => a * d, 1);
  return createTensor(
    'float32',
    dims,
    Float32Array.from({ length: size }, (_, i) => i / divisor),
  );
}
