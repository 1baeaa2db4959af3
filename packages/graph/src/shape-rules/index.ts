/**
 * Per-operator shape and element-type rules, following the ONNX operator specs. Rules work on
 * partially known shapes (numbers, symbolic names, null) and also propagate the contents of small
 * integer tensors (shapes, axes) so that Shape -> Slice -> Concat -> Reshape chains in exported models
 * resolve to real dims.
 */
import { broadcastShapes, same, type ShapeRule } from './common.js';
import { broadcastRule, arithRule, whereRule, castRule, castLikeRule, dropoutRule } from './elementwise.js';
import { matmulRule, gemmRule, windowRule, globalPoolRule, batchNormRule } from './linalg.js';
import { reduceRule, layerNormRule, softmaxRule, topKRule } from './reduce.js';
import {
  reshapeRule,
  transposeRule,
  concatRule,
  splitRule,
  sliceRule,
  gatherRule,
  unsqueezeRule,
  squeezeRule,
  flattenRule,
  shapeRule,
  sizeRule,
  expandRule,
  tileRule,
  padRule,
  rangeRule,
  resizeRule,
} from './shape.js';
import { constantRule, constantOfShapeRule } from './constants.js';

export { broadcastShapes, formatDims, type RuleContext, type ShapeRule, type TypeInfo } from './common.js';
export { infoFromTensorProto, tensorValue } from './constants.js';

const UNARY = [
  'Relu',
  'Sigmoid',
  'Tanh',
  'Erf',
  'Sqrt',
  'Exp',
  'Neg',
  'Gelu',
  'Identity',
  'Abs',
  'Log',
  'Reciprocal',
  'Clip',
  'HardSigmoid',
  'HardSwish',
  'LeakyRelu',
  'Floor',
  'Ceil',
  'Round',
  'Sin',
  'Cos',
  'Softplus',
  'Softsign',
  'Elu',
  'Selu',
  'Sign',
  'PRelu',
  'InstanceNormalization',
  'GroupNormalization',
  'CumSum',
  'Trilu',
  'Mish',
  'Celu',
  'ThresholdedRelu',
  'Shrink',
  'LpNormalization',
  'MeanVarianceNormalization',
  'Tan',
  'Asin',
  'Acos',
  'Atan',
  'Sinh',
  'Cosh',
  'IsNaN',
  'IsInf',
  'ReverseSequence',
];

const REGISTRY = new Map<string, ShapeRule>();
for (const op of UNARY) REGISTRY.set(op, same);
REGISTRY.set('IsNaN', (ctx) => [{ dtype: 'bool', dims: ctx.inputs[0]?.dims ?? null }]);
REGISTRY.set('IsInf', (ctx) => [{ dtype: 'bool', dims: ctx.inputs[0]?.dims ?? null }]);
REGISTRY.set('Not', (ctx) => [{ dtype: 'bool', dims: ctx.inputs[0]?.dims ?? null }]);
REGISTRY.set('PRelu', (ctx) => [{ dtype: ctx.inputs[0]?.dtype ?? 'float32', dims: broadcastRule()(ctx)[0]?.dims ?? null }]);
REGISTRY.set(
  'Add',
  arithRule((a, b) => a + b),
);
REGISTRY.set(
  'Sub',
  arithRule((a, b) => a - b),
);
REGISTRY.set(
  'Mul',
  arithRule((a, b) => a * b),
);
REGISTRY.set(
  'Div',
  arithRule((a, b) => Math.trunc(a / b)),
);
for (const op of ['Pow', 'Mod', 'Max', 'Min', 'Sum', 'Mean', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor']) {
  REGISTRY.set(op, (ctx) => {
    if (op === 'Pow') {
      // Pow's exponent may have another type; the result keeps the base's.
      const [a, b] = ctx.inputs;
      return [a ? { dtype: a.dtype, dims: a.dims && b?.dims ? broadcastShapes(ctx, [a.dims, b.dims]) : null } : undefined];
    }
    return broadcastRule()(ctx);
  });
}
for (const op of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']) {
  REGISTRY.set(op, broadcastRule('bool'));
}
REGISTRY.set('MatMul', matmulRule);
REGISTRY.set('Gemm', gemmRule);
REGISTRY.set('Conv', windowRule('conv'));
REGISTRY.set('AveragePool', windowRule('pool'));
REGISTRY.set('MaxPool', windowRule('pool'));
REGISTRY.set('LpPool', windowRule('pool'));
REGISTRY.set('GlobalAveragePool', globalPoolRule);
REGISTRY.set('GlobalMaxPool', globalPoolRule);
REGISTRY.set('GlobalLpPool', globalPoolRule);
for (const op of [
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
]) {
  // ReduceSum moved axes to an input at opset 13, the others at 18.
  REGISTRY.set(op, reduceRule(op === 'ReduceSum' ? 13 : 18));
}
REGISTRY.set('ArgMax', reduceRule(Infinity, 'int64'));
REGISTRY.set('ArgMin', reduceRule(Infinity, 'int64'));
REGISTRY.set('Reshape', reshapeRule);
REGISTRY.set('Transpose', transposeRule);
REGISTRY.set('Concat', concatRule);
REGISTRY.set('Split', splitRule);
REGISTRY.set('Slice', sliceRule);
REGISTRY.set('Gather', gatherRule);
REGISTRY.set('Unsqueeze', unsqueezeRule);
REGISTRY.set('Squeeze', squeezeRule);
REGISTRY.set('Flatten', flattenRule);
REGISTRY.set('Cast', castRule);
REGISTRY.set('CastLike', castLikeRule);
REGISTRY.set('Shape', shapeRule);
REGISTRY.set('Size', sizeRule);
REGISTRY.set('Constant', constantRule);
REGISTRY.set('ConstantOfShape', constantOfShapeRule);
REGISTRY.set('Expand', expandRule);
REGISTRY.set('Where', whereRule);
REGISTRY.set('Softmax', softmaxRule);
REGISTRY.set('LogSoftmax', softmaxRule);
REGISTRY.set('Hardmax', softmaxRule);
REGISTRY.set('LayerNormalization', layerNormRule);
REGISTRY.set('BatchNormalization', batchNormRule);
REGISTRY.set('Dropout', dropoutRule);
REGISTRY.set('Range', rangeRule);
REGISTRY.set('Tile', tileRule);
REGISTRY.set('Pad', padRule);
REGISTRY.set('TopK', topKRule);
REGISTRY.set('Resize', resizeRule);
REGISTRY.set('Upsample', resizeRule);
REGISTRY.set('NonZero', (ctx) => [{ dtype: 'int64', dims: [ctx.inputs[0]?.dims?.length ?? null, null] }]);

/** The shape rule for an operator of the default ONNX domain, if Vlit has one. */
export function getShapeRule(opType: string, domain = ''): ShapeRule | undefined {
  if (domain !== '' && domain !== 'ai.onnx') return undefined;
  return REGISTRY.get(opType);
}

/** Operators (default domain) with shape rules. */
export function supportedOps(): string[] {
  return [...REGISTRY.keys()].sort();
}
