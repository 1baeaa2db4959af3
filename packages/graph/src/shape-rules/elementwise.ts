/** Shape rules of elementwise ops: broadcasting arithmetic (with value propagation for small integer tensors), Where, Cast, CastLike, Dropout. */
import { elementTypeFromOnnx, type Dim, type ElementType } from '../proto.js';
import { fail, attrInt, broadcastShapes, isIntType, type TypeInfo, type RuleContext, type ShapeRule } from './common.js';

export function broadcastRule(outType?: ElementType): ShapeRule {
  return (ctx) => {
    const ins = ctx.inputs.filter((x): x is TypeInfo => x !== undefined);
    if (ins.length !== ctx.inputs.length || ins.length === 0) {
      const first = ctx.inputs[0];
      return [first || outType ? { dtype: outType ?? first!.dtype, dims: null } : undefined];
    }
    const dims = broadcastShapes(
      ctx,
      ins.map((i) => i.dims),
    );
    return [{ dtype: outType ?? ins[0].dtype, dims }];
  };
}

export function valueArith(ctx: RuleContext, op: (a: number, b: number) => number): Dim[] | undefined {
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

export function arithRule(op: (a: number, b: number) => number): ShapeRule {
  const base = broadcastRule();
  return (ctx) => {
    const [out] = base(ctx);
    const value = out && isIntType(out.dtype) ? valueArith(ctx, op) : undefined;
    return [out && value ? { ...out, value } : out];
  };
}

export function castRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  const to = elementTypeFromOnnx(attrInt(ctx, 'to', 0));
  const keep = x?.value && isIntType(to) ? x.value : undefined;
  return [{ dtype: to, dims: x ? x.dims : null, value: keep }];
}

export function whereRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [c, x, y] = ctx.inputs;
  const dtype = x?.dtype ?? y?.dtype;
  if (!dtype) return [undefined];
  if (!c || !x || !y) return [{ dtype, dims: null }];
  if (c.dtype !== 'bool') fail(ctx, `condition must be bool, got ${c.dtype}`);
  if (x.dtype !== y.dtype) fail(ctx, `X is ${x.dtype} but Y is ${y.dtype}`);
  return [{ dtype, dims: broadcastShapes(ctx, [c.dims, x.dims, y.dims]) }];
}

export function dropoutRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  if (!x) return [undefined];
  return [
    { dtype: x.dtype, dims: x.dims },
    { dtype: 'bool', dims: x.dims },
  ];
}

export function castLikeRule(ctx: RuleContext): (TypeInfo | undefined)[] {
  const [x, like] = ctx.inputs;
  if (!like) return [undefined];
  return [{ dtype: like.dtype, dims: x ? x.dims : null }];
}
