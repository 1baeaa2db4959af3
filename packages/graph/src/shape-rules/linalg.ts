/** Shape rules of MatMul, Gemm, convolution and pooling windows, and BatchNormalization. */
import { type Dim } from '../proto.js';
import { fail, formatDims, attrInt, attrInts, attrString, broadcastShapes, type TypeInfo, type RuleContext, type ShapeRule } from './common.js';

export function matmulRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [a, b] = ctx.inputs;
  if (!a || !b) return [a ? { dtype: a.dtype, dims: null } : undefined];
  if (!a.dims || !b.dims) return [{ dtype: a.dtype, dims: null }];
  if (a.dims.length === 0 || b.dims.length === 0) fail(ctx, 'MatMul inputs must have rank >= 1', { shapes: [a.dims, b.dims] });
  const aa = a.dims.length === 1 ? [1, a.dims[0]] : a.dims;
  const bb = b.dims.length === 1 ? [b.dims[0], 1] : b.dims;
  const k1 = aa[aa.length - 1];
  const k2 = bb[bb.length - 2];
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    fail(ctx, `inner dims disagree: A ${formatDims(a.dims)} has ${k1} columns but B ${formatDims(b.dims)} has ${k2} rows`, {
      shapes: [a.dims, b.dims],
    });
  }
  const batch = broadcastShapes(ctx, [aa.slice(0, -2), bb.slice(0, -2)])!;
  const out: Dim[] = [...batch];
  if (a.dims.length !== 1) out.push(aa[aa.length - 2]);
  if (b.dims.length !== 1) out.push(bb[bb.length - 1]);
  return [{ dtype: a.dtype, dims: out }];
}

export function gemmRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [a, b, c] = ctx.inputs;
  if (!a || !b || !a.dims || !b.dims) return [a ? { dtype: a.dtype, dims: null } : undefined];
  if (a.dims.length !== 2 || b.dims.length !== 2) fail(ctx, `Gemm needs 2-D inputs, got ${formatDims(a.dims)} and ${formatDims(b.dims)}`);
  const [m, k1] = attrInt(ctx, 'transA', 0) ? [a.dims[1], a.dims[0]] : [a.dims[0], a.dims[1]];
  const [k2, n] = attrInt(ctx, 'transB', 0) ? [b.dims[1], b.dims[0]] : [b.dims[0], b.dims[1]];
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    fail(ctx, `inner dims disagree: A ${formatDims(a.dims)} gives K=${k1} but B ${formatDims(b.dims)} gives K=${k2}`, {
      shapes: [a.dims, b.dims],
    });
  }
  const out: Dim[] = [m, n];
  if (c?.dims) {
    // C must be unidirectionally broadcastable to [M, N].
    const bc = broadcastShapes(ctx, [out, c.dims])!;
    if (bc.length !== 2) fail(ctx, `C ${formatDims(c.dims)} does not broadcast to ${formatDims(out)}`);
  }
  return [{ dtype: a.dtype, dims: out }];
}

export function windowOut(input: Dim, k: number, s: number, d: number, pb: number, pe: number, autoPad: string, ceil: boolean): Dim {
  if (typeof input !== 'number') return null;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(input / s);
  const span = d * (k - 1) + 1;
  const padded = autoPad === 'VALID' ? input : input + pb + pe;
  const q = (padded - span) / s;
  return (ceil ? Math.ceil(q) : Math.floor(q)) + 1;
}

export function windowRule(kind: 'conv' | 'pool'): ShapeRule {
  return (ctx) => {
    const [x, w] = ctx.inputs;
    if (!x) return [undefined];
    if (!x.dims) return [{ dtype: x.dtype, dims: null }];
    if (x.dims.length < 3) fail(ctx, `input must be [N, C, ...spatial], got ${formatDims(x.dims)}`);
    const spatial = x.dims.length - 2;
    let kernel = attrInts(ctx, 'kernel_shape');
    let channels: Dim = x.dims[1];
    if (kind === 'conv') {
      if (!w?.dims) return [{ dtype: x.dtype, dims: null }];
      if (w.dims.length !== x.dims.length) fail(ctx, `weight ${formatDims(w.dims)} rank differs from input ${formatDims(x.dims)}`);
      const group = attrInt(ctx, 'group', 1);
      const wc = w.dims[1];
      if (typeof x.dims[1] === 'number' && typeof wc === 'number' && x.dims[1] !== wc * group) {
        fail(ctx, `input ${formatDims(x.dims)} has ${x.dims[1]} channels but weight ${formatDims(w.dims)} with group ${group} expects ${wc * group}`, {
          shapes: [x.dims, w.dims],
        });
      }
      channels = w.dims[0];
      kernel ??= w.dims.slice(2).map((d) => (typeof d === 'number' ? d : NaN));
    }
    if (!kernel || kernel.length !== spatial) fail(ctx, `kernel_shape must have ${spatial} entries`);
    const strides = attrInts(ctx, 'strides') ?? new Array(spatial).fill(1);
    const dil = attrInts(ctx, 'dilations') ?? new Array(spatial).fill(1);
    const pads = attrInts(ctx, 'pads') ?? new Array(spatial * 2).fill(0);
    const autoPad = attrString(ctx, 'auto_pad', 'NOTSET');
    const ceil = attrInt(ctx, 'ceil_mode', 0) === 1;
    const out: Dim[] = [x.dims[0], channels];
    for (let i = 0; i < spatial; i++) {
      const k = kernel[i];
      out.push(Number.isNaN(k) ? null : windowOut(x.dims[2 + i], k, strides[i], dil[i], pads[i], pads[i + spatial], autoPad, ceil));
    }
    for (const d of out) if (typeof d === 'number' && d <= 0) fail(ctx, `output dims ${formatDims(out)} are empty for input ${formatDims(x.dims)}`);
    const res: (TypeInfo | undefined)[] = [{ dtype: x.dtype, dims: out }];
    if (ctx.outputCount > 1) res.push({ dtype: 'int64', dims: out });
    return res;
  };
}

export function globalPoolRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  return [{ dtype: x.dtype, dims: [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)] }];
}

export function batchNormRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  const res: (TypeInfo | undefined)[] = [{ dtype: x.dtype, dims: x.dims }];
  const c: Dim = x.dims?.[1] ?? null;
  for (let i = 1; i < ctx.outputCount; i++) res.push({ dtype: x.dtype, dims: [c] });
  return res;
}
