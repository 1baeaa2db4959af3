/**
 * Deterministic float32 weights from a seed, the way every Vlit component initialises its tensors: one
 * child stream per tensor name (`rng.fork(name)`), so adding a tensor never changes the others.
 */
import { createRng } from './rng.js';
import { createTensor, type Tensor } from './tensor.js';

/** How one seeded tensor starts: a constant, or normal noise N(mean, std²) with `offset` added after the float32 draw. */
export type SeededInit = { constant: number } | { std: number; mean?: number; offset?: number };

/** Float32 tensors of the given shapes from `seed`; `init` says how each one starts. */
export function seededTensors(
  shapes: Readonly<Record<string, readonly number[]>>,
  seed: number | string,
  init: (name: string, dims: readonly number[]) => SeededInit,
): Record<string, Tensor<'float32'>> {
  const rng = createRng(seed);
  const out: Record<string, Tensor<'float32'>> = {};
  for (const [name, dims] of Object.entries(shapes)) {
    const stream = rng.fork(name);
    const t = createTensor('float32', [...dims]);
    const how = init(name, dims);
    if ('constant' in how) t.data.fill(how.constant);
    else {
      stream.fillNormal(t.data, how.std, how.mean ?? 0);
      const offset = how.offset ?? 0;
      if (offset !== 0) for (let i = 0; i < t.data.length; i++) t.data[i] += offset;
    }
    out[name] = t;
  }
  return out;
}
