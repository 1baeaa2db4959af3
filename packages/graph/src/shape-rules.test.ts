import { describe, expect, it } from 'vitest';
import { getShapeRule, supportedOps, type RuleContext, type TypeInfo } from './index.js';

function run(opType: string, inputs: (TypeInfo | undefined)[], attrs: RuleContext['attrs'] = {}, opset = 20, outputCount = 1) {
  const rule = getShapeRule(opType)!;
  return rule({ opType, nodeName: 'n', opset, inputs, attrs, outputCount });
}
const f = (dims: TypeInfo['dims']): TypeInfo => ({ dtype: 'float32', dims });
const ints = (value: number[]): TypeInfo => ({ dtype: 'int64', dims: [value.length], value });

describe('rules checked against ONNX operator doc examples', () => {
  it('Slice (examples from the Slice spec)', () => {
    // data 2x4, axes [0,1], starts [1,0], ends [2,3], steps [1,2] -> [[5, 7]]
    expect(run('Slice', [f([2, 4]), ints([1, 0]), ints([2, 3]), ints([0, 1]), ints([1, 2])])[0]!.dims).toEqual([1, 2]);
    // starts [0,1], ends [-1,1000] -> [[2, 3, 4]]
    expect(run('Slice', [f([2, 4]), ints([0, 1]), ints([-1, 1000])])[0]!.dims).toEqual([1, 3]);
    // opset 9 keeps starts/ends/axes as attributes
    expect(run('Slice', [f([3, 10])], { starts: [1], ends: [2], axes: [0] }, 9)[0]!.dims).toEqual([1, 10]);
    // propagates the contents of a shape vector
    expect(run('Slice', [{ dtype: 'int64', dims: [4], value: ['n', 3, 48, 320] }, ints([1]), ints([3])])[0]!.value).toEqual([3, 48]);
  });

  it('pools: ceil_mode and auto_pad', () => {
    // 5x5 input, kernel 2, stride 2: floor -> 2, ceil -> 3
    expect(run('MaxPool', [f([1, 1, 5, 5])], { kernel_shape: [2, 2], strides: [2, 2] })[0]!.dims).toEqual([1, 1, 2, 2]);
    expect(run('MaxPool', [f([1, 1, 5, 5])], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 })[0]!.dims).toEqual([1, 1, 3, 3]);
    // SAME_UPPER: ceil(32 / 2) = 16, regardless of kernel
    expect(run('AveragePool', [f([1, 3, 32, 32])], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' })[0]!.dims).toEqual([1, 3, 16, 16]);
    expect(run('GlobalAveragePool', [f(['n', 8, 7, 7])])[0]!.dims).toEqual(['n', 8, 1, 1]);
  });

  it('reductions and arg ops', () => {
    expect(run('ReduceSum', [f([2, 3, 4]), ints([1])], { keepdims: 0 }, 13)[0]!.dims).toEqual([2, 4]);
    expect(run('ReduceMean', [f([2, 3, 4])], { axes: [1] }, 13)[0]!.dims).toEqual([2, 1, 4]);
    expect(run('ReduceMean', [f([2, 3, 4])], {}, 18)[0]!.dims).toEqual([1, 1, 1]);
    expect(run('ReduceMean', [f([2, 3, 4])], { noop_with_empty_axes: 1 }, 18)[0]!.dims).toEqual([2, 3, 4]);
    const arg = run('ArgMax', [f([2, 3])], { axis: 1, keepdims: 0 })[0]!;
    expect(arg).toEqual({ dtype: 'int64', dims: [2] });
  });

  it('Range, Tile, Pad, TopK, ConstantOfShape', () => {
    // Range(1, 10, 3) -> [1, 4, 7]
    expect(run('Range', [ints([1]), ints([10]), ints([3])])[0]).toMatchObject({ dims: [3], value: [1, 4, 7] });
    expect(run('Tile', [f([2, 3]), ints([2, 1])])[0]!.dims).toEqual([4, 3]);
    expect(run('Pad', [f([1, 3, 4]), ints([0, 1, 2, 0, 1, 2])])[0]!.dims).toEqual([1, 5, 8]);
    const [v, i] = run('TopK', [f([3, 10]), ints([4])], { axis: 1 }, 20, 2);
    expect([v!.dims, i!.dtype]).toEqual([[3, 4], 'int64']);
    expect(run('ConstantOfShape', [ints([2, 5])])[0]).toEqual({ dtype: 'float32', dims: [2, 5] });
  });

  it('has rules for every op the builder helpers emit', () => {
    const needed = [
      'MatMul',
      'Add',
      'Sub',
      'Mul',
      'Div',
      'Gemm',
      'Gelu',
      'Relu',
      'Sigmoid',
      'Tanh',
      'Erf',
      'Sqrt',
      'Pow',
      'Exp',
      'Neg',
      'Softmax',
      'LayerNormalization',
      'ReduceMean',
      'Conv',
      'Reshape',
      'Transpose',
      'Concat',
      'Split',
      'Slice',
      'Gather',
      'Unsqueeze',
      'Squeeze',
      'Flatten',
      'Identity',
      'Cast',
      'Shape',
      'Constant',
      'Where',
      'Equal',
      'Expand',
    ];
    expect(needed.filter((op) => !supportedOps().includes(op))).toEqual([]);
  });
});
