// Runtime-free checks of the autodiff API: typed errors, graph surgery, the shape of the emitted model.
// The numerical checks (finite differences, torch parity) run on onnxruntime in packages/conformance.
import { describe, expect, it } from 'vitest';
import { createTensor } from '@vlit/core';
import {
  addMaskedCrossEntropy,
  buildGradientModel,
  createGraph,
  decodeModel,
  differentiableOps,
  editModel,
  encodeModel,
  getInitializer,
  listInitializers,
  listInputs,
  listNodes,
  listOutputs,
  promoteInitializers,
  pruneModel,
  validateModel,
  type OnnxModel,
} from '../index.js';
import { rampTensor, thrownVlitError } from '../testing/helpers.js';

/** x [n, 4] -> tanh(x W + b) -> loss = ReduceSum; also an unrelated output and an unused initializer. */
function small(): OnnxModel {
  const g = createGraph({ name: 'small', opset: 20 });
  const x = g.input('x', 'float32', ['n', 4]);
  const w = g.initializer('w', rampTensor([4, 3], 10));
  const b = g.initializer('b', createTensor('float32', [3], [1, 2, 3]));
  g.initializer('unused', createTensor('float32', [2], [0, 0]));
  const h = g.tanh(g.add(g.matMul(x, w), b), { output: 'h' });
  g.output(g.op('ReduceSum', [h], { keepdims: 0 }, { outputs: ['loss'] })[0]);
  g.output(g.exp(x), 'side');
  return g.toModel();
}

describe('buildGradientModel', () => {
  it('outputs the loss and grad.<name> for each wrt value, with the forward dtypes and dims, and validates', () => {
    const m = buildGradientModel(small(), { loss: 'loss', wrt: ['w', 'b', 'x'] });
    expect(listOutputs(m).map((o) => [o.name, o.dtype, o.dims])).toEqual([
      ['loss', 'float32', []],
      ['grad.w', 'float32', [4, 3]],
      ['grad.b', 'float32', [3]],
      ['grad.x', 'float32', ['n', 4]],
    ]);
    // The 'side' output and its Exp node are pruned, and so is the unused initializer.
    expect(listNodes(m).some((n) => n.opType === 'Exp')).toBe(false);
    expect(listInitializers(m).map((t) => t.name)).not.toContain('unused');
    expect(() => decodeModel(encodeModel(m))).not.toThrow();
    validateModel(m);
  });

  it('keeps requested forward values and names gradients as asked', () => {
    const m = buildGradientModel(small(), { loss: 'loss', wrt: ['w'], keep: ['h'], gradientName: (n) => `d_${n}` });
    expect(listOutputs(m).map((o) => o.name)).toEqual(['loss', 'h', 'd_w']);
  });

  it('does not modify the forward model', () => {
    const f = small();
    const before = encodeModel(f);
    buildGradientModel(f, { loss: 'loss', wrt: ['w'] });
    expect(encodeModel(f)).toEqual(before);
  });

  it('differentiates no node off the path: RoPE-style Cos/Sin of positions and integer Shape/Range need no rule', () => {
    const g = createGraph({ name: 'rope', opset: 20 });
    const x = g.input('x', 'float32', ['n', 4]);
    const n = g.op('Squeeze', [g.shape(x, { start: 0, end: 1 }), g.constant(createTensor('int64', [1], [0n]))]);
    const pos = g.cast(g.op('Range', [g.constant(createTensor('int64', [], [0n])), n, g.constant(createTensor('int64', [], [1n]))]), 'float32');
    const angle = g.op('Cos', [g.op('Floor', [g.unsqueeze(pos, [1])])]);
    const w = g.initializer('w', createTensor('float32', [4], [1, 2, 3, 4]));
    g.output(g.op('ReduceSum', [g.mul(g.mul(x, w), angle)], { keepdims: 0 }), 'loss');
    const m = buildGradientModel(g.toModel(), { loss: 'loss', wrt: ['w'] });
    expect(listOutputs(m).map((o) => o.name)).toEqual(['loss', 'grad.w']);
  });

  it('an op on the gradient path without a rule is an UnsupportedError naming the op type and the node', () => {
    const g = createGraph({ name: 'bad', opset: 20 });
    const x = g.input('x', 'float32', [2, 3]);
    const w = g.initializer('w', createTensor('float32', [3], [1, 2, 3]));
    const y = g.mul(g.op('Floor', [x], {}, { name: 'my_floor' }), w);
    g.output(g.op('ReduceSum', [y], { keepdims: 0 }), 'loss');
    const err = thrownVlitError(() => buildGradientModel(g.toModel(), { loss: 'loss', wrt: ['x'] }));
    expect(err.code).toBe('VLIT_UNSUPPORTED');
    expect(err.message).toContain('Floor');
    expect(err.message).toContain("'my_floor'");
    expect(err.details).toMatchObject({ op: 'Floor', node: 'my_floor', field: 'my_floor' });
    // The same node off the path (w does not flow through it) needs no rule.
    expect(listOutputs(buildGradientModel(g.toModel(), { loss: 'loss', wrt: ['w'] })).map((o) => o.name)).toEqual(['loss', 'grad.w']);
  });

  it('a Conv outside the patch-embedding case is an UnsupportedError that says which case is supported', () => {
    const g = createGraph({ name: 'conv', opset: 20 });
    const x = g.input('x', 'float32', [1, 3, 8, 8]);
    const w = g.initializer('w', createTensor('float32', [4, 3, 3, 3]));
    g.output(g.op('ReduceSum', [g.conv(x, w, null, { strides: [1, 1], pads: [1, 1, 1, 1], name: 'conv3x3' })], { keepdims: 0 }), 'loss');
    const err = thrownVlitError(() => buildGradientModel(g.toModel(), { loss: 'loss', wrt: ['w'] }));
    expect(err.code).toBe('VLIT_UNSUPPORTED');
    expect(err.message).toContain("Conv node 'conv3x3'");
    expect(err.message).toContain('patch-embedding');
    expect(err.message).toContain('stride == kernel');
  });

  it('rejects a non-scalar loss, a missing name, a non-float wrt and an empty wrt with typed errors', () => {
    const m = small();
    expect(thrownVlitError(() => buildGradientModel(m, { loss: 'h', wrt: ['w'] })).code).toBe('VLIT_INVALID_ARGUMENT');
    expect(thrownVlitError(() => buildGradientModel(m, { loss: 'nope', wrt: ['w'] })).code).toBe('VLIT_NOT_FOUND');
    expect(thrownVlitError(() => buildGradientModel(m, { loss: 'loss', wrt: ['nope'] })).code).toBe('VLIT_NOT_FOUND');
    expect(thrownVlitError(() => buildGradientModel(m, { loss: 'loss', wrt: [] })).code).toBe('VLIT_INVALID_ARGUMENT');
    const g = createGraph({ name: 'ids', opset: 20 });
    const ids = g.input('ids', 'int64', [3]);
    const table = g.initializer('table', createTensor('float32', [5, 2]));
    g.output(g.op('ReduceSum', [g.gather(table, ids)], { keepdims: 0 }), 'loss');
    const err = thrownVlitError(() => buildGradientModel(g.toModel(), { loss: 'loss', wrt: ['ids'] }));
    expect(err.code).toBe('VLIT_INVALID_ARGUMENT');
    expect(err.details.name).toBe('ids');
  });

  it('covers every op the Vlit graphs differentiate through', () => {
    const ops = differentiableOps();
    for (const op of [
      'Add',
      'Sub',
      'Mul',
      'Div',
      'Neg',
      'Sqrt',
      'Sigmoid',
      'Gelu',
      'MatMul',
      'Transpose',
      'Reshape',
      'Unsqueeze',
      'Squeeze',
      'Slice',
      'Concat',
      'Expand',
      'ReduceMean',
      'ReduceSum',
      'Softmax',
      'LayerNormalization',
      'Conv',
      'AveragePool',
      'Gather',
      'Identity',
      'Cast',
      'Pow',
      'Tanh',
      'Exp',
      'Log',
      'Where',
      'LogSoftmax',
    ]) {
      expect(ops, op).toContain(op);
    }
  });
});

describe('graph surgery', () => {
  it('promoteInitializers turns weights into inputs and returns their exact values', () => {
    const { model, values } = promoteInitializers(small(), ['w']);
    expect(listInputs(model).map((v) => [v.name, v.dtype, v.dims])).toEqual([
      ['x', 'float32', ['n', 4]],
      ['w', 'float32', [4, 3]],
    ]);
    expect(listInitializers(model).map((t) => t.name)).toEqual(['b', 'unused']);
    expect(Array.from(values.w.data as Float32Array)).toEqual(Array.from(Float32Array.from({ length: 12 }, (_, i) => i / 10)));
    expect(thrownVlitError(() => promoteInitializers(small(), ['nope'])).code).toBe('VLIT_NOT_FOUND');
  });

  it('pruneModel keeps only what the chosen outputs need', () => {
    const m = pruneModel(small(), { outputs: ['side'] });
    expect(listOutputs(m).map((o) => o.name)).toEqual(['side']);
    expect(listNodes(m).map((n) => n.opType)).toEqual(['Exp', 'Identity']);
    expect(listInitializers(m)).toEqual([]);
    expect(listInputs(m).map((v) => v.name)).toEqual(['x']);
    const p = pruneModel(promoteInitializers(small(), ['w']).model, { outputs: ['side'], dropUnusedInputs: true });
    expect(listInputs(p).map((v) => v.name)).toEqual(['x']);
    expect(thrownVlitError(() => pruneModel(small(), { outputs: ['h'] })).code).toBe('VLIT_NOT_FOUND');
  });

  it('editModel extends a copy with typed nodes and outputs, leaving the original alone', () => {
    const f = small();
    const e = editModel(f);
    const doubled = e.op('Mul', ['h', e.initializer('two', createTensor('float32', [], [2]))]);
    expect(doubled.dims).toEqual(['n', 3]);
    e.output(doubled, 'doubled');
    const m = e.toModel();
    expect(listOutputs(m).map((o) => [o.name, o.dims])).toEqual([
      ['loss', []],
      ['side', ['n', 4]],
      ['doubled', ['n', 3]],
    ]);
    expect(Array.from(getInitializer(m, 'two').data as Float32Array)).toEqual([2]);
    expect(listOutputs(f).map((o) => o.name)).toEqual(['loss', 'side']);
    expect(thrownVlitError(() => e.op('Add', ['nope', 'h'])).code).toBe('VLIT_NOT_FOUND');
  });
});

describe('addMaskedCrossEntropy', () => {
  it('builds a scalar loss from logits [B, S, V] and int64 labels [B, S] on both the builder and the editor', () => {
    const g = createGraph({ name: 'ce', opset: 20 });
    const logits = g.input('logits', 'float32', ['batch', 'seq', 7]);
    const labels = g.input('labels', 'int64', ['batch', 'seq']);
    const loss = addMaskedCrossEntropy(g, logits, labels, { name: 'loss' });
    expect([loss.name, loss.dtype, loss.dims]).toEqual(['loss', 'float32', []]);
    g.output(loss);
    const m = buildGradientModel(g.toModel(), { loss: 'loss', wrt: ['logits'] });
    expect(listOutputs(m).map((o) => [o.name, o.dims])).toEqual([
      ['loss', []],
      ['grad.logits', ['batch', 'seq', 7]],
    ]);
    const e = editModel(small());
    const ce = addMaskedCrossEntropy(e, 'h', e.op('Cast', [e.op('Shape', ['h'])], { to: 7 }), { shift: false });
    expect(ce.dims).toEqual([]);
    expect(thrownVlitError(() => addMaskedCrossEntropy(g, logits, logits)).code).toBe('VLIT_INVALID_ARGUMENT');
  });
});
