/**
 * The builder's op helpers by family. Each family takes the graph state and returns its part of the
 * builder; helpers emit the form of an op the graph's opset expects (inputs vs attributes for axes,
 * split sizes, slice bounds).
 */
import { InvalidArgumentError, UnsupportedError, createTensor } from '@vlit/core';
import type { Attributes, GraphBuilder, ValueRef } from './builder.js';
import type { GraphState } from './graph-state.js';
import { elementTypeToOnnx } from './proto.js';

/** Elementwise arithmetic and comparison, MatMul and Gemm. */
export type ArithmeticOps = Pick<GraphBuilder, 'matMul' | 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'equal' | 'where' | 'gemm'>;
/** Activations, normalisation, reductions and convolution. */
export type NeuralOps = Pick<
  GraphBuilder,
  'gelu' | 'relu' | 'sigmoid' | 'tanh' | 'erf' | 'sqrt' | 'exp' | 'neg' | 'identity' | 'softmax' | 'layerNormalization' | 'reduceMean' | 'conv'
>;
/** Shape and indexing ops, casts and constants. */
export type ShapeOps = Pick<
  GraphBuilder,
  'reshape' | 'transpose' | 'concat' | 'split' | 'slice' | 'gather' | 'unsqueeze' | 'squeeze' | 'flatten' | 'cast' | 'shape' | 'constant' | 'expand'
>;

/** matMul, add, sub, mul, div, pow, equal, where, gemm. */
export function arithmeticOps(g: GraphState): ArithmeticOps {
  const { single, binary, operands } = g;
  return {
    matMul: (a, b, naming) => single('MatMul', [a, b], {}, naming),
    add: binary('Add'),
    sub: binary('Sub'),
    mul: binary('Mul'),
    div: binary('Div'),
    pow: (a, b, naming) => {
      // Pow's exponent keeps its own dtype; a numeric exponent takes the base's.
      const [x, y] = operands(a, b, 'Pow');
      return single('Pow', [x, y], {}, naming);
    },
    equal: binary('Equal'),
    where(c, x, y, naming) {
      const [xx, yy] = operands(x, y, 'Where');
      return single('Where', [c, xx, yy], {}, naming);
    },
    gemm(a, b, c, o = {}) {
      const attrs: Attributes = {
        alpha: o.alpha === undefined ? undefined : { kind: 'float', value: o.alpha },
        beta: o.beta === undefined ? undefined : { kind: 'float', value: o.beta },
        transA: o.transA ? 1 : undefined,
        transB: o.transB ? 1 : undefined,
      };
      return single('Gemm', c ? [a, b, c] : [a, b], attrs, o);
    },
  };
}

/** gelu, relu, sigmoid, tanh, erf, sqrt, exp, neg, identity, softmax, layerNormalization, reduceMean, conv. */
export function neuralOps(g: GraphState): NeuralOps {
  const { single, unary, axesInput, opset } = g;
  const options = { name: g.name };
  return {
    gelu(x, o = {}) {
      if (opset < 20) throw new UnsupportedError(`Gelu needs opset 20, graph '${options.name}' uses ${opset}`, { details: { field: 'opset' } });
      return single('Gelu', [x], { approximate: o.approximate && o.approximate !== 'none' ? o.approximate : undefined }, o);
    },
    relu: unary('Relu'),
    sigmoid: unary('Sigmoid'),
    tanh: unary('Tanh'),
    erf: unary('Erf'),
    sqrt: unary('Sqrt'),
    exp: unary('Exp'),
    neg: unary('Neg'),
    identity: unary('Identity'),
    softmax: (x, o = {}) => single('Softmax', [x], { axis: o.axis ?? -1 }, o),
    layerNormalization(x, scale, bias, o = {}) {
      if (opset < 17) throw new UnsupportedError(`LayerNormalization needs opset 17, graph '${options.name}' uses ${opset}`, { details: { field: 'opset' } });
      const attrs: Attributes = { axis: o.axis ?? -1, epsilon: { kind: 'float', value: o.epsilon ?? 1e-5 } };
      return single('LayerNormalization', bias ? [x, scale, bias] : [x, scale], attrs, o);
    },
    reduceMean(x, axes, o = {}) {
      const keepdims = o.keepdims === false ? 0 : 1;
      if (opset >= 18) return single('ReduceMean', [x, axesInput('axes', axes)], { keepdims }, o);
      return single('ReduceMean', [x], { axes: { kind: 'ints', value: axes }, keepdims }, o);
    },
    conv(x, w, b, o = {}) {
      const attrs: Attributes = {
        strides: o.strides ? { kind: 'ints', value: o.strides } : undefined,
        pads: o.pads ? { kind: 'ints', value: o.pads } : undefined,
        kernel_shape: o.kernelShape ? { kind: 'ints', value: o.kernelShape } : undefined,
        dilations: o.dilations ? { kind: 'ints', value: o.dilations } : undefined,
        group: o.group,
      };
      return single('Conv', b ? [x, w, b] : [x, w], attrs, o);
    },
  };
}

/** reshape, transpose, concat, split, slice, gather, unsqueeze, squeeze, flatten, cast, shape, constant, expand. */
export function shapeOps(g: GraphState): ShapeOps {
  const { single, axesInput, shapeInput, constName, opset } = g;
  const { op, initializer } = g.base;
  return {
    reshape: (x, shape, o = {}) => single('Reshape', [x, shapeInput('shape', shape)], { allowzero: o.allowzero ? 1 : undefined }, o),
    transpose: (x, perm, o) => single('Transpose', [x], { perm: perm ? { kind: 'ints', value: perm } : undefined }, o),
    concat: (values, axis, o) => single('Concat', values, { axis }, o),
    split(x, o) {
      const count = o.outputs?.length ?? o.sizes?.length ?? o.count;
      if (!count) throw new InvalidArgumentError('split needs sizes, count or outputs', { details: { field: 'split' } });
      const ins: ValueRef[] = [x];
      const attrs: Attributes = { axis: o.axis ?? 0 };
      if (o.sizes) {
        if (opset >= 13) ins.push(axesInput('split', o.sizes));
        else attrs.split = { kind: 'ints', value: o.sizes };
      } else if (opset >= 18) attrs.num_outputs = count;
      return op('Split', ins, attrs, { name: o.name, outputs: o.outputs ?? count });
    },
    slice(x, o) {
      if (opset < 10) {
        return single(
          'Slice',
          [x],
          {
            starts: { kind: 'ints', value: o.starts },
            ends: { kind: 'ints', value: o.ends },
            axes: o.axes ? { kind: 'ints', value: o.axes } : undefined,
          },
          o,
        );
      }
      const ins: (ValueRef | null)[] = [x, axesInput('starts', o.starts), axesInput('ends', o.ends)];
      if (o.axes || o.steps) ins.push(o.axes ? axesInput('axes', o.axes) : null);
      if (o.steps) ins.push(axesInput('steps', o.steps));
      return single('Slice', ins, {}, o);
    },
    gather(x, indices, o = {}) {
      let idx: ValueRef;
      if (typeof indices === 'number') idx = initializer(constName('indices'), createTensor('int64', [], [BigInt(indices)]));
      else if (Array.isArray(indices)) idx = axesInput('indices', indices);
      else idx = indices;
      return single('Gather', [x, idx], { axis: o.axis ?? 0 }, o);
    },
    unsqueeze(x, axes, o) {
      if (opset >= 13) return single('Unsqueeze', [x, axesInput('axes', axes)], {}, o);
      return single('Unsqueeze', [x], { axes: { kind: 'ints', value: axes } }, o);
    },
    squeeze(x, axes, o) {
      if (!axes) return single('Squeeze', [x], {}, o);
      if (opset >= 13) return single('Squeeze', [x, axesInput('axes', axes)], {}, o);
      return single('Squeeze', [x], { axes: { kind: 'ints', value: axes } }, o);
    },
    flatten: (x, o = {}) => single('Flatten', [x], { axis: o.axis ?? 1 }, o),
    cast: (x, to, o) => single('Cast', [x], { to: elementTypeToOnnx(to) }, o),
    shape: (x, o = {}) => single('Shape', [x], { start: o.start, end: o.end }, o),
    constant: (tensor, o) => single('Constant', [], { value: tensor }, o),
    expand: (x, shape, o) => single('Expand', [x, shapeInput('shape', shape)], {}, o),
  };
}
