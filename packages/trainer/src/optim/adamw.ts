/**
 * AdamW with decoupled weight decay, step for step as torch.optim.AdamW (torch 2.13, single-tensor
 * path on CPU, float32 parameters). Every tensor op torch runs in float32 is rounded to float32 here
 * too (Math.fround / Float32Array stores), while the Python-scalar arithmetic torch does in double
 * (bias corrections, step size) is done in double, so a run matches torch to float32 round-off.
 */
import { InvalidArgumentError, NotFoundError, TensorShapeError, ValidationError } from '@vlit/core';
import { z } from 'zod';
import { compileNamePattern, matchesAny, type NamePattern } from '../patterns.js';

/** One parameter-group override: parameters whose name matches take this lr / weight decay. */
export const adamWGroupSchema = z.object({
  /** Name patterns (globs or `re:`), see compileNamePattern. */
  match: z.array(z.string().min(1)).min(1),
  lr: z.number().min(0).optional(),
  weightDecay: z.number().min(0).optional(),
});
/** A parameter-group override. */
export type AdamWGroup = z.infer<typeof adamWGroupSchema>;

/** Hyper-parameters of AdamW (torch's defaults except `lr`, which has none). */
export const adamWOptionsSchema = z.object({
  lr: z.number().min(0),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
  eps: z.number().min(0).default(1e-8),
  weightDecay: z.number().min(0).default(0.01),
  /** Parameters matching these get no weight decay (biases, norms); see DEFAULT_NO_DECAY. */
  noDecay: z.array(z.string().min(1)).default([]),
  /** Per-group lr / weight decay; the first matching group wins, unmatched parameters use the defaults. */
  groups: z.array(adamWGroupSchema).default([]),
});
/** AdamW hyper-parameters with defaults filled in. */
export type AdamWOptions = z.infer<typeof adamWOptionsSchema>;
/** AdamW hyper-parameters as a caller may write them (defaults optional). */
export type AdamWOptionsInput = z.input<typeof adamWOptionsSchema>;

/** Name patterns of tensors that conventionally get no weight decay: biases and normalisation weights. */
export const DEFAULT_NO_DECAY: readonly string[] = ['*.bias', '*norm*.weight', '*Norm*.weight', '*ln_*.weight'];

/** A trainable float32 tensor, updated in place by the optimiser. */
export interface NamedParameter {
  readonly name: string;
  readonly data: Float32Array;
}

/** Per-parameter AdamW state, as torch keeps it (`step`, `exp_avg`, `exp_avg_sq`). */
export interface AdamWParamState {
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

/** The whole optimiser state: per-parameter state for parameters that have taken a step. */
export interface AdamWState {
  readonly params: ReadonlyMap<string, AdamWParamState>;
}

/** The lr and weight decay a parameter resolved to. */
export interface AdamWParamSettings {
  readonly name: string;
  /** Base lr (before the schedule's factor). */
  readonly lr: number;
  readonly weightDecay: number;
  /** Index into `groups`, or -1 for the default group. */
  readonly group: number;
}

/** Gradients by parameter name; a parameter without a gradient is skipped, as torch skips `grad is None`. */
export type Gradients = ReadonlyMap<string, Float32Array> | Readonly<Record<string, Float32Array>>;

/** Options of AdamW.step. */
export interface AdamWStepOptions {
  /** Multiplier of every group's base lr (a schedule's factor, as torch's LambdaLR applies it). Default 1. */
  lrFactor?: number;
}

/** An AdamW optimiser over named float32 parameters. */
export interface AdamW {
  readonly options: AdamWOptions;
  /** Resolved lr / weight decay per parameter, in parameter order. */
  readonly settings: readonly AdamWParamSettings[];
  /** One update of every parameter that has a gradient. */
  step(grads: Gradients, options?: AdamWStepOptions): void;
  /** A deep copy of the state (safe to serialise while training continues). */
  getState(): AdamWState;
  /** Replace the state with a copy of `state` (names and sizes are checked). */
  loadState(state: AdamWState): void;
}

function gradOf(grads: Gradients, name: string): Float32Array | undefined {
  if (grads instanceof Map) return grads.get(name);
  const rec = grads as Readonly<Record<string, Float32Array>>;
  return Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined;
}

function parseOptions(input: AdamWOptionsInput): AdamWOptions {
  const parsed = adamWOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.join('.');
    throw new ValidationError(`invalid AdamW options: ${issue.message}`, { details: { field, issues: parsed.error.issues } });
  }
  return parsed.data;
}

/** Resolve each parameter's lr and weight decay from the groups and the no-decay patterns. */
export function resolveAdamWSettings(names: readonly string[], input: AdamWOptionsInput): AdamWParamSettings[] {
  const options = parseOptions(input);
  const noDecay = options.noDecay.map((p, i) => compileNamePattern(p, `noDecay.${i}`));
  const groups: NamePattern[][] = options.groups.map((g, gi) => g.match.map((p, i) => compileNamePattern(p, `groups.${gi}.match.${i}`)));
  return names.map((name) => {
    const group = groups.findIndex((patterns) => matchesAny(name, patterns));
    const g = group >= 0 ? options.groups[group] : undefined;
    const weightDecay = matchesAny(name, noDecay) ? 0 : (g?.weightDecay ?? options.weightDecay);
    return { name, lr: g?.lr ?? options.lr, weightDecay, group };
  });
}

const f = Math.fround;

/** Create an AdamW optimiser that updates `params` in place. */
export function createAdamW(params: readonly NamedParameter[], input: AdamWOptionsInput): AdamW {
  const options = parseOptions(input);
  const seen = new Set<string>();
  for (const p of params) {
    if (!(p.data instanceof Float32Array)) {
      throw new InvalidArgumentError(`parameter '${p.name}' must hold a Float32Array`, { details: { field: p.name } });
    }
    if (seen.has(p.name)) throw new InvalidArgumentError(`parameter '${p.name}' is listed twice`, { details: { field: p.name } });
    seen.add(p.name);
  }
  const settings = resolveAdamWSettings(
    params.map((p) => p.name),
    options,
  );
  let state = new Map<string, AdamWParamState>();
  const [beta1, beta2] = options.betas;

  const step = (grads: Gradients, stepOptions: AdamWStepOptions = {}): void => {
    const factor = stepOptions.lrFactor ?? 1;
    if (!Number.isFinite(factor) || factor < 0) {
      throw new InvalidArgumentError(`lrFactor must be a finite number >= 0, got ${factor}`, { details: { field: 'lrFactor' } });
    }
    // Check every gradient before touching any parameter, so a bad call leaves the model unchanged.
    for (const p of params) {
      const g = gradOf(grads, p.name);
      if (g !== undefined && (!(g instanceof Float32Array) || g.length !== p.data.length)) {
        throw new TensorShapeError(`gradient of '${p.name}' must be a Float32Array of ${p.data.length} elements`, {
          details: { field: p.name, expected: p.data.length, length: (g as { length?: number }).length },
        });
      }
    }
    const known = new Set(params.map((p) => p.name));
    const keys = grads instanceof Map ? [...grads.keys()] : Object.keys(grads);
    for (const k of keys) if (!known.has(k)) throw new NotFoundError(`gradient for unknown parameter '${k}'`, { details: { field: k } });

    params.forEach((p, idx) => {
      const g = gradOf(grads, p.name);
      if (g === undefined) return;
      const n = p.data.length;
      let s = state.get(p.name);
      if (!s) {
        s = { step: 0, expAvg: new Float32Array(n), expAvgSq: new Float32Array(n) };
        state.set(p.name, s);
      }
      const { lr: baseLr, weightDecay } = settings[idx];
      const lr = baseLr * factor; // Python float, as LambdaLR sets group["lr"]
      s.step += 1;
      const w = p.data;
      const m = s.expAvg;
      const v = s.expAvgSq;
      if (weightDecay !== 0) {
        const decay = f(1 - lr * weightDecay);
        for (let i = 0; i < n; i++) w[i] = w[i] * decay;
      }
      const oneMinusB1 = f(1 - beta1);
      const b2 = f(beta2);
      const oneMinusB2 = f(1 - beta2);
      for (let i = 0; i < n; i++) {
        // exp_avg.lerp_(grad, 1 - beta1): torch's vector kernel is fmadd(weight, end - start, start).
        m[i] = oneMinusB1 * f(g[i] - m[i]) + m[i];
        // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        const vb = f(v[i] * b2);
        v[i] = vb + f(f(oneMinusB2 * g[i]) * g[i]);
      }
      const biasCorrection1 = 1 - beta1 ** s.step;
      const biasCorrection2 = 1 - beta2 ** s.step;
      const stepSize = f(-(lr / biasCorrection1));
      const bc2Sqrt = f(Math.sqrt(biasCorrection2));
      const eps = f(options.eps);
      for (let i = 0; i < n; i++) {
        // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps); param.addcdiv_(exp_avg, denom, value=-step_size)
        const denom = f(f(f(Math.sqrt(v[i])) / bc2Sqrt) + eps);
        w[i] = w[i] + f(f(stepSize * m[i]) / denom);
      }
    });
  };

  const copyState = (from: ReadonlyMap<string, AdamWParamState>): Map<string, AdamWParamState> => {
    const out = new Map<string, AdamWParamState>();
    for (const [name, s] of from) out.set(name, { step: s.step, expAvg: s.expAvg.slice(), expAvgSq: s.expAvgSq.slice() });
    return out;
  };

  return {
    options,
    settings,
    step,
    getState: () => ({ params: copyState(state) }),
    loadState(next: AdamWState): void {
      const sizes = new Map(params.map((p) => [p.name, p.data.length]));
      for (const [name, s] of next.params) {
        const size = sizes.get(name);
        if (size === undefined) throw new NotFoundError(`optimizer state names unknown parameter '${name}'`, { details: { field: name } });
        if (s.expAvg.length !== size || s.expAvgSq.length !== size) {
          throw new TensorShapeError(`optimizer state of '${name}' has ${s.expAvg.length}/${s.expAvgSq.length} elements, parameter has ${size}`, {
            details: { field: name, expected: size },
          });
        }
        if (!Number.isInteger(s.step) || s.step < 0) {
          throw new InvalidArgumentError(`optimizer state of '${name}' has step ${s.step}`, { details: { field: `${name}.step` } });
        }
      }
      state = copyState(next.params);
    },
  };
}
