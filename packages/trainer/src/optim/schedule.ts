/**
 * Learning-rate schedules with transformers' step semantics (get_constant_schedule_with_warmup,
 * get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup behind torch's LambdaLR): the lr of
 * optimizer step k (counting from 0) is base_lr * factor(k), so with warmup the first step has lr 0.
 */
import { ValidationError } from '@vlit/core';
import { z } from 'zod';

/** Schedule kinds, named as transformers' SchedulerType. */
export const LR_SCHEDULE_TYPES = ['constant', 'constant_with_warmup', 'linear', 'cosine'] as const;

/** A schedule's shape. `totalSteps` is needed by `linear` and `cosine`. */
export const lrScheduleSchema = z
  .object({
    type: z.enum(LR_SCHEDULE_TYPES),
    warmupSteps: z.number().int().min(0).default(0),
    totalSteps: z.number().int().min(1).optional(),
    /** Cosine waves over the decay (transformers' num_cycles; 0.5 = half a wave to zero). */
    numCycles: z.number().min(0).default(0.5),
  })
  .superRefine((s, ctx) => {
    if ((s.type === 'linear' || s.type === 'cosine') && s.totalSteps === undefined) {
      ctx.addIssue({ code: 'custom', path: ['totalSteps'], message: `a ${s.type} schedule needs totalSteps` });
    }
  });
/** A schedule's shape with defaults filled in. */
export type LrScheduleOptions = z.infer<typeof lrScheduleSchema>;

/** A learning-rate schedule. */
export interface LrSchedule {
  readonly options: LrScheduleOptions;
  /** The lr multiplier at optimizer step `step` (0-based), as LambdaLR's lr_lambda. */
  factor(step: number): number;
}

/** Warmup steps from a ratio of the total, as transformers' TrainingArguments.get_warmup_steps (ceil). */
export function warmupStepsFromRatio(ratio: number, totalSteps: number): number {
  return Math.ceil(totalSteps * ratio);
}

/** Create a schedule; invalid options are a ValidationError naming the field. */
export function createLrSchedule(input: z.input<typeof lrScheduleSchema>): LrSchedule {
  const parsed = lrScheduleSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(`invalid lr schedule: ${issue.message}`, { details: { field: issue.path.join('.'), issues: parsed.error.issues } });
  }
  const options = parsed.data;
  const { type, warmupSteps: warmup, numCycles } = options;
  const total = options.totalSteps ?? 1;
  const factor = (step: number): number => {
    if (type === 'constant') return 1;
    if (step < warmup) return step / Math.max(1, warmup);
    if (type === 'constant_with_warmup') return 1;
    if (type === 'linear') return Math.max(0, (total - step) / Math.max(1, total - warmup));
    const progress = (step - warmup) / Math.max(1, total - warmup);
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
  };
  return { options, factor };
}
