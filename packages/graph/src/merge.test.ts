import { describe, expect, it } from 'vitest';
import { createTensor, isVlitError } from '@vlit/core';
import { createGraph, decodeModel, encodeModel, inferShapes, listInputs, listNodes, listOutputs, mergeModels, type OnnxModel } from './index.js';
import { thrown } from './testing/helpers.js';

function encoder(): OnnxModel {
  const g = createGraph({ name: 'enc' });
  const x = g.input('pixels', 'float32', ['n', 16]);
  const w = g.initializer('w', createTensor('float32', [16, 8]));
  const h = g.matMul(x, w, { output: 'h' });
  g.output(g.relu(h), 'features');
  g.output(h, 'pre');
  return g.toModel();
}

function projector(dim = 8): OnnxModel {
  const g = createGraph({ name: 'proj' });
  const f = g.input('features', 'float32', ['n', dim]);
  const m = g.input('mask', 'float32', ['n', 1]);
  const w = g.initializer('w', createTensor('float32', [dim, 4]));
  g.output(g.mul(g.matMul(f, w), m), 'embeds');
  return g.toModel();
}

describe('mergeModels', () => {
  it("feeds b's input from a's output and prefixes everything else", () => {
    const a = encoder();
    const b = projector();
    const before = encodeModel(b);
    const m = mergeModels(a, b, { connect: [['features', 'features']] });
    expect(listInputs(m).map((v) => v.name)).toEqual(['a/pixels', 'b/mask']);
    expect(listOutputs(m).map((v) => [v.name, v.dims])).toEqual([
      ['a/pre', ['n', 8]],
      ['b/embeds', ['n', 4]],
    ]);
    // Both weights were named 'w'; prefixes keep them apart.
    expect(m.graph!.initializer.map((t) => t.name)).toEqual(['a/w', 'b/w']);
    const matmulB = listNodes(m).find((n) => n.opType === 'MatMul' && n.inputs[1] === 'b/w')!;
    expect(matmulB.inputs[0]).toBe('a/features');
    // The result is a valid model (every input defined before use), and inputs were not mutated.
    const back = decodeModel(encodeModel(m), { file: 'merged.onnx' });
    inferShapes(back, { strict: true });
    const embeds = back.graph!.output.find((o) => o.name === 'b/embeds')!;
    expect(embeds.type!.tensorType!.elemType).toBe(1);
    expect(encodeModel(b)).toEqual(before);
  });

  it('honours custom prefixes', () => {
    const m = mergeModels(encoder(), projector(), { prefixA: 'vision.', prefixB: 'connector.', connect: [['features', 'features']] });
    expect(listInputs(m).map((v) => v.name)).toEqual(['vision.pixels', 'connector.mask']);
  });

  it('rejects a shape mismatch naming both sides', () => {
    const err = thrown(() => mergeModels(encoder(), projector(6), { connect: [['features', 'features']] })) as Error;
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    expect(err.message).toContain('a.features float32[n, 8]');
    expect(err.message).toContain('b.features float32[n, 6]');
  });

  it('rejects a dtype mismatch, unknown names and equal prefixes', () => {
    const g = createGraph({ name: 'half' });
    g.output(g.identity(g.input('features', 'float16', ['n', 8])), 'o');
    const err = thrown(() => mergeModels(encoder(), g.toModel(), { connect: [['features', 'features']] })) as Error;
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    expect(err.message).toMatch(/element types differ/);
    expect(
      isVlitError(
        thrown(() => mergeModels(encoder(), projector(), { connect: [['nope', 'features']] })),
        'VLIT_NOT_FOUND',
      ),
    ).toBe(true);
    expect(
      isVlitError(
        thrown(() => mergeModels(encoder(), projector(), { connect: [['features', 'nope']] })),
        'VLIT_NOT_FOUND',
      ),
    ).toBe(true);
    const same = thrown(() => mergeModels(encoder(), projector(), { prefixA: 'x', prefixB: 'x', connect: [] }));
    expect(isVlitError(same, 'VLIT_INVALID_ARGUMENT')).toBe(true);
  });

  it('refuses to mix opset versions', () => {
    const old = createGraph({ name: 'old', opset: 13 });
    old.output(old.identity(old.input('features', 'float32', ['n', 8])), 'o');
    expect(
      isVlitError(
        thrown(() => mergeModels(encoder(), old.toModel(), { connect: [['features', 'features']] })),
        'VLIT_COMPATIBILITY',
      ),
    ).toBe(true);
  });
});
