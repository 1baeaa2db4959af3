import { describe, expect, it } from 'vitest';
import { createTensor, isVlitError } from '@vlit/core';
import { createGraph, type GraphBuilder, type Value } from './index.js';
import { thrown } from './testing/helpers.js';

const f32 = (dims: number[]) => createTensor('float32', dims);
const dimsOf = (v: Value) => [...v.dims];

function graph(opset = 20): GraphBuilder {
  return createGraph({ name: 'g', opset });
}

describe('broadcasting (ONNX multidirectional)', () => {
  it('follows the numpy examples of the ONNX Broadcasting doc', () => {
    const g = graph();
    // Shapes and results copied from onnx/docs/Broadcasting.md.
    const cases: [number[], number[], number[]][] = [
      [[2, 3, 4, 5], [], [2, 3, 4, 5]],
      [[2, 3, 4, 5], [5], [2, 3, 4, 5]],
      [
        [4, 5],
        [2, 3, 4, 5],
        [2, 3, 4, 5],
      ],
      [
        [1, 4, 5],
        [2, 3, 1, 1],
        [2, 3, 4, 5],
      ],
      [
        [3, 4, 5],
        [2, 1, 1, 1],
        [2, 3, 4, 5],
      ],
    ];
    cases.forEach(([a, b, out], i) => {
      const x = g.input(`a${i}`, 'float32', a);
      const y = g.input(`b${i}`, 'float32', b);
      expect(dimsOf(g.add(x, y))).toEqual(out);
      expect(dimsOf(g.mul(y, x))).toEqual(out);
    });
  });

  it('keeps symbolic dims and lets a number win over a symbol', () => {
    const g = graph();
    const x = g.input('x', 'float32', ['batch', 'seq', 64]);
    const y = g.input('y', 'float32', [1, 'seq', 1]);
    expect(dimsOf(g.sub(x, y))).toEqual(['batch', 'seq', 64]);
    const z = g.input('z', 'float32', ['n', 8]);
    const w = g.input('w', 'float32', [3, 1]);
    expect(dimsOf(g.div(z, w))).toEqual([3, 8]);
    const u = g.input('u', 'float32', ['p']);
    const v = g.input('v', 'float32', ['q']);
    expect(dimsOf(g.add(u, v))).toEqual([null]);
  });

  it('rejects incompatible shapes with a TensorShapeError naming the node', () => {
    const g = graph();
    const x = g.input('x', 'float32', [2, 3]);
    const y = g.input('y', 'float32', [4]);
    const err = thrown(() => g.add(x, y, { name: 'bad_add' }));
    expect(isVlitError(err, 'VLIT_TENSOR_SHAPE')).toBe(true);
    expect((err as Error).message).toContain('bad_add');
  });

  it('turns numeric operands into scalar constants of the other dtype', () => {
    const g = graph();
    const x = g.input('x', 'float16', [2]);
    const y = g.mul(x, 0.5);
    expect(y.dtype).toBe('float16');
    const model = g.output(y) && g.toModel();
    const c = model.graph!.initializer.find((t) => t.name === model.graph!.node[0].input[1])!;
    expect(c.dataType).toBe(10);
    // 0.5 in IEEE half precision is 0x3800, stored little-endian.
    expect([...c.rawData]).toEqual([0x00, 0x38]);
  });
});

describe('matrix ops', () => {
  it('MatMul follows numpy.matmul incl. 1-D and batch broadcasting', () => {
    const g = graph();
    const a = g.input('a', 'float32', ['b', 1, 5, 7]);
    const b = g.input('b', 'float32', [3, 7, 2]);
    expect(dimsOf(g.matMul(a, b))).toEqual(['b', 3, 5, 2]);
    const v = g.input('v', 'float32', [7]);
    expect(dimsOf(g.matMul(v, b))).toEqual([3, 2]);
    const m = g.input('m', 'float32', [4, 7]);
    expect(dimsOf(g.matMul(m, v))).toEqual([4]);
  });

  it('MatMul inner-dim mismatch names the node and both shapes', () => {
    const g = graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [4, 5]);
    const err = thrown(() => g.matMul(a, b, { name: 'proj' })) as Error;
    expect(isVlitError(err, 'VLIT_TENSOR_SHAPE')).toBe(true);
    expect(err.message).toContain('proj');
    expect(err.message).toContain('[2, 3]');
    expect(err.message).toContain('[4, 5]');
  });

  it('Gemm honours transA/transB', () => {
    const g = graph();
    const a = g.input('a', 'float32', [6, 4]);
    const b = g.input('b', 'float32', [5, 6]);
    const c = g.initializer('c', f32([5]));
    expect(dimsOf(g.gemm(a, b, c, { transA: true, transB: true, alpha: 1 }))).toEqual([4, 5]);
    expect(() => g.gemm(a, b)).toThrow(/inner dims/);
    const model = g.output(g.gemm(a, b, null, { transA: true, transB: true, alpha: 2 })) && g.toModel();
    const alpha = model.graph!.node.find((n) => n.attribute.some((x) => x.name === 'alpha'))!.attribute.find((x) => x.name === 'alpha')!;
    // A whole alpha must still be a FLOAT attribute (type 1), or runtimes reject the node.
    expect(alpha.type).toBe(1);
  });
});

describe('elementwise and normalisation ops', () => {
  it('unary ops keep dtype and dims', () => {
    const g = graph();
    const x = g.input('x', 'float32', ['n', 16]);
    for (const f of [g.relu, g.sigmoid, g.tanh, g.erf, g.sqrt, g.exp, g.neg, g.identity]) {
      const y = f(x);
      expect(y.dtype).toBe('float32');
      expect(dimsOf(y)).toEqual(['n', 16]);
    }
    const gelu = g.gelu(x, { approximate: 'tanh' });
    expect(dimsOf(gelu)).toEqual(['n', 16]);
    expect(dimsOf(g.softmax(x, { axis: 1 }))).toEqual(['n', 16]);
    expect(dimsOf(g.pow(x, 2))).toEqual(['n', 16]);
    expect(() => g.softmax(x, { axis: 2 })).toThrow(/axis 2/);
  });

  it('Gelu needs opset 20', () => {
    const g = graph(17);
    const x = g.input('x', 'float32', [2]);
    expect(
      isVlitError(
        thrown(() => g.gelu(x)),
        'VLIT_UNSUPPORTED',
      ),
    ).toBe(true);
  });

  it('LayerNormalization with stash outputs reduces from axis on', () => {
    const g = graph();
    const x = g.input('x', 'float32', ['b', 10, 32]);
    const s = g.initializer('s', f32([32]));
    expect(dimsOf(g.layerNormalization(x, s, null, { epsilon: 1e-6 }))).toEqual(['b', 10, 32]);
    const [y, mean, inv] = g.op('LayerNormalization', [x, s], { axis: 1 }, { outputs: 3 });
    expect(dimsOf(y)).toEqual(['b', 10, 32]);
    expect(dimsOf(mean)).toEqual(['b', 1, 1]);
    expect(inv.dtype).toBe('float32');
  });

  it('ReduceMean uses an axes input at opset 18+ and an attribute before', () => {
    const g = graph(20);
    const x = g.input('x', 'float32', [2, 3, 4]);
    expect(dimsOf(g.reduceMean(x, [-1]))).toEqual([2, 3, 1]);
    expect(dimsOf(g.reduceMean(x, [0, 2], { keepdims: false }))).toEqual([3]);
    const m = g.output(g.reduceMean(x, [1], { output: 'r' })) && g.toModel();
    const node = m.graph!.node.find((n) => n.output[0] === 'r')!;
    expect(node.input.length).toBe(2);
    const g13 = graph(13);
    const y = g13.input('y', 'float32', [2, 3, 4]);
    const r = g13.reduceMean(y, [1]);
    expect(dimsOf(r)).toEqual([2, 1, 4]);
    g13.output(r);
    const n13 = g13.toModel().graph!.node[0];
    expect(n13.input.length).toBe(1);
    expect(n13.attribute.find((a) => a.name === 'axes')!.ints.map(Number)).toEqual([1]);
  });

  it('Where, Equal and Cast type their outputs', () => {
    const g = graph();
    const a = g.input('a', 'int64', ['n', 1]);
    const b = g.input('b', 'int64', [4]);
    const eq = g.equal(a, b);
    expect(eq.dtype).toBe('bool');
    expect(dimsOf(eq)).toEqual(['n', 4]);
    const x = g.input('x', 'float32', [4]);
    const w = g.where(eq, x, 0);
    expect(w.dtype).toBe('float32');
    expect(dimsOf(w)).toEqual(['n', 4]);
    const c = g.cast(a, 'float16');
    expect(c.dtype).toBe('float16');
    expect(dimsOf(c)).toEqual(['n', 1]);
  });
});

describe('Conv', () => {
  it('computes output spatial dims from pads, strides and dilations', () => {
    const g = graph();
    const x = g.input('x', 'float32', ['n', 3, 224, 224]);
    const w = g.initializer('w', f32([64, 3, 7, 7]));
    const b = g.initializer('b', f32([64]));
    // floor((224 + 3 + 3 - 7) / 2) + 1 = 112
    expect(dimsOf(g.conv(x, w, b, { strides: [2, 2], pads: [3, 3, 3, 3] }))).toEqual(['n', 64, 112, 112]);
    // ViT patch embedding: 224 / 16 = 14
    const p = g.initializer('p', f32([192, 3, 16, 16]));
    expect(dimsOf(g.conv(x, p, null, { strides: [16, 16], kernelShape: [16, 16] }))).toEqual(['n', 192, 14, 14]);
    // dilation 2: effective kernel 5 -> 224 - 5 + 1 = 220
    const d = g.initializer('d', f32([8, 3, 3, 3]));
    expect(dimsOf(g.conv(x, d, null, { dilations: [2, 2] }))).toEqual(['n', 8, 220, 220]);
    // depthwise: group = channels
    const dw = g.initializer('dw', f32([3, 1, 3, 3]));
    expect(dimsOf(g.conv(x, dw, null, { group: 3, pads: [1, 1, 1, 1] }))).toEqual(['n', 3, 224, 224]);
  });

  it('rejects a channel mismatch', () => {
    const g = graph();
    const x = g.input('x', 'float32', [1, 4, 8, 8]);
    const w = g.initializer('w', f32([2, 3, 3, 3]));
    expect(() => g.conv(x, w)).toThrow(/4 channels/);
  });
});

describe('shape ops', () => {
  it('Reshape resolves 0 and -1, including symbolic dims', () => {
    const g = graph();
    const x = g.input('x', 'float32', ['b', 196, 768]);
    expect(dimsOf(g.reshape(x, [0, -1, 12, 64]))).toEqual(['b', 196, 12, 64]);
    expect(dimsOf(g.reshape(x, [0, -1]))).toEqual(['b', 150528]);
    const y = g.input('y', 'float32', [2, 3, 4]);
    expect(dimsOf(g.reshape(y, [4, -1]))).toEqual([4, 6]);
    expect(() => g.reshape(y, [5, 5])).toThrow(/24 elements/);
  });

  it('Reshape follows a shape computed with Shape/Gather/Concat', () => {
    const g = graph();
    const x = g.input('x', 'float32', ['b', 'n', 64]);
    const s = g.shape(x);
    expect(dimsOf(s)).toEqual([3]);
    expect(s.dtype).toBe('int64');
    const head = g.gather(s, [0, 1]);
    const target = g.concat([head, g.initializer('tail', createTensor('int64', [2], [8n, -1n]))], 0);
    // b*n*64 elements into [b, n, 8, -1]: -1 must be 8.
    expect(dimsOf(g.reshape(x, target))).toEqual(['b', 'n', 8, 8]);
    // [b, -1, 8] would need b*n*64/(b*8) = n*8, which no single dim names: unknown.
    const t2 = g.concat([g.gather(s, [0]), g.initializer('tail2', createTensor('int64', [2], [-1n, 8n]))], 0);
    expect(dimsOf(g.reshape(x, t2))).toEqual(['b', null, 8]);
  });

  it('Transpose, Concat, Split, Slice, Gather, Unsqueeze, Squeeze, Flatten, Expand', () => {
    const g = graph();
    const x = g.input('x', 'float32', ['b', 10, 20, 30]);
    expect(dimsOf(g.transpose(x, [0, 2, 3, 1]))).toEqual(['b', 20, 30, 10]);
    expect(dimsOf(g.transpose(x))).toEqual([30, 20, 10, 'b']);
    const y = g.input('y', 'float32', ['b', 5, 20, 30]);
    expect(dimsOf(g.concat([x, y], 1))).toEqual(['b', 15, 20, 30]);
    expect(() => g.concat([x, y], 2)).toThrow(/disagree/);
    expect(g.split(x, { axis: 1, sizes: [3, 7] }).map(dimsOf)).toEqual([
      ['b', 3, 20, 30],
      ['b', 7, 20, 30],
    ]);
    expect(g.split(x, { axis: 3, count: 4 }).map(dimsOf)).toEqual([
      ['b', 10, 20, 8],
      ['b', 10, 20, 8],
      ['b', 10, 20, 8],
      ['b', 10, 20, 6],
    ]);
    expect(() => g.split(x, { axis: 1, sizes: [3, 3] })).toThrow(/sum to 6/);
    expect(dimsOf(g.slice(x, { starts: [2], ends: [8], axes: [1] }))).toEqual(['b', 6, 20, 30]);
    expect(dimsOf(g.slice(x, { starts: [-5, 0], ends: [1000, 30], axes: [2, 3], steps: [1, 4] }))).toEqual(['b', 10, 5, 8]);
    expect(dimsOf(g.slice(x, { starts: [9], ends: [-11], axes: [1], steps: [-1] }))).toEqual(['b', 10, 20, 30]);
    const table = g.initializer('emb', f32([1000, 64]));
    const ids = g.input('ids', 'int64', ['b', 'seq']);
    expect(dimsOf(g.gather(table, ids))).toEqual(['b', 'seq', 64]);
    expect(dimsOf(g.gather(x, 3, { axis: 1 }))).toEqual(['b', 20, 30]);
    const u = g.unsqueeze(x, [0, -1]);
    expect(dimsOf(u)).toEqual([1, 'b', 10, 20, 30, 1]);
    expect(dimsOf(g.squeeze(u, [0, 5]))).toEqual(['b', 10, 20, 30]);
    expect(() => g.squeeze(x, [1])).toThrow(/not 1/);
    expect(dimsOf(g.flatten(x))).toEqual(['b', 6000]);
    expect(dimsOf(g.flatten(x, { axis: 0 }))).toEqual([1, null]);
    const z = g.input('z', 'float32', [1, 'n']);
    expect(dimsOf(g.expand(z, [4, 1]))).toEqual([4, 'n']);
  });

  it('Constant carries its tensor type', () => {
    const g = graph();
    const c = g.constant(createTensor('int32', [2, 2], [1, 2, 3, 4]));
    expect(c.dtype).toBe('int32');
    expect(dimsOf(c)).toEqual([2, 2]);
  });

  it('uses attribute forms for old opsets', () => {
    const g = graph(11);
    const x = g.input('x', 'float32', [1, 4, 1]);
    const s = g.squeeze(x, [0, 2]);
    const u = g.unsqueeze(s, [1]);
    const parts = g.split(u, { axis: 0, sizes: [1, 3] });
    expect(dimsOf(s)).toEqual([4]);
    expect(dimsOf(u)).toEqual([4, 1]);
    expect(parts.map(dimsOf)).toEqual([
      [1, 1],
      [3, 1],
    ]);
    g.output(parts[0]);
    const nodes = g.toModel().graph!.node;
    expect(nodes.every((n) => n.input.length === 1)).toBe(true);
  });
});

describe('generic op and graph assembly', () => {
  it('refuses ops without a rule unless output types are given', () => {
    const g = createGraph({ name: 'g', domains: { 'com.microsoft': 1 } });
    const x = g.input('x', 'float32', ['n', 8]);
    expect(
      isVlitError(
        thrown(() => g.op('FastGelu', [x], {}, { domain: 'com.microsoft' })),
        'VLIT_UNSUPPORTED',
      ),
    ).toBe(true);
    const y = g.op('FastGelu', [x], {}, { domain: 'com.microsoft', outputTypes: [{ dtype: 'float32', dims: ['n', 8] }] });
    expect(dimsOf(y)).toEqual(['n', 8]);
    g.output(y, 'out');
    const m = g.toModel();
    expect(m.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([
      ['', 20],
      ['com.microsoft', 1],
    ]);
  });

  it('output renames through Identity and records types', () => {
    const g = graph();
    const x = g.input('x', 'float32', ['n', 2]);
    const y = g.relu(x);
    const out = g.output(y, 'logits');
    expect(out.name).toBe('logits');
    const m = g.toModel();
    expect(m.graph!.output.map((o) => o.name)).toEqual(['logits']);
    expect(m.graph!.node.map((n) => n.opType)).toEqual(['Relu', 'Identity']);
    expect(m.graph!.valueInfo.map((v) => v.name)).toEqual([y.name]);
    expect(() => g.output(y, 'logits')).toThrow();
  });

  it('rejects unknown inputs and duplicate names', () => {
    const g = graph();
    g.input('x', 'float32', [1]);
    expect(
      isVlitError(
        thrown(() => g.relu('nope')),
        'VLIT_NOT_FOUND',
      ),
    ).toBe(true);
    expect(
      isVlitError(
        thrown(() => g.input('x', 'float32', [1])),
        'VLIT_INVALID_ARGUMENT',
      ),
    ).toBe(true);
    expect(() => g.toModel()).toThrow(/no outputs/);
  });

  it('op returns an array exactly when outputs is given', () => {
    const g = graph();
    const x = g.input('x', 'float32', [4, 6]);
    const single = g.op('Relu', [x]);
    expect(single.name).toBeTypeOf('string');
    const many = g.op('Split', [x], { axis: 1, num_outputs: 2 }, { outputs: ['l', 'r'] });
    expect(many.map((v) => [v.name, ...v.dims])).toEqual([
      ['l', 4, 3],
      ['r', 4, 3],
    ]);
  });
});
