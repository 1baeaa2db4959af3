/**
 * Reverse-mode rules, one per forward op: given the gradients of a node's outputs, emit standard
 * ONNX nodes computing the gradients of the inputs that need one. Rules read dims from shape
 * inference and fall back to Shape ops where a dim is symbolic.
 */
import { UnsupportedError } from '@vlit/core';
import type { DecodedAttribute } from '../attributes.js';
import type { Dim, NodeProto } from '../proto.js';
import { Emitter } from './emit.js';

/** What a rule sees about one forward node. */
export interface GradientRuleContext {
  readonly em: Emitter;
  readonly node: NodeProto;
  readonly nodeName: string;
  readonly attrs: Record<string, DecodedAttribute>;
  /** Gradient of each output, undefined where no gradient flows back into it. */
  readonly dOut: readonly (string | undefined)[];
  /** True when input i needs a gradient. */
  needs(i: number): boolean;
}

/** A rule returns one gradient per input (undefined where none is needed or defined). */
export type GradientRule = (c: GradientRuleContext) => (string | undefined)[];

function unsupported(c: GradientRuleContext, why: string): never {
  throw new UnsupportedError(`cannot differentiate ${c.node.opType} node '${c.nodeName}': ${why}`, {
    details: { field: c.nodeName, op: c.node.opType, node: c.nodeName },
  });
}

function rank(c: GradientRuleContext, name: string): number {
  const d = c.em.dims(name);
  if (!d) unsupported(c, `the rank of '${name}' is unknown`);
  return d.length;
}

function intAttr(c: GradientRuleContext, name: string, fallback: number): number {
  const v = c.attrs[name];
  return typeof v === 'number' ? v : fallback;
}

function intsAttr(c: GradientRuleContext, name: string): number[] | undefined {
  const v = c.attrs[name];
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
}

/** Known contents of a small int64 input (axes, starts), or undefined. */
function intInput(c: GradientRuleContext, i: number): number[] | undefined {
  const name = c.node.input[i];
  if (!name) return undefined;
  const v = c.em.editor.typeOf(name)?.value;
  return v && v.every((x): x is number => typeof x === 'number') ? v : undefined;
}

const x0 = (c: GradientRuleContext) => c.node.input[0];
const y0 = (c: GradientRuleContext) => c.node.output[0];
const dy0 = (c: GradientRuleContext) => c.dOut[0]!;
const dt = (c: GradientRuleContext) => c.em.dtype(y0(c));
const k = (c: GradientRuleContext, v: number) => c.em.scalar(dt(c), v);

/** Elementwise unary ops: dx = dy * f'(x, y). */
function unary(f: (c: GradientRuleContext, dy: string) => string): GradientRule {
  return (c) => [c.needs(0) ? f(c, dy0(c)) : undefined];
}

/** Binary broadcasting ops: each side's contribution is summed back to its own shape. */
function binary(fa: ((c: GradientRuleContext, dy: string) => string) | null, fb: ((c: GradientRuleContext, dy: string) => string) | null): GradientRule {
  return (c) => {
    const dy = dy0(c);
    const [a, b] = c.node.input;
    return [
      c.needs(0) && fa ? c.em.unbroadcast(fa(c, dy), a, c.nodeName) : undefined,
      c.needs(1) && fb ? c.em.unbroadcast(fb(c, dy), b, c.nodeName) : undefined,
    ];
  };
}

function normAxes(c: GradientRuleContext, axes: readonly number[], r: number): number[] {
  return axes.map((a) => {
    const n = a < 0 ? a + r : a;
    if (n < 0 || n >= r) unsupported(c, `axis ${a} is out of range for rank ${r}`);
    return n;
  });
}

/** Reduction axes of ReduceSum/ReduceMean in either opset form; null means 'return dy unchanged'. */
function reduceAxes(c: GradientRuleContext, r: number): number[] | null {
  const fromInputOpset = c.node.opType === 'ReduceSum' ? 13 : 18;
  let axes: number[] | undefined = intsAttr(c, 'axes');
  if (!axes && c.em.opset >= fromInputOpset && c.node.input[1]) {
    axes = intInput(c, 1);
    if (!axes) unsupported(c, 'its axes are computed at run time; only constant axes are supported');
  }
  if (!axes || axes.length === 0) {
    if (intAttr(c, 'noop_with_empty_axes', 0) === 1) return null;
    axes = Array.from({ length: r }, (_, i) => i);
  }
  return [...new Set(normAxes(c, axes, r))].sort((p, q) => p - q);
}

function reduceRule(mean: boolean): GradientRule {
  return (c) => {
    if (!c.needs(0)) return [undefined];
    const x = x0(c);
    const r = rank(c, x);
    const axes = reduceAxes(c, r);
    const dy = dy0(c);
    if (axes === null) return [dy];
    const em = c.em;
    const kept = intAttr(c, 'keepdims', 1) === 1 ? dy : em.unsqueeze(dy, axes);
    let g = em.expand(kept, em.shapeOf(x));
    if (mean) {
      const xd = em.dims(x)!;
      const counted = axes.map((a) => xd[a]);
      let scale: string;
      if (counted.every((d): d is number => typeof d === 'number')) scale = k(c, 1 / counted.reduce((p, q) => p * q, 1));
      else scale = em.div(em.cast(em.op('Size', [y0(c)]), dt(c)), em.cast(em.op('Size', [x]), dt(c)));
      g = em.mul(g, scale);
    }
    return [g];
  };
}

/** mean over `axes` (keepdims) of v, where `like` has v's shape; static 1/count when the dims are known. */
function meanOver(c: GradientRuleContext, v: string, like: string, axes: number[]): string {
  const em = c.em;
  const d = em.dims(like)!;
  const counted = axes.map((a) => d[a]);
  const sum = em.reduceSum(v, axes, true);
  if (counted.every((x): x is number => typeof x === 'number')) return em.mul(sum, k(c, 1 / counted.reduce((p, q) => p * q, 1)));
  return em.div(sum, em.cast(em.op('ReduceProd', [em.op('Gather', [em.shapeOf(like), em.ints(axes)], { axis: 0 })], { keepdims: 0 }), dt(c)));
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_C = Math.sqrt(2 / Math.PI);

const matMul: GradientRule = (c) => {
  const em = c.em;
  const [a, b] = c.node.input;
  const ra = rank(c, a);
  const rb = rank(c, b);
  let A = a;
  let B = b;
  let G = dy0(c);
  // Rank-1 operands are promoted the way MatMul promotes them, then the gradient is reshaped back.
  if (ra === 1) {
    A = em.unsqueeze(a, [0]);
    G = em.unsqueeze(G, [rank(c, G) - (rb === 1 ? 0 : 1)]);
  }
  if (rb === 1) {
    B = em.unsqueeze(b, [1]);
    G = em.unsqueeze(G, [rank(c, G)]);
  }
  const swapLast = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
  const out: (string | undefined)[] = [undefined, undefined];
  if (c.needs(0)) {
    const gA = em.unbroadcast(em.matMul(G, em.transpose(B, swapLast(Math.max(rb, 2)))), A, c.nodeName);
    out[0] = ra === 1 ? em.reshapeLike(gA, a) : gA;
  }
  if (c.needs(1) && rb === 2 && ra > 2) {
    // A weight shared across the batch ([B, S, K] x [K, N]): one [K, B*S] x [B*S, N] product instead
    // of a batched product and a sum over the batch.
    const A2 = em.reshape(A, em.shapeVector([-1, { of: a, start: ra - 1, end: ra }]));
    const G2 = em.reshape(G, em.shapeVector([-1, { of: b, start: 1, end: 2 }]));
    out[1] = em.matMul(em.transpose(A2, [1, 0]), G2);
  } else if (c.needs(1)) {
    const gB = em.unbroadcast(em.matMul(em.transpose(A, swapLast(Math.max(ra, 2))), G), B, c.nodeName);
    out[1] = rb === 1 ? em.reshapeLike(gB, b) : gB;
  }
  return out;
};

const gemm: GradientRule = (c) => {
  // Y = alpha * A' B' + beta * C with A' = transA ? A^T : A, B' likewise.
  const em = c.em;
  const [a, b, cc] = c.node.input;
  const alpha = typeof c.attrs.alpha === 'number' ? c.attrs.alpha : 1;
  const beta = typeof c.attrs.beta === 'number' ? c.attrs.beta : 1;
  const ta = intAttr(c, 'transA', 0) === 1;
  const tb = intAttr(c, 'transB', 0) === 1;
  const dy = alpha === 1 ? dy0(c) : em.mul(dy0(c), k(c, alpha));
  const T = (v: string) => em.transpose(v, [1, 0]);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  // dA' = dY B'^T, dB' = A'^T dY; transposed operands take the transposed gradient.
  if (c.needs(0)) out[0] = ta ? em.matMul(tb ? T(b) : b, T(dy)) : em.matMul(dy, tb ? b : T(b));
  if (c.needs(1)) out[1] = tb ? em.matMul(T(dy), ta ? T(a) : a) : em.matMul(ta ? a : T(a), dy);
  if (cc && c.needs(2)) out[2] = em.unbroadcast(beta === 1 ? dy0(c) : em.mul(dy0(c), k(c, beta)), cc, c.nodeName);
  return out;
};

const transpose: GradientRule = (c) => {
  if (!c.needs(0)) return [undefined];
  const r = rank(c, x0(c));
  const perm = intsAttr(c, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
  const inv = new Array<number>(r);
  perm.forEach((p, i) => (inv[p] = i));
  return [c.em.transpose(dy0(c), inv)];
};

/** Reshape, Unsqueeze, Squeeze, Flatten: the gradient is dy reshaped to x's shape. */
const reshapeBack: GradientRule = (c) => [c.needs(0) ? c.em.reshapeLike(dy0(c), x0(c)) : undefined];

const slice: GradientRule = (c) => {
  if (!c.needs(0)) return [undefined];
  const em = c.em;
  const x = x0(c);
  const xd = em.dims(x);
  if (!xd) unsupported(c, `the rank of '${x}' is unknown`);
  const r = xd.length;
  let starts: number[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (em.opset < 10) {
    starts = intsAttr(c, 'starts');
    axes = intsAttr(c, 'axes');
  } else {
    starts = intInput(c, 1);
    axes = c.node.input[3] ? intInput(c, 3) : undefined;
    steps = c.node.input[4] ? intInput(c, 4) : undefined;
    if ((c.node.input[3] && !axes) || (c.node.input[4] && !steps)) unsupported(c, 'its axes or steps are computed at run time');
  }
  if (!starts) unsupported(c, 'its starts are computed at run time; only constant starts are supported');
  axes ??= starts.map((_, i) => i);
  if (steps && steps.some((s) => s !== 1)) unsupported(c, 'only step 1 is supported');
  const begins = new Array<number>(r).fill(0);
  normAxes(c, axes, r).forEach((a, i) => {
    const d: Dim = xd[a];
    let s = starts![i];
    if (s < 0) {
      if (typeof d !== 'number') unsupported(c, `a negative start on axis ${a}, whose size is symbolic`);
      s = Math.max(s + d, 0);
    }
    begins[a] = typeof d === 'number' ? Math.min(s, d) : s;
  });
  // The end padding is what is left after the slice: dim(x) - dim(y) - begin, per axis.
  const ends = em.sub(em.sub(em.shapeVector([{ of: x, start: 0, end: r }]), em.shapeVector([{ of: y0(c), start: 0, end: r }])), em.ints(begins));
  const pads = em.op('Concat', [em.ints(begins), ends], { axis: 0 });
  return [em.op('Pad', [dy0(c), pads])];
};

const concat: GradientRule = (c) => {
  const em = c.em;
  const ins = c.node.input;
  const r = rank(c, y0(c));
  const axis = normAxes(c, [intAttr(c, 'axis', 0)], r)[0];
  const sizes = em.op(
    'Concat',
    ins.map((x) => em.shapeVector([{ of: x, start: axis, end: axis + 1 }])),
    { axis: 0 },
  );
  const parts = em.opN('Split', [dy0(c), sizes], { axis }, ins.length);
  return ins.map((_, i) => (c.needs(i) ? parts[i] : undefined));
};

const expand: GradientRule = (c) => [c.needs(0) ? c.em.unbroadcast(dy0(c), x0(c), c.nodeName) : undefined];

const softmax: GradientRule = (c) => {
  if (!c.needs(0)) return [undefined];
  if (c.em.opset < 13) unsupported(c, 'Softmax before opset 13 (flattening semantics) is not supported');
  const em = c.em;
  const y = y0(c);
  const axis = normAxes(c, [intAttr(c, 'axis', -1)], rank(c, y))[0];
  const dy = dy0(c);
  return [em.mul(y, em.sub(dy, em.reduceSum(em.mul(dy, y), [axis], true)))];
};

const logSoftmax: GradientRule = (c) => {
  if (!c.needs(0)) return [undefined];
  if (c.em.opset < 13) unsupported(c, 'LogSoftmax before opset 13 (flattening semantics) is not supported');
  const em = c.em;
  const y = y0(c);
  const axis = normAxes(c, [intAttr(c, 'axis', -1)], rank(c, y))[0];
  const dy = dy0(c);
  return [em.sub(dy, em.mul(em.op('Exp', [y]), em.reduceSum(dy, [axis], true)))];
};

const layerNorm: GradientRule = (c) => {
  if (c.dOut[1] || c.dOut[2]) unsupported(c, 'gradients through its Mean/InvStdDev outputs are not supported');
  const em = c.em;
  const [x, scale, bias] = c.node.input;
  const r = rank(c, x);
  const axis = normAxes(c, [intAttr(c, 'axis', -1)], r)[0];
  const eps = typeof c.attrs.epsilon === 'number' ? c.attrs.epsilon : 1e-5;
  const axes = Array.from({ length: r - axis }, (_, i) => axis + i);
  const dy = dy0(c);
  // Recompute the normalised input (cheaper to store nothing): xhat = (x - mean) * rstd.
  const xc = em.sub(x, meanOver(c, x, x, axes));
  const rstd = em.div(k(c, 1), em.op('Sqrt', [em.add(meanOver(c, em.mul(xc, xc), x, axes), k(c, eps))]));
  const xhat = em.mul(xc, rstd);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const g = em.mul(dy, scale);
    const inner = em.sub(em.sub(g, meanOver(c, g, x, axes)), em.mul(xhat, meanOver(c, em.mul(g, xhat), x, axes)));
    out[0] = em.mul(rstd, inner);
  }
  if (c.needs(1)) out[1] = em.unbroadcast(em.mul(dy, xhat), scale, c.nodeName);
  if (bias && c.needs(2)) out[2] = em.unbroadcast(dy, bias, c.nodeName);
  return out;
};

/** Kernel and stride of a 2-D window op, checked to be the non-overlapping, unpadded case. */
function patchWindow(c: GradientRuleContext, kernel: number[] | undefined, what: string): [number, number] {
  const strides = intsAttr(c, 'strides') ?? [1, 1];
  const pads = intsAttr(c, 'pads') ?? [0, 0, 0, 0];
  const dil = intsAttr(c, 'dilations') ?? [1, 1];
  const autoPad = typeof c.attrs.auto_pad === 'string' ? c.attrs.auto_pad : 'NOTSET';
  const ok =
    kernel?.length === 2 &&
    strides.length === 2 &&
    kernel[0] === strides[0] &&
    kernel[1] === strides[1] &&
    pads.every((p) => p === 0) &&
    dil.every((d) => d === 1) &&
    (autoPad === 'NOTSET' || autoPad === 'VALID') &&
    intAttr(c, 'group', 1) === 1 &&
    intAttr(c, 'ceil_mode', 0) === 0;
  if (!ok) {
    unsupported(
      c,
      `only the ${what} case is supported (2-D, stride == kernel, no padding, dilation 1, group 1); got kernel [${kernel?.join(', ') ?? '?'}], strides [${strides.join(', ')}], pads [${pads.join(', ')}]`,
    );
  }
  const xd = c.em.dims(x0(c));
  if (!xd || xd.length !== 4) unsupported(c, `only 4-D [N, C, H, W] inputs are supported`);
  for (const [i, kk] of [
    [2, kernel![0]],
    [3, kernel![1]],
  ]) {
    const d = xd[i];
    if (typeof d === 'number' && d % kk !== 0)
      unsupported(c, `input dim ${i} (${d}) is not a multiple of the kernel (${kk}), so the window skips input pixels`);
  }
  return [kernel![0], kernel![1]];
}

const conv: GradientRule = (c) => {
  const em = c.em;
  const [x, w, b] = c.node.input;
  const wd = em.dims(w);
  const wdims = wd && wd.every((d): d is number => typeof d === 'number') ? (wd as number[]) : undefined;
  if (!wdims || wdims.length !== 4) unsupported(c, 'the weight must have known 4-D dims');
  const [kh, kw] = patchWindow(c, intsAttr(c, 'kernel_shape') ?? wdims.slice(2), 'patch-embedding');
  const [O, C] = wdims;
  const dy = dy0(c);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  // With stride == kernel, Conv is a matmul of non-overlapping patches [N, gh, gw, C*kh*kw] with W^T.
  const dyT = em.transpose(dy, [0, 2, 3, 1]);
  if (c.needs(0)) {
    const p = em.matMul(dyT, em.reshape(w, em.ints([O, C * kh * kw])));
    const p6 = em.reshape(p, em.shapeVector([{ of: dy, start: 0, end: 1 }, { of: dy, start: 2, end: 4 }, C, kh, kw]));
    out[0] = em.reshapeLike(em.transpose(p6, [0, 3, 1, 4, 2, 5]), x);
  }
  if (c.needs(1)) {
    const x6 = em.reshape(x, em.shapeVector([{ of: x, start: 0, end: 2 }, { of: dy, start: 2, end: 3 }, kh, { of: dy, start: 3, end: 4 }, kw]));
    const patches = em.reshape(em.transpose(x6, [0, 2, 4, 1, 3, 5]), em.ints([-1, C * kh * kw]));
    const gw = em.matMul(em.transpose(em.reshape(dyT, em.ints([-1, O])), [1, 0]), patches);
    out[1] = em.reshape(gw, em.ints(wdims));
  }
  if (b && c.needs(2)) out[2] = em.reduceSum(dy, [0, 2, 3], false);
  return out;
};

const averagePool: GradientRule = (c) => {
  if (!c.needs(0)) return [undefined];
  const em = c.em;
  const [kh, kw] = patchWindow(c, intsAttr(c, 'kernel_shape'), 'non-overlapping');
  const dy = dy0(c);
  const spread = em.expand(em.unsqueeze(dy, [3, 5]), em.shapeVector([{ of: dy, start: 0, end: 3 }, kh, { of: dy, start: 3, end: 4 }, kw]));
  return [em.mul(em.reshapeLike(spread, x0(c)), k(c, 1 / (kh * kw)))];
};

const gather: GradientRule = (c) => {
  if (!c.needs(0)) return [undefined];
  const em = c.em;
  const [x, idx] = c.node.input;
  const r = rank(c, x);
  const q = rank(c, idx);
  const axis = normAxes(c, [intAttr(c, 'axis', 0)], r)[0];
  let dy = dy0(c);
  // Negative indices count from the end, as Gather allows; ScatterND gets them normalised.
  let ids = em.dtype(idx) === 'int64' ? idx : em.cast(idx, 'int64');
  const dim = em.reshape(em.shapeVector([{ of: x, start: axis, end: axis + 1 }]), em.ints([]));
  ids = em.op('Where', [em.op('Less', [ids, em.int64Scalar(0)]), em.add(ids, dim), ids]);
  // Move the gathered axis to the front of data, and the index dims to the front of dy.
  const perm = [axis, ...Array.from({ length: r }, (_, i) => i).filter((i) => i !== axis)];
  const target = axis === 0 ? x : em.transpose(x, perm);
  if (axis !== 0) {
    const dr = r - 1 + q;
    const idxDims = Array.from({ length: q }, (_, i) => axis + i);
    dy = em.transpose(dy, [...idxDims, ...Array.from({ length: dr }, (_, i) => i).filter((i) => i < axis || i >= axis + q)]);
  }
  const zeros = em.zeros(em.shapeOf(target), dt(c));
  const td = em.dims(target) ?? [];
  const scattered = em.op('ScatterND', [zeros, em.unsqueeze(ids, [q]), dy], { reduction: 'add' }, [{ dtype: dt(c), dims: td }]);
  if (axis === 0) return [scattered];
  const inv = new Array<number>(r);
  perm.forEach((p, i) => (inv[p] = i));
  return [em.transpose(scattered, inv)];
};

const where: GradientRule = (c) => {
  const em = c.em;
  const [cond, a, b] = c.node.input;
  const dy = dy0(c);
  const zero = k(c, 0);
  return [
    undefined,
    c.needs(1) ? em.unbroadcast(em.op('Where', [cond, dy, zero]), a, c.nodeName) : undefined,
    c.needs(2) ? em.unbroadcast(em.op('Where', [cond, zero, dy]), b, c.nodeName) : undefined,
  ];
};

const pow: GradientRule = (c) => {
  const em = c.em;
  const [a, p] = c.node.input;
  const dy = dy0(c);
  const out: (string | undefined)[] = [undefined, undefined];
  if (c.needs(0)) {
    const pf = em.dtype(p) === dt(c) ? p : em.cast(p, dt(c));
    out[0] = em.unbroadcast(em.mul(em.mul(dy, pf), em.op('Pow', [a, em.sub(pf, k(c, 1))])), a, c.nodeName);
  }
  if (c.needs(1)) out[1] = em.unbroadcast(em.mul(em.mul(dy, y0(c)), em.op('Log', [a])), p, c.nodeName);
  return out;
};

const gelu: GradientRule = (c) => {
  if (!c.needs(0)) return [undefined];
  const em = c.em;
  const x = x0(c);
  const dy = dy0(c);
  const x2 = em.mul(x, x);
  if (c.attrs.approximate === 'tanh') {
    // y = x/2 (1 + tanh(u)), u = c (x + 0.044715 x^3): y' = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3 * 0.044715 x^2).
    const u = em.mul(em.mul(x, em.add(k(c, 1), em.mul(x2, k(c, 0.044715)))), k(c, GELU_C));
    const t = em.op('Tanh', [u]);
    const du = em.mul(em.add(k(c, 1), em.mul(x2, k(c, 3 * 0.044715))), k(c, GELU_C));
    const d = em.add(em.mul(em.add(k(c, 1), t), k(c, 0.5)), em.mul(em.mul(em.mul(x, k(c, 0.5)), em.sub(k(c, 1), em.mul(t, t))), du));
    return [em.mul(dy, d)];
  }
  // y = x Phi(x): y' = Phi(x) + x phi(x).
  const cdf = em.mul(em.add(k(c, 1), em.op('Erf', [em.mul(x, k(c, SQRT1_2))])), k(c, 0.5));
  const pdf = em.mul(em.op('Exp', [em.mul(x2, k(c, -0.5))]), k(c, INV_SQRT_2PI));
  return [em.mul(dy, em.add(cdf, em.mul(x, pdf)))];
};

const RULES = new Map<string, GradientRule>([
  [
    'Add',
    binary(
      (_, dy) => dy,
      (_, dy) => dy,
    ),
  ],
  [
    'Sub',
    binary(
      (_, dy) => dy,
      (c, dy) => c.em.neg(dy),
    ),
  ],
  [
    'Mul',
    binary(
      (c, dy) => c.em.mul(dy, c.node.input[1]),
      (c, dy) => c.em.mul(dy, c.node.input[0]),
    ),
  ],
  [
    'Div',
    binary(
      (c, dy) => c.em.div(dy, c.node.input[1]),
      (c, dy) => c.em.neg(c.em.div(c.em.mul(dy, y0(c)), c.node.input[1])),
    ),
  ],
  ['Neg', unary((c, dy) => c.em.neg(dy))],
  ['Identity', unary((_, dy) => dy)],
  ['Sqrt', unary((c, dy) => c.em.div(c.em.mul(dy, k(c, 0.5)), y0(c)))],
  ['Sigmoid', unary((c, dy) => c.em.mul(dy, c.em.mul(y0(c), c.em.sub(k(c, 1), y0(c)))))],
  ['Tanh', unary((c, dy) => c.em.mul(dy, c.em.sub(k(c, 1), c.em.mul(y0(c), y0(c)))))],
  ['Exp', unary((c, dy) => c.em.mul(dy, y0(c)))],
  ['Log', unary((c, dy) => c.em.div(dy, x0(c)))],
  ['Reciprocal', unary((c, dy) => c.em.neg(c.em.mul(dy, c.em.mul(y0(c), y0(c)))))],
  ['Sin', unary((c, dy) => c.em.mul(dy, c.em.op('Cos', [x0(c)])))],
  ['Cos', unary((c, dy) => c.em.neg(c.em.mul(dy, c.em.op('Sin', [x0(c)]))))],
  ['Erf', unary((c, dy) => c.em.mul(dy, c.em.mul(c.em.op('Exp', [c.em.neg(c.em.mul(x0(c), x0(c)))]), k(c, 2 / Math.sqrt(Math.PI)))))],
  ['Relu', unary((c, dy) => c.em.op('Where', [c.em.op('Greater', [x0(c), k(c, 0)]), dy, k(c, 0)]))],
  ['Cast', unary((c, dy) => c.em.cast(dy, c.em.dtype(x0(c))))],
  ['Gelu', gelu],
  ['Pow', pow],
  ['MatMul', matMul],
  ['Gemm', gemm],
  ['Transpose', transpose],
  ['Reshape', reshapeBack],
  ['Unsqueeze', reshapeBack],
  ['Squeeze', reshapeBack],
  ['Flatten', reshapeBack],
  ['Slice', slice],
  ['Concat', concat],
  ['Expand', expand],
  ['ReduceSum', reduceRule(false)],
  ['ReduceMean', reduceRule(true)],
  [
    'ReduceSumSquare',
    (c) => {
      const [g] = reduceRule(false)(c);
      return [g ? c.em.mul(g, c.em.mul(x0(c), k(c, 2))) : undefined];
    },
  ],
  ['Softmax', softmax],
  ['LogSoftmax', logSoftmax],
  ['LayerNormalization', layerNorm],
  ['Conv', conv],
  ['AveragePool', averagePool],
  ['Gather', gather],
  ['Where', where],
]);

/** The gradient rule for a default-domain op, if Vlit has one. */
export function getGradientRule(opType: string, domain = ''): GradientRule | undefined {
  if (domain !== '' && domain !== 'ai.onnx') return undefined;
  return RULES.get(opType);
}

/** Ops (default domain) that have gradient rules. */
export function differentiableOps(): string[] {
  return [...RULES.keys()].sort();
}
