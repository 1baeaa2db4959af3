/**
 * Seeded data order for training: every epoch is a fresh shuffle drawn from one seeded stream
 * (core's xoshiro128**), batches are grouped by length so little compute goes to padding (shuffle,
 * sort windows of `bucketBatches` batches by token count, cut into batches, shuffle the batches), and
 * the position (epoch, batch index, the stream's state at the epoch's start) restores the exact order.
 * Samples that cannot train are rejects with their reason, never dropped silently.
 */
import { ConflictError, ValidationError, createRng, createRngFromState, fnv1a32, type Rng, type RngState } from '@vlit/core';
import type { EncodedSample } from '@vlit/templates';
import { z } from 'zod';

/** What the trainer needs of an encoded sample; @vlit/templates' EncodedSample satisfies it. */
export type TrainingSample = Pick<EncodedSample, 'id' | 'inputIds' | 'labels' | 'imageSpans'>;

/** Why a sample cannot train. */
export type SampleRejectReason = 'all-labels-masked' | 'too-long' | 'labels-length' | 'empty';

/** A sample left out of training, and why. */
export interface SampleReject {
  /** Position in the input list. */
  index: number;
  id: string;
  reason: SampleRejectReason;
  /** The field at fault (`labels`, `inputIds`). */
  field: string;
  message: string;
}

/** Options of createDataOrder. */
export const dataOrderOptionsSchema = z.object({
  batchSize: z.number().int().min(1),
  seed: z.union([z.number(), z.string()]),
  /** Longest sequence (tokens after image expansion) a sample may have; longer ones are rejects. */
  maxLength: z.number().int().min(1).optional(),
  /** Label value of untrained positions. */
  ignoreIndex: z.number().int().default(-100),
  /** `length`: batches of similar length; `none`: plain shuffled batches. */
  bucketing: z.enum(['length', 'none']).default('length'),
  /** Batches per length-sorting window: larger gives tighter batches and a less random order. */
  bucketBatches: z.number().int().min(1).default(16),
  /** Drop the epoch's last, smaller batch. */
  dropLast: z.boolean().default(false),
});
/** Data-order options with defaults filled in. */
export type DataOrderOptions = z.infer<typeof dataOrderOptionsSchema>;

/** Where a run is in its data: restores the same order (JSON-serialisable). */
export const dataPositionSchema = z.object({
  epoch: z.number().int().min(0),
  /** Next batch within the epoch. */
  index: z.number().int().min(0),
  /** The order stream's state at the start of `epoch`. */
  rng: z.object({
    algorithm: z.literal('xoshiro128**'),
    s: z.tuple([z.number(), z.number(), z.number(), z.number()]).readonly(),
    spareNormal: z.number().nullable(),
  }),
  /** Identity of the data and batching the position belongs to. */
  fingerprint: z.string(),
});
/** A data position. */
export type DataPosition = z.infer<typeof dataPositionSchema>;

/** One batch. */
export interface Batch<S extends TrainingSample = TrainingSample> {
  epoch: number;
  /** Batch index within the epoch. */
  index: number;
  /** Positions of the samples in the input list. */
  indices: number[];
  samples: S[];
  /** Sum of sequence lengths. */
  tokens: number;
  /** Longest sequence in the batch. */
  maxLength: number;
  /** Positions with a label (trained tokens). */
  trainedTokens: number;
}

/** A resumable, seeded stream of batches over epochs. */
export interface DataOrder<S extends TrainingSample = TrainingSample> {
  readonly options: DataOrderOptions;
  readonly rejects: readonly SampleReject[];
  /** read = used + rejected. */
  readonly counts: { read: number; used: number; rejected: number };
  readonly batchesPerEpoch: number;
  /** The position of the next batch. */
  position(): DataPosition;
  /** The next batch (moves to the next epoch after the last batch). */
  next(): Batch<S>;
}

/** Check one sample; returns why it cannot train, or null. */
export function checkTrainingSample(sample: TrainingSample, index: number, options: { maxLength?: number; ignoreIndex?: number } = {}): SampleReject | null {
  const ignore = options.ignoreIndex ?? -100;
  const reject = (reason: SampleRejectReason, field: string, message: string): SampleReject => ({ index, id: sample.id, reason, field, message });
  if (sample.inputIds.length === 0) return reject('empty', 'inputIds', 'the sample has no tokens');
  if (sample.labels.length !== sample.inputIds.length) {
    return reject('labels-length', 'labels', `labels has ${sample.labels.length} entries, inputIds ${sample.inputIds.length}`);
  }
  if (options.maxLength !== undefined && sample.inputIds.length > options.maxLength) {
    return reject('too-long', 'inputIds', `${sample.inputIds.length} tokens exceed the maximum of ${options.maxLength}`);
  }
  if (sample.labels.every((l) => l === ignore)) {
    return reject('all-labels-masked', 'labels', `every label is ${ignore}: the sample would train on nothing`);
  }
  return null;
}

/** Create a seeded data order over `samples`, optionally restored at `position`. */
export function createDataOrder<S extends TrainingSample>(
  samples: readonly S[],
  input: z.input<typeof dataOrderOptionsSchema>,
  position?: DataPosition,
): DataOrder<S> {
  const parsed = dataOrderOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(`invalid data order options: ${issue.message}`, { details: { field: issue.path.join('.'), issues: parsed.error.issues } });
  }
  const options = parsed.data;
  const rejects: SampleReject[] = [];
  const used: number[] = [];
  samples.forEach((s, i) => {
    const r = checkTrainingSample(s, i, options);
    if (r) rejects.push(r);
    else used.push(i);
  });
  const lengths = samples.map((s) => s.inputIds.length);
  const trained = samples.map((s) => s.labels.reduce((n, l) => n + (l === options.ignoreIndex ? 0 : 1), 0));

  let fp = fnv1a32(JSON.stringify([options.batchSize, options.bucketing, options.bucketBatches, options.dropLast, String(options.seed)]));
  for (const i of used) fp = fnv1a32(`${samples[i].id}\u0000${lengths[i]}\u0001`, fp);
  const fingerprint = `${used.length}-${fp.toString(16).padStart(8, '0')}`;

  const B = options.batchSize;
  const full = Math.floor(used.length / B);
  const batchesPerEpoch = options.dropLast || used.length % B === 0 ? full : full + 1;
  if (batchesPerEpoch === 0) {
    throw new ValidationError(`no batch can be formed: ${used.length} usable samples for batches of ${B}${options.dropLast ? ' with dropLast' : ''}`, {
      details: { field: 'samples', used: used.length, rejected: rejects.length },
    });
  }

  const epochOrder = (rng: Rng): number[][] => {
    const idx = rng.shuffle([...used]);
    const batches: number[][] = [];
    const window = options.bucketing === 'length' ? B * options.bucketBatches : idx.length;
    for (let w = 0; w < idx.length; w += window) {
      const chunk = idx.slice(w, w + window);
      if (options.bucketing === 'length') chunk.sort((a, b) => lengths[b] - lengths[a]);
      for (let k = 0; k < chunk.length; k += B) batches.push(chunk.slice(k, k + B));
    }
    const kept = options.dropLast ? batches.filter((b) => b.length === B) : batches;
    // Shuffle the batches so long and short ones interleave; without bucketing the order is already random.
    return options.bucketing === 'length' ? rng.shuffle(kept) : kept;
  };

  let rng: Rng;
  let epoch: number;
  let index: number;
  if (position) {
    const pos = dataPositionSchema.safeParse(position);
    if (!pos.success) {
      const issue = pos.error.issues[0];
      throw new ValidationError(`invalid data position: ${issue.message}`, { details: { field: `position.${issue.path.join('.')}` } });
    }
    if (pos.data.fingerprint !== fingerprint) {
      throw new ConflictError('the data position belongs to other data or batching (fingerprint differs)', {
        details: { field: 'position.fingerprint', expected: fingerprint, actual: pos.data.fingerprint },
      });
    }
    if (pos.data.index > batchesPerEpoch) {
      throw new ValidationError(`position index ${pos.data.index} is past the epoch's ${batchesPerEpoch} batches`, { details: { field: 'position.index' } });
    }
    rng = createRngFromState(pos.data.rng as RngState);
    epoch = pos.data.epoch;
    index = pos.data.index;
  } else {
    rng = createRng(options.seed);
    epoch = 0;
    index = 0;
  }
  let epochStart: RngState = rng.getState();
  let order = epochOrder(rng);

  return {
    options,
    rejects,
    counts: { read: samples.length, used: used.length, rejected: rejects.length },
    batchesPerEpoch,
    position: () => {
      // At an epoch boundary, report the next epoch's start so a restore does not replay the finished one.
      if (index >= order.length) return { epoch: epoch + 1, index: 0, rng: rng.getState(), fingerprint };
      return { epoch, index, rng: epochStart, fingerprint };
    },
    next(): Batch<S> {
      if (index >= order.length) {
        epoch++;
        index = 0;
        epochStart = rng.getState();
        order = epochOrder(rng);
      }
      const indices = order[index];
      const batch: Batch<S> = {
        epoch,
        index,
        indices: [...indices],
        samples: indices.map((i) => samples[i]),
        tokens: indices.reduce((n, i) => n + lengths[i], 0),
        maxLength: indices.reduce((m, i) => Math.max(m, lengths[i]), 0),
        trainedTokens: indices.reduce((n, i) => n + trained[i], 0),
      };
      index++;
      return batch;
    },
  };
}
