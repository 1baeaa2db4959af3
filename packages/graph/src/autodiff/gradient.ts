/**
 * Reverse-mode automatic differentiation over ONNX graphs: from a forward model, a scalar loss and
 * the tensors to differentiate, build one model that computes the loss and its gradients with
 * standard ONNX ops only, so any ONNX runtime (native or wasm) can train without training kernels.
 */
import { InvalidArgumentError, NotFoundError, UnsupportedError } from '@vlit/core';
import { decodeAttributes } from '../attributes.js';
import type { GraphProto, NodeProto, OnnxModel } from '../proto.js';
import { editModel, pruneModel } from './editor.js';
import { Emitter, isFloatType } from './emit.js';
import { getGradientRule } from './rules.js';

/** Options for buildGradientModel. */
export interface GradientModelOptions {
  /** Name of the scalar loss value (any value of the graph; it becomes an output if it is not one). */
  loss: string;
  /** Values to differentiate: graph inputs, initializers, or any float value of the graph. */
  wrt: readonly string[];
  /** Output name of each gradient (default `grad.<name>`). */
  gradientName?: (name: string) => string;
  /** Other values of the forward graph to keep as outputs (default none: only the loss and gradients). */
  keep?: readonly string[];
}

/** Default output name of the gradient of `name`. */
export function gradientName(name: string): string {
  return `grad.${name}`;
}

/**
 * Build a model whose outputs are the loss, the values in `keep`, and the gradient of the loss
 * with respect to each `wrt` value (`grad.<name>`, same dtype and shape). Gradients of a value used
 * by several nodes are summed; nodes the outputs do not need are pruned. A `wrt` value the loss does
 * not depend on gets a zero gradient. An op on the path from `wrt` to the loss without a rule is an
 * UnsupportedError naming the op type and the node.
 */
export function buildGradientModel(model: OnnxModel, options: GradientModelOptions): OnnxModel {
  const editor = editModel(model);
  if (editor.opset < 13) {
    throw new UnsupportedError(`gradients need opset 13 or newer (axes as inputs); the model uses ${editor.opset}`, { details: { field: 'opset_import' } });
  }
  const { loss, wrt } = options;
  const nameOf = options.gradientName ?? gradientName;
  if (!editor.has(loss)) throw new NotFoundError(`no value named '${loss}' to use as the loss`, { details: { field: 'loss', name: loss } });
  const lossType = editor.typeOf(loss);
  if (!lossType || !isFloatType(lossType.dtype)) {
    throw new InvalidArgumentError(`the loss '${loss}' must be a float tensor, got ${lossType?.dtype ?? 'an unknown type'}`, { details: { field: 'loss' } });
  }
  if (lossType.dims && lossType.dims.some((d) => d !== 1)) {
    throw new InvalidArgumentError(`the loss '${loss}' must be a scalar, got dims [${lossType.dims.join(', ')}]`, { details: { field: 'loss' } });
  }
  if (wrt.length === 0) throw new InvalidArgumentError('wrt names no value to differentiate', { details: { field: 'wrt' } });
  if (new Set(wrt).size !== wrt.length) throw new InvalidArgumentError('wrt repeats a name', { details: { field: 'wrt' } });
  for (const w of wrt) {
    if (!editor.has(w)) throw new NotFoundError(`no value named '${w}' to differentiate`, { details: { field: 'wrt', name: w } });
    const t = editor.typeOf(w);
    if (!t || !isFloatType(t.dtype)) {
      throw new InvalidArgumentError(`'${w}' is ${t?.dtype ?? 'of unknown type'}; only float values have gradients`, { details: { field: 'wrt', name: w } });
    }
  }
  const forward = editor.toModel().graph as GraphProto;
  const nodes: NodeProto[] = forward.node;

  // Values that depend on wrt (through float values only: integer and bool values carry no gradient).
  const active = new Set<string>(wrt);
  for (const n of nodes) {
    if (!n.input.some((i) => i && active.has(i))) continue;
    for (const o of n.output) if (o && isFloatType(editor.typeOf(o)?.dtype ?? 'undefined')) active.add(o);
  }
  // Values the loss depends on.
  const needed = new Set<string>([loss]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (n.output.some((o) => o && needed.has(o))) for (const x of n.input) if (x) needed.add(x);
  }
  const onPath = (name: string) => active.has(name) && needed.has(name);

  const em = new Emitter(editor);
  const contributions = new Map<string, string[]>();
  const gradientOf = (name: string): string | undefined => {
    const parts = contributions.get(name);
    if (!parts || parts.length === 0) return undefined;
    if (parts.length > 1) {
      let sum = parts[0];
      for (let i = 1; i < parts.length; i++) sum = em.add(sum, parts[i]);
      contributions.set(name, [sum]);
    }
    return contributions.get(name)![0];
  };

  if (onPath(loss)) {
    em.scope = 'grad/seed';
    const ld = lossType.dims;
    const seed = ld && ld.every((d) => d === 1) ? em.reshape(em.scalar(lossType.dtype, 1), em.ints(ld as number[])) : null;
    contributions.set(loss, [seed ?? em.filled(em.shapeOf(loss), lossType.dtype, 1)]);
  }

  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.output.some((o) => o && onPath(o))) continue;
    const dOut = n.output.map((o) => (o && onPath(o) ? gradientOf(o) : undefined));
    if (dOut.every((d) => d === undefined)) continue;
    const needs = n.input.map((x) => !!x && active.has(x));
    if (!needs.some(Boolean)) continue;
    const nodeName = n.name || n.output[0] || n.opType;
    const rule = getGradientRule(n.opType, n.domain ?? '');
    if (!rule) {
      const w = wrt.filter((x) => active.has(x));
      throw new UnsupportedError(
        `no gradient rule for ${n.domain ? `${n.domain}.` : ''}${n.opType} (node '${nodeName}'), which lies on the path from ${w.join(', ')} to the loss '${loss}'`,
        { details: { field: nodeName, op: n.opType, node: nodeName } },
      );
    }
    if (n.output.length > 1 && dOut.slice(1).some((d) => d !== undefined) && n.opType !== 'LayerNormalization') {
      throw new UnsupportedError(`cannot differentiate ${n.opType} node '${nodeName}' through its output 1 or later`, {
        details: { field: nodeName, op: n.opType, node: nodeName },
      });
    }
    em.scope = `grad/${nodeName}`;
    const grads = rule({ em, node: n, nodeName, attrs: decodeAttributes(n.attribute ?? []), dOut, needs: (k) => needs[k] ?? false });
    n.input.forEach((x, k) => {
      const g = grads[k];
      if (!x || !g || !needs[k]) return;
      const list = contributions.get(x) ?? [];
      list.push(g);
      contributions.set(x, list);
    });
  }

  const outputs: string[] = [];
  const present = new Set(forward.output.map((o) => o.name));
  const want = [loss, ...(options.keep ?? []).filter((k) => k !== loss)];
  for (const name of want) {
    if (!editor.has(name)) throw new NotFoundError(`no value named '${name}' to keep`, { details: { field: 'keep', name } });
    if (!present.has(name)) editor.output(name);
    outputs.push(name);
  }
  em.scope = 'grad/out';
  for (const w of wrt) {
    const out = nameOf(w);
    if (editor.has(out))
      throw new InvalidArgumentError(`the gradient output name '${out}' is already used in the model`, { details: { field: 'gradientName', name: out } });
    const t = editor.typeOf(w)!;
    const g = gradientOf(w) ?? em.zeros(em.shapeOf(w), t.dtype);
    // Declare the gradient with its value's exact type: rules reach it through ops whose shape inference may lose dims.
    const typed = t.dims
      ? editor.op('Identity', [g], {}, { outputs: [out], outputTypes: [{ dtype: t.dtype, dims: t.dims }] })[0]
      : editor.op('Identity', [g], {}, { outputs: [out] })[0];
    editor.output(typed);
    outputs.push(out);
  }
  return pruneModel(editor.toModel(), { outputs });
}
