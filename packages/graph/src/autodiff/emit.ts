/**
 * The small op vocabulary gradient rules are written in: every call appends one typed node to a
 * ModelEditor and returns its output name, emitting the form the model's opset expects (axes as
 * inputs from opset 13 for ReduceSum/Squeeze/Unsqueeze/Split, from 18 for ReduceMean).
 */
import { UnsupportedError, createTensor, float32ToFloat16, type Tensor } from '@vlit/core';
import type { Attributes } from '../builder.js';
import type { Dim, ElementType } from '../proto.js';
import type { ModelEditor } from './editor.js';

/** One piece of a shape vector: a fixed size, or dims [start, end) of a value's runtime shape. */
export type ShapePart = number | { of: string; start: number; end: number };

function floatScalar(dtype: ElementType, v: number, dims: number[] = []): Tensor {
  if (dtype === 'float64') return createTensor('float64', dims, [v]);
  if (dtype === 'float16') return createTensor('float16', dims, new Uint16Array([float32ToFloat16(v)]));
  if (dtype === 'float32') return createTensor('float32', dims, [v]);
  throw new UnsupportedError(`gradients need a float element type, got ${dtype}`, { details: { field: 'dtype' } });
}

/** Emits nodes under one name prefix; constants and shapes are shared rather than repeated. */
export class Emitter {
  private readonly constants = new Map<string, string>();
  private readonly shapes = new Map<string, string>();
  /** Prefix of node names for the node being differentiated (set by the gradient builder). */
  scope = 'grad';

  constructor(readonly editor: ModelEditor) {}

  get opset(): number {
    return this.editor.opset;
  }

  /** Dims of a value, or null when its rank is unknown. */
  dims(name: string): Dim[] | null {
    return this.editor.typeOf(name)?.dims ?? null;
  }

  dtype(name: string): ElementType {
    return this.editor.typeOf(name)?.dtype ?? 'undefined';
  }

  /** One node with one output. */
  op(opType: string, inputs: (string | null)[], attrs: Attributes = {}, outputTypes?: { dtype: ElementType; dims: readonly Dim[] }[]): string {
    const name = this.editor.freshName(`${this.scope}/${opType}`);
    return this.editor.op(opType, inputs, attrs, { name, outputTypes }).name;
  }

  /** Several outputs. */
  opN(opType: string, inputs: (string | null)[], attrs: Attributes, count: number): string[] {
    const name = this.editor.freshName(`${this.scope}/${opType}`);
    return this.editor.op(opType, inputs, attrs, { name, outputs: count }).map((v) => v.name);
  }

  /** A float scalar constant of the given dtype (shared per dtype and value). */
  scalar(dtype: ElementType, v: number): string {
    const key = `${dtype}:${v}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.editor.initializer(this.editor.freshName('grad/const'), floatScalar(dtype, v)).name;
      this.constants.set(key, name);
    }
    return name;
  }

  /** A 1-D int64 constant (shared per contents). */
  ints(values: readonly number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.editor.initializer(
        this.editor.freshName('grad/const'),
        createTensor(
          'int64',
          [values.length],
          values.map((v) => BigInt(v)),
        ),
      ).name;
      this.constants.set(key, name);
    }
    return name;
  }

  /** An int64 scalar constant. */
  int64Scalar(v: number): string {
    const key = `i64s:${v}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.editor.initializer(this.editor.freshName('grad/const'), createTensor('int64', [], [BigInt(v)])).name;
      this.constants.set(key, name);
    }
    return name;
  }

  /** A zero-filled tensor of `dtype` with the runtime shape `shape` (an int64 vector value). */
  zeros(shape: string, dtype: ElementType): string {
    return this.filled(shape, dtype, 0);
  }

  /** A tensor of `dtype` with the runtime shape `shape`, every element `v`. */
  filled(shape: string, dtype: ElementType, v: number): string {
    return this.op('ConstantOfShape', [shape], { value: floatScalar(dtype, v, [1]) });
  }

  /** The runtime shape of a value, computed once. */
  shapeOf(x: string): string {
    let s = this.shapes.get(x);
    if (!s) {
      s = this.op('Shape', [x]);
      this.shapes.set(x, s);
    }
    return s;
  }

  /** A shape vector from fixed sizes and slices of runtime shapes; a constant when all parts are fixed or statically known. */
  shapeVector(parts: readonly ShapePart[]): string {
    const flat: (number | { of: string; start: number; end: number })[] = [];
    for (const p of parts) {
      if (typeof p === 'number') flat.push(p);
      else {
        const d = this.dims(p.of);
        const known = d?.slice(p.start, p.end);
        if (known && known.length === p.end - p.start && known.every((x): x is number => typeof x === 'number')) flat.push(...known);
        else flat.push(p);
      }
    }
    if (flat.every((p): p is number => typeof p === 'number')) return this.ints(flat);
    const pieces: string[] = [];
    let run: number[] = [];
    for (const p of flat) {
      if (typeof p === 'number') run.push(p);
      else {
        if (run.length) pieces.push(this.ints(run));
        run = [];
        pieces.push(this.slice(this.shapeOf(p.of), [p.start], [p.end], [0]));
      }
    }
    if (run.length) pieces.push(this.ints(run));
    return pieces.length === 1 ? pieces[0] : this.op('Concat', pieces, { axis: 0 });
  }

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  neg(a: string): string {
    return this.op('Neg', [a]);
  }
  matMul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }
  transpose(x: string, perm: readonly number[]): string {
    return this.op('Transpose', [x], { perm: { kind: 'ints', value: [...perm] } });
  }
  reshape(x: string, shape: string): string {
    return this.op('Reshape', [x, shape]);
  }
  /** Reshape `x` to the shape of `like` (a constant when `like`'s dims are all known). */
  reshapeLike(x: string, like: string): string {
    const d = this.dims(like);
    if (d && d.every((v): v is number => typeof v === 'number')) return this.reshape(x, this.ints(d));
    return this.reshape(x, this.shapeOf(like));
  }
  expand(x: string, shape: string): string {
    return this.op('Expand', [x, shape]);
  }
  cast(x: string, to: ElementType): string {
    return this.op('Cast', [x], { to: castCode(to) });
  }
  slice(x: string, starts: number[], ends: number[], axes: number[]): string {
    return this.op('Slice', [x, this.ints(starts), this.ints(ends), this.ints(axes)]);
  }
  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    if (this.opset >= 13) return this.op('ReduceSum', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op('ReduceSum', [x], { axes: { kind: 'ints', value: [...axes] }, keepdims: keepdims ? 1 : 0 });
  }
  unsqueeze(x: string, axes: readonly number[]): string {
    if (this.opset >= 13) return this.op('Unsqueeze', [x, this.ints(axes)]);
    return this.op('Unsqueeze', [x], { axes: { kind: 'ints', value: [...axes] } });
  }

  /**
   * Sum `g` (a gradient with the broadcast result's shape) down to the shape of `target`: over the
   * leading dims `target` lacks and over dims where `target` has size 1. Summing over a size-1 dim
   * that was not broadcast is a no-op, so only `target`'s dims need to be known, not the result's.
   */
  unbroadcast(g: string, target: string, node: string): string {
    const td = this.dims(target);
    const gd = this.dims(g);
    if (!td || !gd) {
      throw new UnsupportedError(`cannot reduce the gradient of node '${node}' to the shape of '${target}': its rank is unknown`, {
        details: { field: node, name: target },
      });
    }
    const lead = gd.length - td.length;
    const axes: number[] = [];
    for (let i = 0; i < lead; i++) axes.push(i);
    td.forEach((d, i) => {
      if (d === 1 && gd[i + lead] !== 1) axes.push(i + lead);
    });
    if (axes.length === 0 && lead === 0) return g;
    const r = this.reduceSum(g, axes, true);
    return lead === 0 ? r : this.reshapeLike(r, target);
  }
}

const CAST_CODES: Record<string, number> = { float32: 1, int64: 7, float16: 10, float64: 11, bfloat16: 16 };

function castCode(to: ElementType): number {
  const code = CAST_CODES[to];
  if (code === undefined) throw new UnsupportedError(`cannot cast a gradient to ${to}`, { details: { field: 'dtype' } });
  return code;
}

/** True for element types gradients flow through. */
export function isFloatType(t: ElementType): boolean {
  return t === 'float32' || t === 'float64' || t === 'float16' || t === 'bfloat16';
}
