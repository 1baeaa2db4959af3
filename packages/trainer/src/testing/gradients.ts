/**
 * Test helper: check a training session's gradients against central differences of its own loss, the
 * derivative's definition, at the largest-gradient entry and the middle entry of each named tensor.
 */
import type { Tensor } from '@vlit/core';
import { expect } from 'vitest';
import type { TrainingSession } from '../engine/session.js';

/** For each name: the gradient is non-trivial and (L(w + h e_i) - L(w - h e_i)) / 2h agrees within 2% (floor 2e-4). */
export async function expectCentralDifferences(
  session: TrainingSession,
  feeds: Readonly<Record<string, Tensor>>,
  values: ReadonlyMap<string, Float32Array>,
  names: readonly string[],
  h = 1e-2,
): Promise<void> {
  const exact = await session.step(feeds, values);
  const lossWith = async (name: string, i: number, delta: number): Promise<number> => {
    const changed = Float32Array.from(values.get(name) as Float32Array);
    changed[i] += delta;
    return (await session.step(feeds, new Map(values).set(name, changed))).loss;
  };
  for (const name of names) {
    const g = exact.gradients.get(name) as Float32Array;
    expect(g, name).toBeDefined();
    let top = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[top])) top = i;
    expect(Math.abs(g[top]), name).toBeGreaterThan(1e-4);
    for (const i of [top, Math.floor(g.length / 2)]) {
      const fd = ((await lossWith(name, i, h)) - (await lossWith(name, i, -h))) / (2 * h);
      expect(Math.abs(fd - g[i]), `${name}[${i}]`).toBeLessThan(2e-2 * Math.max(Math.abs(g[i]), 1e-2));
    }
  }
}
