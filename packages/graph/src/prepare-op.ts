/**
 * The step the graph builder and the model editor share when they add an op: encode its attributes and
 * type its outputs, so both give the same types and the same error for an op without a shape rule.
 */
import { UnsupportedError } from '@vlit/core';
import { decodeAttributes, encodeAttribute, type AttributeValue } from './attributes.js';
import type { Attributes, OpOptions } from './builder.js';
import type { AttributeProto } from './proto.js';
import { getShapeRule, type TypeInfo } from './shape-rules/index.js';

/** An op about to be added, with its node name and input names already resolved ('' for a skipped input). */
export interface PendingOp {
  readonly opType: string;
  readonly nodeName: string;
  readonly inputNames: readonly string[];
  readonly attributes: Attributes;
  readonly options: OpOptions;
}

/** How many outputs `options.outputs` asks for (a count or a list of names; 1 when absent). */
export function outputCount(options: OpOptions): number {
  return typeof options.outputs === 'number' ? options.outputs : (options.outputs?.length ?? 1);
}

/**
 * Encode an op's attributes and type its outputs: `options.outputTypes` when given, else the op's shape
 * rule at the graph's opset (version 1 for a custom domain) over the input types the graph knows.
 */
export function prepareOp(
  op: PendingOp,
  graph: { readonly opset: number; readonly types: ReadonlyMap<string, TypeInfo> },
): { attrs: AttributeProto[]; outTypes: (TypeInfo | undefined)[] } {
  const { opType, nodeName, options } = op;
  const attrs = Object.entries(op.attributes)
    .filter((e): e is [string, AttributeValue] => e[1] !== undefined)
    .map(([k, v]) => encodeAttribute(k, v, nodeName));
  if (options.outputTypes) return { attrs, outTypes: options.outputTypes.map((t) => ({ dtype: t.dtype, dims: [...t.dims] })) };
  const domain = options.domain ?? '';
  const rule = getShapeRule(opType, domain);
  if (!rule) {
    throw new UnsupportedError(`no shape rule for ${domain ? `${domain}.` : ''}${opType} (node '${nodeName}'); pass options.outputTypes`, {
      details: { field: nodeName, op: opType },
    });
  }
  const outTypes = rule({
    opType,
    nodeName,
    opset: domain ? 1 : graph.opset,
    inputs: op.inputNames.map((n) => (n ? graph.types.get(n) : undefined)),
    attrs: decodeAttributes(attrs),
    outputCount: outputCount(options),
  });
  return { attrs, outTypes };
}
