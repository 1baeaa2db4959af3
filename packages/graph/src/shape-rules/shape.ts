/** Shape rules of shape and indexing ops: Reshape, Transpose, Concat, Split, Slice, Gather, Unsqueeze, Squeeze, Flatten, Shape, Size, Expand, Tile, Pad, Range, Resize. */
import { type Dim } from '../proto.js';
import {
  MAX_TRACKED,
  fail,
  formatDims,
  attrInt,
  attrInts,
  intValues,
  normAxis,
  mergeDim,
  broadcastShapes,
  productDim,
  productSum,
  axesFrom,
  type TypeInfo,
  type RuleContext,
} from './common.js';

export function solveReshape(input: Dim[], target: Dim[], minusOne: number): Dim {
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

export function reshapeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function transposeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  const perm = attrInts(ctx, 'perm') ?? x.dims.map((_, i) => x.dims!.length - 1 - i);
  if (perm.length !== x.dims.length) fail(ctx, `perm [${perm.join(', ')}] does not match input ${formatDims(x.dims)}`);
  const seen = new Set(perm);
  if (seen.size !== perm.length || perm.some((p) => p < 0 || p >= perm.length)) fail(ctx, `perm [${perm.join(', ')}] is not a permutation`);
  return [{ dtype: x.dtype, dims: perm.map((p) => x.dims![p]) }];
}

export function concatRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function splitRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export const BIG = 2 ** 52;

export function sliceLength(d: number, start: number, end: number, step: number): number {
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

export function sliceRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function gatherRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function unsqueezeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function squeezeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function flattenRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: [null, null] }];
  const rank = x.dims.length;
  let axis = attrInt(ctx, 'axis', 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) fail(ctx, `axis ${attrInt(ctx, 'axis', 1)} is out of range for rank ${rank}`);
  return [{ dtype: x.dtype, dims: [productDim(x.dims.slice(0, axis)), productDim(x.dims.slice(axis))] }];
}

export function shapeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x?.dims) return [{ dtype: 'int64', dims: [null] }];
  const rank = x.dims.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(attrInt(ctx, 'start', 0));
  const end = clamp(attrInt(ctx, 'end', rank));
  const value = x.dims.slice(start, Math.max(start, end));
  return [{ dtype: 'int64', dims: [value.length], value }];
}

export function expandRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [x, shape] = ctx.inputs;
  if (!x) return [undefined];
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  if (!shape?.value) {
    const n = shape?.dims?.[0];
    return [{ dtype: x.dtype, dims: typeof n === 'number' ? new Array(Math.max(n, x.dims.length)).fill(null) : null }];
  }
  return [{ dtype: x.dtype, dims: broadcastShapes(ctx, [x.dims, [...shape.value]]) }];
}

export function rangeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function tileRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [x, r] = ctx.inputs;
  if (!x) return [undefined];
  const reps = intValues(r);
  if (!x.dims) return [{ dtype: x.dtype, dims: null }];
  if (!reps) return [{ dtype: x.dtype, dims: x.dims.map(() => null) }];
  if (reps.length !== x.dims.length) fail(ctx, `repeats has ${reps.length} entries for input ${formatDims(x.dims)}`);
  return [{ dtype: x.dtype, dims: x.dims.map((d, i) => (reps[i] === 1 ? d : typeof d === 'number' ? d * reps[i] : null)) }];
}

export function padRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function resizeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  return [{ dtype: x.dtype, dims: x.dims ? x.dims.map(() => null) : null }];
}

export function sizeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  const n = x?.dims ? productDim(x.dims) : null;
  return [{ dtype: 'int64', dims: [], value: n === null ? undefined : [n] }];
}
