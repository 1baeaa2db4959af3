/**
 * Training metrics records (one JSON object per optimiser step) and the typed error for a loss that
 * is NaN or infinite. Browser-safe; the JSONL file writer is at `@vlit/trainer/node`.
 */
import { ValidationError, isVlitError } from '@vlit/core';
import { z } from 'zod';

// NaN and ±Infinity are facts worth logging (they become null in JSON); z.number() would reject them.
const anyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');

/** One line of the metrics JSONL. Extra numeric fields (eval scores, memory) are kept. */
export const metricsRecordSchema = z.looseObject({
  step: z.number().int().min(0),
  loss: anyNumber,
  lr: anyNumber,
  /** Pre-clip global gradient norm. */
  gradNorm: anyNumber.nullable().optional(),
  tokensPerSecond: anyNumber.optional(),
  samplesPerSecond: anyNumber.optional(),
  epoch: z.number().optional(),
  stage: z.string().optional(),
});
/** A metrics record. */
export type MetricsRecord = z.infer<typeof metricsRecordSchema>;

/** `details.reason` of the error assertFiniteLoss throws. */
export const NON_FINITE_LOSS = 'non-finite-loss';

/** A loss that is NaN or ±Infinity; `details.step` names the optimiser step, `details.value` the loss. */
export class NonFiniteLossError extends ValidationError {
  constructor(step: number, value: number, stage?: string) {
    super(`the loss is ${value} at step ${step}${stage ? ` of stage ${stage}` : ''}; training stopped (lower the lr, check the data and label masks)`, {
      details: { field: 'loss', step, value: String(value), reason: NON_FINITE_LOSS, ...(stage !== undefined ? { stage } : {}) },
    });
    this.name = 'NonFiniteLossError';
  }
}

/** True for a NonFiniteLossError, also one thrown by another copy of this package. */
export function isNonFiniteLossError(err: unknown): err is NonFiniteLossError {
  return isVlitError(err, 'VLIT_VALIDATION') && err.details.reason === NON_FINITE_LOSS;
}

/** Throw NonFiniteLossError when `loss` is NaN or infinite. */
export function assertFiniteLoss(loss: number, step: number, stage?: string): void {
  if (!Number.isFinite(loss)) throw new NonFiniteLossError(step, loss, stage);
}

/** One JSONL line for a record (validated; non-finite numbers become null, as JSON has no NaN). */
export function formatMetricsLine(record: MetricsRecord): string {
  const parsed = metricsRecordSchema.safeParse(record);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(`invalid metrics record: ${issue.message}`, { details: { field: issue.path.join('.'), issues: parsed.error.issues } });
  }
  return `${JSON.stringify(parsed.data, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`;
}
