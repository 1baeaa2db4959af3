import { describe, expect, it } from 'vitest';
import { createRng } from './rng.js';
import { seededTensors } from './seeded-tensors.js';
import { sameDims } from './tensor.js';

describe('seededTensors', () => {
  it('draws each tensor from its own forked stream, so adding a tensor leaves the others unchanged', () => {
    const one = seededTensors({ a: [2, 3] }, 7, () => ({ std: 0.5 }));
    const two = seededTensors({ b: [4], a: [2, 3] }, 7, () => ({ std: 0.5 }));
    expect(Array.from(two.a.data)).toEqual(Array.from(one.a.data));
    // The same draw by hand: the root stream forked by the name, N(0, 0.5²) into float32.
    const expected = createRng(7).fork('a').fillNormal(new Float32Array(6), 0.5);
    expect(Array.from(one.a.data)).toEqual(Array.from(expected));
    expect(one.a.dims).toEqual([2, 3]);
  });

  it('fills constants, passes mean to the draw and adds offset after the float32 draw', () => {
    const t = seededTensors({ c: [3], n: [3], o: [3] }, 'x', (name) =>
      name === 'c' ? { constant: 1 } : name === 'n' ? { std: 0.1, mean: 1 } : { std: 0.1, offset: 1 },
    );
    expect(Array.from(t.c.data)).toEqual([1, 1, 1]);
    const draw = (name: string, mean: number): Float32Array => createRng('x').fork(name).fillNormal(new Float32Array(3), 0.1, mean);
    expect(Array.from(t.n.data)).toEqual(Array.from(draw('n', 1)));
    const shifted = draw('o', 0).map((v) => v + 1);
    expect(Array.from(t.o.data)).toEqual(Array.from(shifted));
  });
});

describe('sameDims', () => {
  it('compares rank and every axis', () => {
    expect(sameDims([2, 3], [2, 3])).toBe(true);
    expect(sameDims([2, 3], [3, 2])).toBe(false);
    expect(sameDims([2, 3], [2, 3, 1])).toBe(false);
    expect(sameDims([], [])).toBe(true);
  });
});
