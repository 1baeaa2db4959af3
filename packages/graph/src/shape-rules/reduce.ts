/** Shape rules of reductions (ReduceX, ArgMax/ArgMin), Softmax and its kin, LayerNormalization and TopK. */
import { elementTypeFromOnnx, type Dim, type ElementType } from '../proto.js';
import { attrInt, intValues, normAxis, same, axesFrom, type TypeInfo, type RuleContext, type ShapeRule } from './common.js';

export function reduceRule(axesInputOpset: number, outType?: ElementType): ShapeRule {
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

export function layerNormRule(ctx: RuleContext): (TypeInfo | undefined)[] {
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

export function softmaxRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (x?.dims && x.dims.length > 0) normAxis(ctx, attrInt(ctx, 'axis', ctx.opset >= 13 ? -1 : 1), x.dims.length);
  return same(ctx);
}

export function topKRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined, undefined];
  if (!x.dims)
    return [
      { dtype: x.dtype, dims: null },
      { dtype: 'int64', dims: null },
    ];
  const axis = normAxis(ctx, attrInt(ctx, 'axis', -1), x.dims.length);
  const k = ctx.opset < 10 ? attrInt(ctx, 'k', -1) : (intValues(ctx.inputs[1])?.[0] ?? -1);
  const dims = [...x.dims];
  dims[axis] = k >= 0 ? k : null;
  return [
    { dtype: x.dtype, dims },
    { dtype: 'int64', dims: [...dims] },
  ];
}
