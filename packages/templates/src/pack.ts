import { InvalidArgumentError } from '@vlit/core';
import type { EncodedSample, ImageSpan } from './encode.js';

/** One sample's place inside a packed sequence. */
export interface PackedSampleSlot {
  id: string;
  /** [start, end) in the packed sequence. */
  start: number;
  end: number;
}

/**
 * The attention of a packed sequence: tokens attend (causally) only within their own block, so samples
 * never see each other. `cuSeqlens` is the same thing in FlashAttention's varlen form.
 */
export interface BlockDiagonalAttention {
  kind: 'block-diagonal-causal';
  blocks: Array<{ start: number; end: number }>;
  cuSeqlens: number[];
}

/** Several samples in one sequence. */
export interface PackedSequence {
  inputIds: number[];
  labels: number[];
  /** Restart at 0 for every sample (padding gets 0 too). */
  positionIds: number[];
  /** 1 for sample tokens, 0 for padding. */
  attentionMask: number[];
  samples: PackedSampleSlot[];
  /** Image spans, shifted into the packed sequence, with the sample they belong to. */
  imageSpans: Array<ImageSpan & { sampleId: string }>;
  attention: BlockDiagonalAttention;
}

/** Options of packSamples. */
export interface PackOptions {
  /** Length of every packed sequence. */
  maxLength: number;
  /** `first-fit-decreasing` (default: fewer sequences) or `first-fit` (keeps input order within a sequence). */
  strategy?: 'first-fit-decreasing' | 'first-fit';
  /** When set, pad every sequence to maxLength with this id (labels get ignoreIndex). */
  padTokenId?: number;
  ignoreIndex?: number;
}

/** Result of packSamples; every input sample is either packed whole or rejected as too long. */
export interface PackResult {
  sequences: PackedSequence[];
  rejects: Array<{ id: string; reason: string; field: string }>;
  /** Sample tokens / (sequences * maxLength): how much of the budget holds real tokens. */
  efficiency: number;
  counts: { read: number; packed: number; rejected: number };
}

/** Pack encoded samples into sequences of at most maxLength tokens; samples are never split. */
export function packSamples(samples: readonly EncodedSample[], options: PackOptions): PackResult {
  const { maxLength } = options;
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new InvalidArgumentError(`maxLength must be a positive integer, got ${String(maxLength)}`, { details: { field: 'maxLength' } });
  }
  const ignore = options.ignoreIndex ?? -100;
  const rejects: PackResult['rejects'] = [];
  const fitting: EncodedSample[] = [];
  for (const s of samples) {
    if (s.inputIds.length > maxLength) {
      rejects.push({ id: s.id, reason: `${s.inputIds.length} tokens exceed the pack length ${maxLength}`, field: 'inputIds' });
    } else if (s.inputIds.length > 0) fitting.push(s);
    else rejects.push({ id: s.id, reason: 'empty sample', field: 'inputIds' });
  }
  const order = fitting.map((_, i) => i);
  if ((options.strategy ?? 'first-fit-decreasing') === 'first-fit-decreasing') {
    order.sort((a, b) => fitting[b].inputIds.length - fitting[a].inputIds.length || a - b);
  }
  // First fit over bins; free space per bin is scanned linearly, fine for thousands of sequences.
  const bins: number[][] = [];
  const free: number[] = [];
  for (const i of order) {
    const len = fitting[i].inputIds.length;
    let b = free.findIndex((f) => f >= len);
    if (b === -1) {
      b = bins.length;
      bins.push([]);
      free.push(maxLength);
    }
    bins[b].push(i);
    free[b] -= len;
  }
  let used = 0;
  const sequences = bins.map((bin) => {
    const seq: PackedSequence = {
      inputIds: [],
      labels: [],
      positionIds: [],
      attentionMask: [],
      samples: [],
      imageSpans: [],
      attention: { kind: 'block-diagonal-causal', blocks: [], cuSeqlens: [0] },
    };
    for (const i of bin) {
      const s = fitting[i];
      const offset = seq.inputIds.length;
      for (let t = 0; t < s.inputIds.length; t++) {
        seq.inputIds.push(s.inputIds[t]);
        seq.labels.push(s.labels[t]);
        seq.positionIds.push(t);
        seq.attentionMask.push(1);
      }
      const end = offset + s.inputIds.length;
      seq.samples.push({ id: s.id, start: offset, end });
      seq.attention.blocks.push({ start: offset, end });
      seq.attention.cuSeqlens.push(end);
      for (const span of s.imageSpans) {
        seq.imageSpans.push({ imageIndex: span.imageIndex, start: span.start + offset, end: span.end + offset, sampleId: s.id });
      }
    }
    used += seq.inputIds.length;
    if (options.padTokenId !== undefined) {
      while (seq.inputIds.length < maxLength) {
        seq.inputIds.push(options.padTokenId);
        seq.labels.push(ignore);
        seq.positionIds.push(0);
        seq.attentionMask.push(0);
      }
    }
    return seq;
  });
  return {
    sequences,
    rejects,
    efficiency: sequences.length ? used / (sequences.length * maxLength) : 0,
    counts: { read: samples.length, packed: fitting.length, rejected: rejects.length },
  };
}
