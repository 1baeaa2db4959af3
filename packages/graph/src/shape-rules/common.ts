/** Shared pieces of the shape rules: the types a rule sees and returns, attribute readers, axis normalisation and numpy-style broadcasting. */
import { TensorShapeError } from '@vlit/core';
import type { DecodedAttribute } from '../attributes.js';
import { type Dim, type ElementType } from '../proto.js';

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

export const MAX_TRACKED = 64;

export function fail(ctx: RuleContext, message: string, extra: Record<string, unknown> = {}): never {
  throw new TensorShapeError(`${ctx.opType} node '${ctx.nodeName}': ${message}`, {
    details: { field: ctx.nodeName, op: ctx.opType, ...extra },
  });
}

/** Format dims for messages the way ONNX tools print them. */
export function formatDims(dims: readonly Dim[] | null | undefined): string {
  if (!dims) return '[?]';
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

export function attrInt(ctx: RuleContext, name: string, fallback: number): number {
  const v = ctx.attrs[name];
  return typeof v === 'number' ? v : fallback;
}

export function attrInts(ctx: RuleContext, name: string): number[] | undefined {
  const v = ctx.attrs[name];
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
}

export function attrString(ctx: RuleContext, name: string, fallback: string): string {
  const v = ctx.attrs[name];
  return typeof v === 'string' ? v : fallback;
}

/** Known integer contents of an input, or undefined. */
export function intValues(info: TypeInfo | undefined): number[] | undefined {
  if (!info?.value) return undefined;
  return info.value.every((v) => typeof v === 'number') ? (info.value as number[]) : undefined;
}

export function normAxis(ctx: RuleContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(ctx, `axis ${axis} is out of range for rank ${rank}`, { axis, rank });
  return a;
}

export function mergeDim(a: Dim, b: Dim): Dim {
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
export function productDim(dims: Dim[]): Dim {
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

export function same(ctx: RuleContext): (TypeInfo | undefined)[] {
  const x = ctx.inputs[0];
  return [x ? { dtype: x.dtype, dims: x.dims } : undefined];
}

export function isIntType(t: ElementType): boolean {
  return t === 'int64' || t === 'int32' || t === 'int16' || t === 'int8' || t === 'uint8' || t === 'uint16' || t === 'uint32' || t === 'uint64';
}

export function axesFrom(ctx: RuleContext, inputIndex: number, attrFromOpset: number): { axes?: number[]; unknown: boolean } {
  // Older opsets carry axes as an attribute; newer ones as an int64 input.
  const attr = attrInts(ctx, 'axes');
  if (attr) return { axes: attr, unknown: false };
  if (ctx.opset >= attrFromOpset && inputIndex < ctx.inputs.length && ctx.inputs[inputIndex]) {
    const v = intValues(ctx.inputs[inputIndex]);
    return v ? { axes: v, unknown: false } : { unknown: true };
  }
  return { unknown: false };
}

export function productSum(dims: Dim[]): Dim {
  let n = 0;
  for (const d of dims) {
    if (typeof d !== 'number') return dims.length === 1 ? d : null;
    n += d;
  }
  return n;
}
