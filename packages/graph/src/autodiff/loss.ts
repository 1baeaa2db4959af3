/**
 * Losses built from standard ONNX ops, so buildGradientModel differentiates them like any other part
 * of the graph: the masked next-token cross-entropy of instruction tuning.
 */
import { InvalidArgumentError, UnsupportedError, createTensor, isVlitError, type Tensor } from '@vlit/core';
import type { GraphBuilder, Value, ValueRef } from '../builder.js';

/** What the loss builders need from a graph: createGraph's builder and editModel's editor both fit. */
export type GraphLike = Pick<GraphBuilder, 'op' | 'initializer' | 'value' | 'opset'>;

/** Options for addMaskedCrossEntropy. */
export interface MaskedCrossEntropyOptions {
  /** Label value that marks a position without loss (default -100, as torch and transformers use). */
  ignoreIndex?: number;
  /**
   * Shift for next-token prediction, as transformers' causal LM loss does: logits at position t are
   * scored against the label at t + 1 (logits [B, S, V], labels [B, S]). Default true; false scores
   * logits and labels position by position (any leading shape).
   */
  shift?: boolean;
  /** Name of the loss value (default generated). */
  name?: string;
}

function freshName(g: GraphLike, hint: string): string {
  for (let i = 0; ; i++) {
    const name = `${hint}_${i}`;
    try {
      g.value(name);
    } catch (err) {
      if (isVlitError(err, 'VLIT_NOT_FOUND')) return name;
      throw err;
    }
  }
}

/**
 * Add the mean cross-entropy over the positions whose label is not `ignoreIndex`, as torch's
 * `CrossEntropyLoss(ignore_index=-100)` computes it (NaN when every position is ignored, like torch).
 * `logits` is float [..., V], `labels` int64 or int32 [...]. Returns the scalar loss value.
 * Labels outside [0, V) other than ignoreIndex contribute log-probability 0 instead of failing.
 */
export function addMaskedCrossEntropy(g: GraphLike, logits: ValueRef, labels: ValueRef, options: MaskedCrossEntropyOptions = {}): Value {
  if (g.opset < 13) throw new UnsupportedError(`the cross-entropy builder needs opset 13 or newer, the graph uses ${g.opset}`, { details: { field: 'opset' } });
  const ignore = options.ignoreIndex ?? -100;
  const shift = options.shift ?? true;
  const L = typeof logits === 'string' ? g.value(logits) : logits;
  const Y = typeof labels === 'string' ? g.value(labels) : labels;
  const dtype = L.dtype;
  if (dtype !== 'float32' && dtype !== 'float64' && dtype !== 'float16') {
    throw new InvalidArgumentError(`logits '${L.name}' must be float, got ${dtype}`, { details: { field: 'logits' } });
  }
  if (Y.dtype !== 'int64' && Y.dtype !== 'int32')
    throw new InvalidArgumentError(`labels '${Y.name}' must be int64 or int32, got ${Y.dtype}`, { details: { field: 'labels' } });
  if (L.dims.length !== Y.dims.length + 1) {
    throw new InvalidArgumentError(`logits [${L.dims.join(', ')}] must have one more dim (the vocabulary) than labels [${Y.dims.join(', ')}]`, {
      details: { field: 'labels' },
    });
  }
  if (shift && L.dims.length !== 3)
    throw new InvalidArgumentError(`shift needs logits [batch, seq, vocab], got rank ${L.dims.length}`, { details: { field: 'logits' } });
  const c = (hint: string, t: Tensor): Value => g.initializer(freshName(g, `cross_entropy/${hint}`), t);
  const i64 = (v: number[]): Value =>
    c(
      'i64',
      createTensor(
        'int64',
        [v.length],
        v.map((x) => BigInt(x)),
      ),
    );
  let logit: Value = L;
  let label: Value = Y.dtype === 'int64' ? Y : g.op('Cast', [Y], { to: 7 });
  if (shift) {
    logit = g.op('Slice', [logit, i64([0]), i64([-1]), i64([1])]);
    label = g.op('Slice', [label, i64([1]), i64([Number.MAX_SAFE_INTEGER]), i64([1])]);
  }
  const logp = g.op('LogSoftmax', [logit], { axis: -1 });
  // One-hot by comparison with 0..V-1: no OneHot/GatherElements, whose kernels and shape rules vary.
  const vocab = g.op('Squeeze', [g.op('Shape', [logit], { start: -1 }), i64([0])]);
  const classes = g.op('Range', [c('zero', createTensor('int64', [], [0n])), vocab, c('one', createTensor('int64', [], [1n]))]);
  const onehot = g.op('Cast', [g.op('Equal', [g.op('Unsqueeze', [label, i64([-1])]), classes])], { to: dtypeCode(dtype) });
  const picked = g.op('ReduceSum', [g.op('Mul', [logp, onehot]), i64([-1])], { keepdims: 0 });
  const keep = g.op('Cast', [g.op('Not', [g.op('Equal', [label, c('ignore', createTensor('int64', [], [BigInt(ignore)]))])])], { to: dtypeCode(dtype) });
  const total = g.op('ReduceSum', [g.op('Mul', [picked, keep])], { keepdims: 0 });
  const count = g.op('ReduceSum', [keep], { keepdims: 0 });
  const mean = g.op('Div', [total, count]);
  return options.name ? g.op('Neg', [mean], {}, { outputs: [options.name] })[0] : g.op('Neg', [mean]);
}

function dtypeCode(dtype: string): number {
  return dtype === 'float64' ? 11 : dtype === 'float16' ? 10 : 1;
}
