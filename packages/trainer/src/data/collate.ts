/**
 * Padding a batch of encoded samples into rectangular tensors for a training graph. Padded positions
 * get attention 0 and label `ignoreIndex`, so they never count in the loss; with left padding the
 * image spans move with their tokens.
 */
import { InvalidArgumentError, createTensor, type Tensor } from '@vlit/core';
import type { ImageSpan } from '@vlit/templates';
import type { TrainingSample } from './order.js';

/** Options of collateBatch. */
export interface CollateOptions {
  padTokenId: number;
  ignoreIndex?: number;
  /** Default `right`. */
  padSide?: 'left' | 'right';
  /** Round the padded length up to a multiple of this (fewer distinct shapes). Default 1. */
  padToMultipleOf?: number;
}

/** A padded batch. */
export interface CollatedBatch {
  /** [B, T] int64. */
  inputIds: Tensor<'int64'>;
  /** [B, T] int64. */
  labels: Tensor<'int64'>;
  /** [B, T] int64, 1 on real tokens. */
  attentionMask: Tensor<'int64'>;
  /** Image spans per row, in padded coordinates. */
  imageSpans: ImageSpan[][];
  /** Real tokens in the batch. */
  tokens: number;
  /** Positions with a label. */
  trainedTokens: number;
}

/** Pad samples to one length (the longest, rounded up to padToMultipleOf). */
export function collateBatch(samples: readonly TrainingSample[], options: CollateOptions): CollatedBatch {
  if (samples.length === 0) throw new InvalidArgumentError('cannot collate an empty batch', { details: { field: 'samples' } });
  const ignore = options.ignoreIndex ?? -100;
  const multiple = options.padToMultipleOf ?? 1;
  if (!Number.isInteger(multiple) || multiple < 1) {
    throw new InvalidArgumentError(`padToMultipleOf must be a positive integer, got ${multiple}`, { details: { field: 'padToMultipleOf' } });
  }
  const longest = Math.max(...samples.map((s) => s.inputIds.length));
  const T = Math.ceil(longest / multiple) * multiple;
  const n = samples.length * T;
  const ids = new BigInt64Array(n).fill(BigInt(options.padTokenId));
  const labels = new BigInt64Array(n).fill(BigInt(ignore));
  const mask = new BigInt64Array(n);
  let tokens = 0;
  let trainedTokens = 0;
  const imageSpans = samples.map((s, row) => {
    if (s.labels.length !== s.inputIds.length) {
      throw new InvalidArgumentError(`sample ${s.id}: labels and inputIds differ in length`, { details: { record: s.id, field: 'labels' } });
    }
    const offset = options.padSide === 'left' ? T - s.inputIds.length : 0;
    for (let t = 0; t < s.inputIds.length; t++) {
      const at = row * T + offset + t;
      ids[at] = BigInt(s.inputIds[t]);
      labels[at] = BigInt(s.labels[t]);
      mask[at] = 1n;
      if (s.labels[t] !== ignore) trainedTokens++;
    }
    tokens += s.inputIds.length;
    return s.imageSpans.map((sp) => ({ imageIndex: sp.imageIndex, start: sp.start + offset, end: sp.end + offset }));
  });
  const dims = [samples.length, T];
  return {
    inputIds: createTensor('int64', dims, ids),
    labels: createTensor('int64', dims, labels),
    attentionMask: createTensor('int64', dims, mask),
    imageSpans,
    tokens,
    trainedTokens,
  };
}
