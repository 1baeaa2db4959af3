/**
 * A batch of encoded samples as the training graph's feeds: right-padded ids and attention mask, the
 * splice index that puts each image's projected tokens at its span, positions, and the flat
 * positions / targets of every trained next-token prediction (labels shifted as transformers does).
 */
import { TensorShapeError, createTensor, type Tensor } from '@vlit/core';
import { collateBatch } from '../data/collate.js';
import type { TrainingSample } from '../data/order.js';
import type { Dim } from '@vlit/graph';
import { TRAINING_IO, type TrainingGraph } from './training-graph.js';

/** Options of prepareTrainingFeeds. */
export interface TrainingFeedOptions {
  /** Id written at padded positions (never attended, never trained). Default 0. */
  padTokenId?: number;
  /** Label of untrained positions. Default -100. */
  ignoreIndex?: number;
}

/** Feeds of one micro-batch, without the parameters. */
export interface TrainingFeeds {
  readonly feeds: Record<string, Tensor>;
  /** Real tokens (sum of sequence lengths). */
  readonly tokens: number;
  /** Next-token predictions that count in the loss. */
  readonly trainedTokens: number;
  readonly images: number;
  /** [batch, seq] of the padded batch. */
  readonly shape: readonly [number, number];
}

function imageDims(t: Tensor<'float32'>, want: readonly Dim[], record: string, image: number): number[] {
  const d = t.dims.length === want.length + 1 && t.dims[0] === 1 ? t.dims.slice(1) : [...t.dims];
  if (d.length !== want.length || d.some((v, i) => typeof want[i] === 'number' && v !== want[i])) {
    throw new TensorShapeError(`image ${image} of sample ${record} is [${t.dims.join(', ')}], the training graph takes [${want.join(', ')}] per image`, {
      details: { record, field: `images.${image}`, left: `[${t.dims.join(', ')}]`, right: `[${want.join(', ')}]` },
    });
  }
  return d;
}

/**
 * Build the feeds of `samples` (features[i][k] is image k of sample i: its features [tokens, dim] from
 * the encoder or the feature cache, or its pixels [channels, height, width] when the encoder is in the
 * graph). A span whose length is not the connector's token count, an image of another shape, or a
 * span without an image is a TensorShapeError naming the record and image.
 */
export function prepareTrainingFeeds(
  graph: Pick<TrainingGraph, 'imageInput' | 'imageDims' | 'projectedTokens' | 'forward'>,
  samples: readonly TrainingSample[],
  features: readonly (readonly Tensor<'float32'>[])[],
  options: TrainingFeedOptions = {},
): TrainingFeeds {
  const ignore = options.ignoreIndex ?? -100;
  const c = collateBatch(samples, { padTokenId: options.padTokenId ?? 0, ignoreIndex: ignore, padSide: 'right' });
  const [B, S] = c.inputIds.dims as [number, number];
  const ids = c.inputIds.data;
  const labels = c.labels.data;
  // Every image of the batch, row by row, in image-index order.
  const stacked: Tensor<'float32'>[] = [];
  const first = new Map<number, number>();
  let dims: number[] | undefined;
  samples.forEach((s, b) => {
    const f = features[b] ?? [];
    first.set(b, stacked.length);
    f.forEach((t, k) => {
      const d = imageDims(t, graph.imageDims, s.id, k);
      if (dims !== undefined && d.some((v, i) => v !== (dims as number[])[i])) {
        throw new TensorShapeError(`image ${k} of sample ${s.id} is [${d.join(', ')}], other images of the batch [${dims.join(', ')}]`, {
          details: { record: s.id, field: `images.${k}` },
        });
      }
      dims = d;
      stacked.push(t);
    });
  });
  const perImage = dims ?? graph.imageDims.map((v) => (typeof v === 'number' ? v : 1));
  const size = perImage.reduce((a, b) => a * b, 1);
  // Features: the token count is the first dim; pixels: the connector's count does not depend on it.
  const projected = stacked.length ? graph.projectedTokens(perImage[0]) : 0;
  const splice = new BigInt64Array(B * S);
  for (let i = 0; i < splice.length; i++) splice[i] = BigInt(i);
  c.imageSpans.forEach((spans, b) => {
    const s = samples[b];
    spans.forEach((span, j) => {
      const f = features[b]?.[span.imageIndex];
      if (!f) {
        throw new TensorShapeError(`sample ${s.id} has an image span for image ${span.imageIndex} but no features for it`, {
          details: { record: s.id, field: `imageSpans.${j}` },
        });
      }
      if (span.end - span.start !== projected) {
        throw new TensorShapeError(`sample ${s.id}: image span ${j} holds ${span.end - span.start} tokens, the connector makes ${projected} per image`, {
          details: { record: s.id, field: `imageSpans.${j}`, left: span.end - span.start, right: projected },
        });
      }
      const g = (first.get(b) as number) + span.imageIndex;
      for (let t = 0; t < projected; t++) {
        const at = b * S + span.start + t;
        splice[at] = BigInt(B * S + g * projected + t);
        // The id there is never read (the image token replaces it), but it must index the embedding table.
        ids[at] = 0n;
      }
    });
  });
  const positions = new BigInt64Array(B * S);
  for (let b = 0; b < B; b++) for (let t = 0; t < S; t++) positions[b * S + t] = BigInt(t);
  const trainedAt: bigint[] = [];
  const targets: bigint[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < S; t++) {
      const y = labels[b * S + t + 1];
      if (y !== BigInt(ignore)) {
        trainedAt.push(BigInt(b * S + t));
        targets.push(y);
      }
    }
  }
  const data = new Float32Array(stacked.length * size);
  stacked.forEach((t, i) => data.set(t.data.subarray(0, size), i * size));
  const feeds: Record<string, Tensor> = {
    [TRAINING_IO.inputIds]: c.inputIds,
    [graph.imageInput]: createTensor('float32', [stacked.length, ...perImage], data),
    [TRAINING_IO.spliceIndex]: createTensor('int64', [B * S], splice),
    [TRAINING_IO.attentionMask]: c.attentionMask,
    [TRAINING_IO.trainedPositions]: createTensor('int64', [trainedAt.length], BigInt64Array.from(trainedAt)),
    [TRAINING_IO.targets]: createTensor('int64', [targets.length], BigInt64Array.from(targets)),
  };
  if (graph.forward.graph?.input.some((v) => v.name === TRAINING_IO.positionIds)) {
    feeds[TRAINING_IO.positionIds] = createTensor('int64', [B, S], positions);
  }
  return { feeds, tokens: c.tokens, trainedTokens: trainedAt.length, images: stacked.length, shape: [B, S] };
}
