/**
 * Per-operator shape and element-type rules, following the ONNX operator specs. Rules work on
 * partially known shapes (numbers, symbolic names, null) and also propagate the contents of small
 * integer tensors (shapes, axes) so that Shape -> Slice -> Concat -> Reshape chains in exported models
 * resolve to real dims.
 */
import { TensorShapeError, type Tensor } from '@vlit/core';
import type { DecodedAttribute } from './attributes.js';
import { elementTypeFromOnnx, protoDims, protoToTensor, type Dim, type ElementType, type TensorProto } from './proto.js';

/** What is known about one value: its element type, dims (null when even the rank is unknown) and, for small integer tensors, its contents. */
export interface TypeInfo {
  dtype: ElementType;
  dims: Dim[] | null;
  /** Known contents of a rank-0/1 integer tensor (shape vectors, axes); entries may be symbolic or null. */
  value?: Dim[];
}

/** Everything a rule sees about one node. */
export interface RuleContext {
  opType: string;
  nodeName: string;
  opset: number;
  inputs: (TypeInfo | undefined)[];
  attrs: Record<string, DecodedAttribute>;
  outputCount: number;
}

/** A shape rule returns one entry per output; undefined where nothing can be said. */
export type ShapeRule = (ctx: RuleContext) => (TypeInfo | undefined)[];

const MAX_TRACKED = 64;

function fail(ctx: RuleContext, message: string, extra: Record<string, unknown> = {}): never {
  throw new TensorShapeError(`${ctx.opType} node '${ctx.nodeName}': ${message}`, {
    details: { field: ctx.nodeName, op: ctx.opType, ...extra },
  });
}

/** Format dims for messages the way ONNX tools print them. */
export function formatDims(dims: readonly Dim[] | null | undefined): string {
  if (!dims) return '[?]';
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

function attrInt(ctx: RuleContext, name: string, fallback: number): number {
  const v = ctx.attrs[name];
  return typeof v === 'number' ? v : fallback;
}
function attrInts(ctx: RuleContext, name: string): number[] | undefined {
  const v = ctx.attrs[name];
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
}
function attrString(ctx: RuleContext, name: string, fallback: string): string {
  const v = ctx.attrs[name];
  return typeof v === 'string' ? v : fallback;
}

/** Known integer contents of an input, or undefined. */
function intValues(info: TypeInfo | undefined): number[] | undefined {
  if (!info?.value) return undefined;
  return info.value.every((v) => typeof v === 'number') ? (info.value as number[]) : undefined;
}

function normAxis(ctx: RuleContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(ctx, `axis ${axis} is out of range for rank ${rank}`, { axis, rank });
  return a;
}

function mergeDim(a: Dim, b: Dim): Dim {
  if (a === b) return a;
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return a ?? b;
}

/** Multidirectional (numpy-style) broadcasting of several shapes, per the ONNX spec. */
export function broadcastShapes(ctx: RuleContext, shapes: (Dim[] | null)[]): Dim[] | null {
  if (shapes.some((s) => s === null)) return null;
  const list = shapes as Dim[][];
  const rank = Math.max(0, ...list.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let acc: Dim = 1;
    for (const s of list) {
      const k = s.length - rank + i;
      // null means unknown, so only a missing leading dim counts as 1.
      const d: Dim = k < 0 ? 1 : s[k];
      if (acc === 1) acc = d;
      else if (d === 1 || d === acc) continue;
      else if (typeof acc === 'number' && typeof d === 'number') {
        fail(ctx, `cannot broadcast shapes ${list.map(formatDims).join(' and ')} (dim ${d} vs ${acc})`, {
          shapes: list,
        });
      } else if (acc === null) acc = typeof d === 'number' ? d : null;
      else if (d === null) acc = typeof acc === 'number' ? acc : null;
      // A symbolic dim against a number > 1 must equal that number to be valid.
      else if (typeof d === 'number') acc = d;
      else if (typeof acc !== 'number') acc = null;
    }
    out.push(acc);
  }
  return out;
}

/** Product of dims: a number when all are numbers, a symbol when exactly one symbol times 1, else null. */
function productDim(dims: Dim[]): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (d === null) return null;
    if (typeof d === 'number') n *= d;
    else syms.push(d);
  }
  if (syms.length === 0) return n;
  if (syms.length === 1 && n === 1) return syms[0];
  return null;
}

function same(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  return [x ? { dtype: x.dtype, dims: x.dims } : undefined];
}

function broadcastRule(outType?: ElementType): ShapeRule {
  return (ctx) => {
    const ins = ctx.inputs.filter((x): x is TypeInfo => x !== undefined);
    if (ins.length !== ctx.inputs.length || ins.length === 0) {
      const first = ctx.inputs[0];
      return [first || outType ? { dtype: outType ?? first!.dtype, dims: null } : undefined];
    }
    const dims = broadcastShapes(ctx, ins.map((i) => i.dims));
    return [{ dtype: outType ?? ins[0].dtype, dims }];
  };
}

function valueArith(ctx: RuleContext, op: (a: number, b: number) => number): Dim[] | undefined {
  const a = ctx.inputs[0];
  const b = ctx.inputs[1];
  if (!a?.value || !b?.value) return undefined;
  const n = Math.max(a.value.length, b.value.length);
  if (!(a.value.length === n || a.value.length === 1) || !(b.value.length === n || b.value.length === 1)) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a.value[a.value.length === 1 ? 0 : i];
    const y = b.value[b.value.length === 1 ? 0 : i];
    out.push(typeof x === 'number' && typeof y === 'number' ? op(x, y) : null);
  }
  return out;
}

function arithRule(op: (a: number, b: number) => number): ShapeRule {
  const base = broadcastRule();
  return (ctx) => {
    const [out] = base(ctx);
    const value = out && isIntType(out.dtype) ? valueArith(ctx, op) : undefined;
    return [out && value ? { ...out, value } : out];
  };
}

function isIntType(t: ElementType): boolean {
  return t === 'int64' || t === 'int32' || t === 'int16' || t === 'int8' || t === 'uint8' || t === 'uint16' || t === 'uint32' || t === 'uint64';
}

function matmulRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

function gemmRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

function windowOut(input: Dim, k: number, s: number, d: number, pb: number, pe: number, autoPad: string, ceil: boolean): Dim {
  if (typeof input !== 'number') return null;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(input / s);
  const span = d * (k - 1) + 1;
  const padded = autoPad === 'VALID' ? input : input + pb + pe;
  const q = (padded - span) / s;
  return (ceil ? Math.ceil(q) : Math.floor(q)) + 1;
}

function windowRule(kind: 'conv' | 'pool'): ShapeRule {
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

function globalPoolRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  return [{ dtype: x.dtype, dims: [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)] }];
}

function axesFrom(ctx: RuleContext, inputIndex: number, attrFromOpset: number): { axes?: number[]; unknown: boolean } {
  // Older opsets carry axes as an attribute; newer ones as an int64 input.
  const attr = attrInts(ctx, 'axes');
  if (attr) return { axes: attr, unknown: false };
  if (ctx.opset >= attrFromOpset && inputIndex < ctx.inputs.length && ctx.inputs[inputIndex]) {
    const v = intValues(ctx.inputs[inputIndex]);
    return v ? { axes: v, unknown: false } : { unknown: true };
  }
  return { unknown: false };
}

function reduceRule(axesInputOpset: number, outType?: ElementType): ShapeRule {
  return (ctx) => {
    const x = ctx.inputs[0];
    if (!x) return [undefined];
    const dtype = outType ?? x.dtype;
    if (!x.dims) return [{ dtype, dims: null }];
    const keep = attrInt(ctx, 'keepdims', 1) === 1;
    const rank = x.dims.length;
    let axes: number[];
    if (ctx.opType === 'ArgMax' || ctx.opType === 'ArgMin') {
      axes = [attrInt(ctx, 'axis', 0)];
    } else {
      const found = axesFrom(ctx, 1, axesInputOpset);
      if (found.unknown) return [{ dtype, dims: keep ? x.dims.map(() => null) : null }];
      if (!found.axes || found.axes.length === 0) {
        if (attrInt(ctx, 'noop_with_empty_axes', 0) === 1) return [{ dtype, dims: [...x.dims] }];
        axes = x.dims.map((_, i) => i);
      } else axes = found.axes;
    }
    const set = new Set(axes.map((a) => normAxis(ctx, a, rank)));
    const out: Dim[] = [];
    x.dims.forEach((d, i) => {
      if (!set.has(i)) out.push(d);
      else if (keep) out.push(1);
    });
    return [{ dtype, dims: out }];
  };
}

function solveReshape(input: Dim[], target: Dim[], minusOne: number): Dim {
  let inNum = 1;
  const inSyms: string[] = [];
  for (const d of input) {
    if (d === null) return null;
    if (typeof d === 'number') inNum *= d;
    else inSyms.push(d);
  }
  let outNum = 1;
  for (let i = 0; i < target.length; i++) {
    if (i === minusOne) continue;
    const d = target[i];
    if (d === null) return null;
    if (typeof d === 'number') outNum *= d;
    else {
      const at = inSyms.indexOf(d);
      if (at < 0) return null;
      inSyms.splice(at, 1);
    }
  }
  if (outNum === 0 || inNum % outNum !== 0) return null;
  const ratio = inNum / outNum;
  if (inSyms.length === 0) return ratio;
  if (inSyms.length === 1 && ratio === 1) return inSyms[0];
  return null;
}

function reshapeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [x, shape] = ctx.inputs;
  if (!x) return [undefined];
  let target: Dim[] | undefined = shape?.value ? [...shape.value] : undefined;
  if (!target && ctx.opset < 5) target = attrInts(ctx, 'shape');
  if (!target) {
    const n = shape?.dims?.length === 1 ? shape.dims[0] : null;
    return [{ dtype: x.dtype, dims: typeof n === 'number' ? new Array(n).fill(null) : null }];
  }
  const allowZero = attrInt(ctx, 'allowzero', 0) === 1;
  let minusOne = -1;
  const out: Dim[] = target.map((d, i) => {
    if (d === 0 && !allowZero) return x.dims ? (x.dims[i] ?? null) : null;
    if (d === -1) {
      if (minusOne >= 0) fail(ctx, 'shape has more than one -1');
      minusOne = i;
    }
    return d;
  });
  if (minusOne >= 0) out[minusOne] = x.dims ? solveReshape(x.dims, out, minusOne) : null;
  if (x.dims && out.every((d) => typeof d === 'number') && x.dims.every((d) => typeof d === 'number')) {
    const a = productDim(x.dims) as number;
    const b = productDim(out) as number;
    if (a !== b) fail(ctx, `cannot reshape ${formatDims(x.dims)} (${a} elements) to ${formatDims(out)} (${b} elements)`, { shapes: [x.dims, out] });
  }
  return [{ dtype: x.dtype, dims: out, value: x.value && out.length <= 1 ? x.value : undefined }];
}

function transposeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  const perm = attrInts(ctx, 'perm') ?? x.dims.map((_, i) => x.dims!.length - 1 - i);
  if (perm.length !== x.dims.length) fail(ctx, `perm [${perm.join(', ')}] does not match input ${formatDims(x.dims)}`);
  const seen = new Set(perm);
  if (seen.size !== perm.length || perm.some((p) => p < 0 || p >= perm.length)) fail(ctx, `perm [${perm.join(', ')}] is not a permutation`);
  return [{ dtype: x.dtype, dims: perm.map((p) => x.dims![p]) }];
}

function concatRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const ins = ctx.inputs;
  const first = ins.find((x) => x);
  if (!first) return [undefined];
  if (ins.some((x) => !x || !x.dims)) return [{ dtype: first.dtype, dims: ins.find((x) => x?.dims)?.dims?.map(() => null) ?? null }];
  const shapes = ins.map((x) => x!.dims!);
  const rank = shapes[0].length;
  if (shapes.some((s) => s.length !== rank)) fail(ctx, `inputs have different ranks: ${shapes.map(formatDims).join(', ')}`, { shapes });
  const axis = normAxis(ctx, attrInt(ctx, 'axis', 0), rank);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    if (i === axis) {
      out.push(productSum(shapes.map((s) => s[i])));
      continue;
    }
    let d: Dim = shapes[0][i];
    for (const s of shapes) {
      if (typeof d === 'number' && typeof s[i] === 'number' && d !== s[i]) {
        fail(ctx, `inputs disagree on dim ${i}: ${shapes.map(formatDims).join(', ')}`, { shapes });
      }
      d = mergeDim(d, s[i]);
    }
    out.push(d);
  }
  let value: Dim[] | undefined;
  if (rank <= 1 && ins.every((x) => x!.value)) value = ins.flatMap((x) => x!.value!);
  return [{ dtype: first.dtype, dims: out, value }];
}

function productSum(dims: Dim[]): Dim {
  let n = 0;
  for (const d of dims) {
    if (typeof d !== 'number') return dims.length === 1 ? d : null;
    n += d;
  }
  return n;
}

function splitRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  const n = ctx.outputCount;
  if (!x) return new Array(n).fill(undefined);
  if (!x.dims) return new Array(n).fill({ dtype: x.dtype, dims: null });
  const axis = normAxis(ctx, attrInt(ctx, 'axis', 0), x.dims.length);
  const total = x.dims[axis];
  let sizes: Dim[] | undefined = attrInts(ctx, 'split') ?? (ctx.opset >= 13 ? intValues(ctx.inputs[1]) : undefined);
  if (!sizes && ctx.opset >= 13 && ctx.inputs[1]) sizes = new Array(n).fill(null);
  if (!sizes) {
    if (typeof total === 'number') {
      const chunk = Math.ceil(total / n);
      sizes = Array.from({ length: n }, (_, i) => (i < n - 1 ? chunk : total - chunk * (n - 1)));
    } else sizes = new Array(n).fill(null);
  }
  if (sizes.length !== n) fail(ctx, `split has ${sizes.length} sizes but the node has ${n} outputs`);
  if (typeof total === 'number' && sizes.every((s) => typeof s === 'number')) {
    const sum = (sizes as number[]).reduce((a, b) => a + b, 0);
    if (sum !== total) fail(ctx, `split sizes [${sizes.join(', ')}] sum to ${sum} but dim ${axis} of ${formatDims(x.dims)} is ${total}`);
  }
  return sizes.map((s) => {
    const dims = [...x.dims!];
    dims[axis] = s;
    return { dtype: x.dtype, dims };
  });
}

const BIG = 2 ** 52;

function sliceLength(d: number, start: number, end: number, step: number): number {
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  s = Math.min(Math.max(s, 0), d - 1);
  e = Math.min(Math.max(e, -1), d - 1);
  return Math.max(0, Math.ceil((s - e) / -step));
}

function sliceRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  let starts: number[] | undefined;
  let ends: number[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = attrInts(ctx, 'starts');
    ends = attrInts(ctx, 'ends');
    axes = attrInts(ctx, 'axes');
  } else {
    starts = intValues(ctx.inputs[1]);
    ends = intValues(ctx.inputs[2]);
    axes = ctx.inputs[3] ? intValues(ctx.inputs[3]) : undefined;
    steps = ctx.inputs[4] ? intValues(ctx.inputs[4]) : undefined;
    if ((ctx.inputs[3] && !axes) || (ctx.inputs[4] && !steps)) return [{ dtype: x.dtype, dims: x.dims.map(() => null) }];
  }
  if (!starts || !ends) {
    if (axes) {
      const set = new Set(axes.map((a) => normAxis(ctx, a, x.dims!.length)));
      return [{ dtype: x.dtype, dims: x.dims.map((d, i) => (set.has(i) ? null : d)) }];
    }
    return [{ dtype: x.dtype, dims: x.dims.map(() => null) }];
  }
  axes ??= starts.map((_, i) => i);
  steps ??= starts.map(() => 1);
  const dims = [...x.dims];
  let value = x.value ? [...x.value] : undefined;
  axes.forEach((a0, i) => {
    const a = normAxis(ctx, a0, dims.length);
    const d = dims[a];
    const step = steps![i];
    if (step === 0) fail(ctx, 'slice step cannot be 0');
    if (typeof d === 'number') {
      dims[a] = sliceLength(d, starts![i], ends![i], step);
      if (value && a === 0 && value.length === d) {
        const out: Dim[] = [];
        let s = starts![i] < 0 ? starts![i] + d : starts![i];
        s = step > 0 ? Math.min(Math.max(s, 0), d) : Math.min(Math.max(s, 0), d - 1);
        for (let k = 0, j = s; k < (dims[a] as number); k++, j += step) out.push(value[j]);
        value = out;
      }
    } else {
      dims[a] = starts![i] === 0 && ends![i] >= BIG && step === 1 ? d : null;
      value = undefined;
    }
  });
  return [{ dtype: x.dtype, dims, value }];
}

function gatherRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [x, idx] = ctx.inputs;
  if (!x) return [undefined];
  if (!x.dims || !idx?.dims) return [{ dtype: x.dtype, dims: null }];
  const axis = normAxis(ctx, attrInt(ctx, 'axis', 0), x.dims.length);
  const dims = [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)];
  let value: Dim[] | undefined;
  const ids = intValues(idx);
  if (x.value && ids && x.dims.length === 1) {
    const n = x.value.length;
    value = ids.map((i) => x.value![i < 0 ? i + n : i] ?? null);
  }
  return [{ dtype: x.dtype, dims, value }];
}

function unsqueezeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  const { axes, unknown } = axesFrom(ctx, 1, 13);
  if (!x.dims || unknown || !axes) return [{ dtype: x.dtype, dims: null }];
  const rank = x.dims.length + axes.length;
  const set = new Set(axes.map((a) => normAxis(ctx, a, rank)));
  if (set.size !== axes.length) fail(ctx, `axes [${axes.join(', ')}] repeat`);
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : x.dims[j++]);
  return [{ dtype: x.dtype, dims: out, value: x.value && rank <= 1 ? x.value : undefined }];
}

function squeezeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  const { axes, unknown } = axesFrom(ctx, 1, 13);
  if (!x.dims || unknown) return [{ dtype: x.dtype, dims: null }];
  let set: Set<number>;
  if (!axes || axes.length === 0) {
    if (x.dims.some((d) => typeof d !== 'number')) return [{ dtype: x.dtype, dims: null }];
    set = new Set(x.dims.flatMap((d, i) => (d === 1 ? [i] : [])));
  } else set = new Set(axes.map((a) => normAxis(ctx, a, x.dims!.length)));
  for (const a of set) {
    const d = x.dims[a];
    if (typeof d === 'number' && d !== 1) fail(ctx, `cannot squeeze axis ${a} of ${formatDims(x.dims)}: it is ${d}, not 1`);
  }
  const out = x.dims.filter((_, i) => !set.has(i));
  return [{ dtype: x.dtype, dims: out, value: x.value && out.length <= 1 ? x.value : undefined }];
}

function flattenRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: [null, null] }];
  const rank = x.dims.length;
  let axis = attrInt(ctx, 'axis', 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) fail(ctx, `axis ${attrInt(ctx, 'axis', 1)} is out of range for rank ${rank}`);
  return [{ dtype: x.dtype, dims: [productDim(x.dims.slice(0, axis)), productDim(x.dims.slice(axis))] }];
}

function castRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  const to = elementTypeFromOnnx(attrInt(ctx, 'to', 0));
  const keep = x?.value && isIntType(to) ? x.value : undefined;
  return [{ dtype: to, dims: x ? x.dims : null, value: keep }];
}

function shapeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x?.dims) return [{ dtype: 'int64', dims: [null] }];
  const rank = x.dims.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(attrInt(ctx, 'start', 0));
  const end = clamp(attrInt(ctx, 'end', rank));
  const value = x.dims.slice(start, Math.max(start, end));
  return [{ dtype: 'int64', dims: [value.length], value }];
}

/** Read a small integer tensor's contents for value propagation. */
export function tensorValue(t: Tensor): Dim[] | undefined {
  if (t.dims.length > 1 || t.data.length > MAX_TRACKED) return undefined;
  if (!isIntType(t.dtype)) return undefined;
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** Type and small-int contents of a constant tensor proto. */
export function infoFromTensorProto(proto: TensorProto): TypeInfo {
  const dtype = elementTypeFromOnnx(proto.dataType);
  const dims = protoDims(proto);
  let value: Dim[] | undefined;
  if (isIntType(dtype) && dims.length <= 1 && (dims[0] ?? 1) <= MAX_TRACKED) {
    try {
      value = tensorValue(protoToTensor(proto));
    } catch {
      // External or malformed data: the type is still known, only the contents are not.
      value = undefined;
    }
  }
  return { dtype, dims, value };
}

function constantRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const a = ctx.attrs;
  if (a.value && typeof a.value === 'object' && !Array.isArray(a.value) && 'dataType' in a.value) {
    return [infoFromTensorProto(a.value as TensorProto)];
  }
  if (typeof a.value_float === 'number') return [{ dtype: 'float32', dims: [] }];
  if (Array.isArray(a.value_floats)) return [{ dtype: 'float32', dims: [a.value_floats.length] }];
  if (typeof a.value_int === 'number') return [{ dtype: 'int64', dims: [], value: [a.value_int] }];
  if (Array.isArray(a.value_ints)) return [{ dtype: 'int64', dims: [a.value_ints.length], value: [...(a.value_ints as number[])] }];
  if (typeof a.value_string === 'string') return [{ dtype: 'string', dims: [] }];
  if (Array.isArray(a.value_strings)) return [{ dtype: 'string', dims: [a.value_strings.length] }];
  return [undefined];
}

function constantOfShapeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const shape = ctx.inputs[0];
  const v = ctx.attrs.value;
  const dtype = v && typeof v === 'object' && 'dataType' in v ? elementTypeFromOnnx((v as TensorProto).dataType) : 'float32';
  const dims = shape?.value ? [...shape.value] : typeof shape?.dims?.[0] === 'number' ? new Array(shape.dims[0] as number).fill(null) : null;
  return [{ dtype, dims }];
}

function expandRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [x, shape] = ctx.inputs;
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  if (!shape?.value) {
    const n = shape?.dims?.[0];
    return [{ dtype: x.dtype, dims: typeof n === 'number' ? new Array(Math.max(n, x.dims.length)).fill(null) : null }];
  }
  return [{ dtype: x.dtype, dims: broadcastShapes(ctx, [x.dims, [...shape.value]]) }];
}

function whereRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [c, x, y] = ctx.inputs;
  const dtype = x?.dtype ?? y?.dtype;
  if (!dtype) return [undefined];
  if (!c || !x || !y) return [{ dtype, dims: null }];
  if (c.dtype !== 'bool') fail(ctx, `condition must be bool, got ${c.dtype}`);
  if (x.dtype !== y.dtype) fail(ctx, `X is ${x.dtype} but Y is ${y.dtype}`);
  return [{ dtype, dims: broadcastShapes(ctx, [c.dims, x.dims, y.dims]) }];
}

function layerNormRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  const res: (TypeInfo | undefined)[] = [{ dtype: x.dtype, dims: x.dims }];
  if (ctx.outputCount > 1) {
    let dims: Dim[] | null = null;
    if (x.dims) {
      const axis = normAxis(ctx, attrInt(ctx, 'axis', -1), x.dims.length);
      dims = x.dims.map((d, i) => (i < axis ? d : 1));
    }
    const stash = elementTypeFromOnnx(attrInt(ctx, 'stash_type', 1));
    res.push({ dtype: stash, dims }, { dtype: stash, dims });
  }
  return res;
}

function dropoutRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  return [{ dtype: x.dtype, dims: x.dims }, { dtype: 'bool', dims: x.dims }];
}

function softmaxRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (x?.dims && x.dims.length > 0) normAxis(ctx, attrInt(ctx, 'axis', ctx.opset >= 13 ? -1 : 1), x.dims.length);
  return same(ctx);
}

function rangeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [s, l, d] = ctx.inputs;
  const dtype = s?.dtype ?? 'int64';
  const sv = intValues(s)?.[0];
  const lv = intValues(l)?.[0];
  const dv = intValues(d)?.[0];
  if (sv !== undefined && lv !== undefined && dv !== undefined && dv !== 0) {
    const n = Math.max(Math.ceil((lv - sv) / dv), 0);
    const value = n <= MAX_TRACKED ? Array.from({ length: n }, (_, i) => sv + i * dv) : undefined;
    return [{ dtype, dims: [n], value }];
  }
  return [{ dtype, dims: [null] }];
}

function tileRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [x, r] = ctx.inputs;
  if (!x) return [undefined];
  const reps = intValues(r);
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  if (!reps) return [{ dtype: x.dtype, dims: x.dims.map(() => null) }];
  if (reps.length !== x.dims.length) fail(ctx, `repeats has ${reps.length} entries for input ${formatDims(x.dims)}`);
  return [{ dtype: x.dtype, dims: x.dims.map((d, i) => (reps[i] === 1 ? d : typeof d === 'number' ? d * reps[i] : null)) }];
}

function padRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  const pads = ctx.opset < 11 ? attrInts(ctx, 'pads') : intValues(ctx.inputs[1]);
  const axes = ctx.opset >= 18 && ctx.inputs[3] ? intValues(ctx.inputs[3]) : x.dims.map((_, i) => i);
  if (!pads || !axes) return [{ dtype: x.dtype, dims: x.dims.map(() => null) }];
  const dims = [...x.dims];
  axes.forEach((a0, i) => {
    const a = normAxis(ctx, a0, dims.length);
    const d = dims[a];
    const add = pads[i] + pads[i + axes.length];
    dims[a] = add === 0 ? d : typeof d === 'number' ? d + add : null;
  });
  return [{ dtype: x.dtype, dims }];
}

function topKRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined, undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }, { dtype: 'int64', dims: null }];
  const axis = normAxis(ctx, attrInt(ctx, 'axis', -1), x.dims.length);
  const k = ctx.opset < 10 ? attrInt(ctx, 'k', -1) : (intValues(ctx.inputs[1])?.[0] ?? -1);
  const dims = [...x.dims];
  dims[axis] = k >= 0 ? k : null;
  return [{ dtype: x.dtype, dims }, { dtype: 'int64', dims: [...dims] }];
}

function resizeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  return [{ dtype: x.dtype, dims: x.dims ? x.dims.map(() => null) : null }];
}

function sizeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  const n = x?.dims ? productDim(x.dims) : null;
  return [{ dtype: 'int64', dims: [], value: n === null ? undefined : [n] }];
}

function castLikeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [x, like] = ctx.inputs;
  if (!like) return [undefined];
  return [{ dtype: like.dtype, dims: x ? x.dims : null }];
}

function batchNormRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  const res: (TypeInfo | undefined)[] = [{ dtype: x.dtype, dims: x.dims }];
  const c: Dim = x.dims?.[1] ?? null;
  for (let i = 1; i < ctx.outputCount; i++) res.push({ dtype: x.dtype, dims: [c] });
  return res;
}

const UNARY = [
  'Relu', 'Sigmoid', 'Tanh', 'Erf', 'Sqrt', 'Exp', 'Neg', 'Gelu', 'Identity', 'Abs', 'Log', 'Reciprocal', 'Clip',
  'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Floor', 'Ceil', 'Round', 'Sin', 'Cos', 'Softplus', 'Softsign', 'Elu',
  'Selu', 'Sign', 'PRelu', 'InstanceNormalization', 'GroupNormalization', 'CumSum', 'Trilu', 'Mish', 'Celu',
  'ThresholdedRelu', 'Shrink', 'LpNormalization', 'MeanVarianceNormalization', 'Tan', 'Asin', 'Acos', 'Atan',
  'Sinh', 'Cosh', 'IsNaN', 'IsInf', 'ReverseSequence',
];

const REGISTRY = new Map<string, ShapeRule>();
for (const op of UNARY) REGISTRY.set(op, same);
REGISTRY.set('IsNaN', (ctx) => [{ dtype: 'bool', dims: ctx.inputs[0]?.dims ?? null }]);
REGISTRY.set('IsInf', (ctx) => [{ dtype: 'bool', dims: ctx.inputs[0]?.dims ?? null }]);
REGISTRY.set('Not', (ctx) => [{ dtype: 'bool', dims: ctx.inputs[0]?.dims ?? null }]);
REGISTRY.set('PRelu', (ctx) => [{ dtype: ctx.inputs[0]?.dtype ?? 'float32', dims: broadcastRule()(ctx)[0]?.dims ?? null }]);
REGISTRY.set('Add', arithRule((a, b) => a + b));
REGISTRY.set('Sub', arithRule((a, b) => a - b));
REGISTRY.set('Mul', arithRule((a, b) => a * b));
REGISTRY.set('Div', arithRule((a, b) => Math.trunc(a / b)));
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
for (const op of ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']) {
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
