/**
 * Training recipes: a zod-validated JSON description of a run as stages, each with its data mixture,
 * chat template, what trains (frozen / trained / LoRA per tensor-name pattern), optimiser, schedule,
 * batch, length and evaluation/checkpoint cadence. The same JSON drives the local loop and, later, the
 * distributed engine. LLaVA's two-stage recipe is built in (llavaRecipe).
 */
import { ValidationError } from '@vlit/core';
import { z } from 'zod';
import { createPeftLoraConfig, loraScale, type PeftLoraConfig } from './lora/adapter.js';
import { peftTargetMatches } from './lora/targets.js';
import { DEFAULT_NO_DECAY, adamWGroupSchema } from './optim/adamw.js';
import { LR_SCHEDULE_TYPES, createLrSchedule, warmupStepsFromRatio, type LrSchedule } from './optim/schedule.js';
import { compileNamePattern } from './patterns.js';

const patterns = z.array(z.string().min(1)).min(1);

/** One data source of a stage's mixture (weights as @vlit/data's planMixture reads them). */
export const recipeDataSourceSchema = z.object({
  name: z.string().min(1),
  /** Where the records are (a path or URL the loader understands). */
  path: z.string().min(1),
  weight: z.number().min(0).default(1),
  /** Cap on passes over this source. */
  maxEpochs: z.number().positive().optional(),
});
/** A data source of a recipe stage. */
export type RecipeDataSource = z.infer<typeof recipeDataSourceSchema>;

/** A stage's data mixture. */
export const recipeDataSchema = z.object({
  sources: z.array(recipeDataSourceSchema).min(1),
  strategy: z.enum(['weighted', 'proportional', 'temperature']).default('weighted'),
  temperature: z.number().positive().optional(),
  /** Samples per epoch of the mixture (default: the sum of the sources' sizes). */
  total: z.number().int().positive().optional(),
});
/** A stage's data mixture. */
export type RecipeData = z.infer<typeof recipeDataSchema>;

/** What trains, per tensor-name pattern (globs or `re:`); the first matching rule decides, unmatched tensors are frozen. */
export const trainableRuleSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('frozen'), match: patterns }),
  z.object({ mode: z.literal('trained'), match: patterns }),
  z.object({
    mode: z.literal('lora'),
    /** Which tensors the rule covers (e.g. the language model); LoRA goes on the target modules among them, the rest stay frozen. */
    match: patterns.default(['*']),
    /** Module names as PEFT takes them: a list of names / dotted suffixes (`q_proj`), or one regex string. */
    targetModules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]),
    r: z.number().int().min(1),
    alpha: z.number().positive(),
    dropout: z.number().min(0).lt(1).default(0),
    useRslora: z.boolean().default(false),
  }),
]);
/** A trainable rule. */
export type TrainableRule = z.infer<typeof trainableRuleSchema>;
/** A LoRA trainable rule. */
export type LoraRule = Extract<TrainableRule, { mode: 'lora' }>;

/** The optimiser of a stage (AdamW; see createAdamW). */
export const recipeOptimizerSchema = z.object({
  type: z.literal('adamw').default('adamw'),
  lr: z.number().min(0),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
  eps: z.number().min(0).default(1e-8),
  weightDecay: z.number().min(0).default(0),
  noDecay: z.array(z.string().min(1)).default([...DEFAULT_NO_DECAY]),
  groups: z.array(adamWGroupSchema).default([]),
});
/** A stage's optimiser settings. */
export type RecipeOptimizer = z.infer<typeof recipeOptimizerSchema>;

/** The lr schedule of a stage; total steps come from the stage's epochs or maxSteps at run time. */
export const recipeScheduleSchema = z
  .object({
    type: z.enum(LR_SCHEDULE_TYPES).default('cosine'),
    warmupSteps: z.number().int().min(0).optional(),
    /** Warmup as a share of total steps (ceil, as transformers). */
    warmupRatio: z.number().min(0).max(1).optional(),
    numCycles: z.number().min(0).default(0.5),
  })
  .refine((s) => s.warmupSteps === undefined || s.warmupRatio === undefined, { message: 'give warmupSteps or warmupRatio, not both', path: ['warmupRatio'] });
/** A stage's lr schedule settings. */
export type RecipeSchedule = z.infer<typeof recipeScheduleSchema>;

/** One stage of a recipe. */
export const recipeStageSchema = z
  .object({
    name: z.string().min(1),
    data: recipeDataSchema,
    /** Chat template: a @vlit/templates built-in name (`llava-plain`, `llava-v1`, ...) or the model's own (`model`). */
    template: z.string().min(1),
    maxLength: z.number().int().min(1).optional(),
    trainables: z.array(trainableRuleSchema).min(1),
    optimizer: recipeOptimizerSchema,
    schedule: recipeScheduleSchema.default({ type: 'cosine', numCycles: 0.5 }),
    /** Global-norm clipping threshold; null turns clipping off. */
    clipGradNorm: z.number().positive().nullable().default(1),
    /** Samples per micro-batch. */
    batchSize: z.number().int().min(1),
    gradientAccumulation: z.number().int().min(1).default(1),
    epochs: z.number().positive().optional(),
    /** Optimiser steps; wins over epochs when both are given (as transformers' max_steps). */
    maxSteps: z.number().int().min(1).optional(),
    evalEvery: z.number().int().min(1).optional(),
    checkpointEvery: z.number().int().min(1).optional(),
    /** Stage seed (default: the recipe's seed). */
    seed: z.union([z.number().int(), z.string()]).optional(),
  })
  .refine((s) => s.epochs !== undefined || s.maxSteps !== undefined, { message: 'a stage needs epochs or maxSteps', path: ['epochs'] });
/** A recipe stage. */
export type RecipeStage = z.infer<typeof recipeStageSchema>;
/** A recipe stage as written (defaults optional). */
export type RecipeStageInput = z.input<typeof recipeStageSchema>;

/** A training recipe. */
export const recipeSchema = z
  .object({
    name: z.string().min(1),
    version: z.literal(1).default(1),
    seed: z.union([z.number().int(), z.string()]).default(0),
    stages: z.array(recipeStageSchema).min(1),
  })
  .superRefine((r, ctx) => {
    const seen = new Set<string>();
    r.stages.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['stages', i, 'name'], message: `stage name '${s.name}' is used twice` });
      seen.add(s.name);
    });
  });
/** A training recipe with defaults filled in. */
export type Recipe = z.infer<typeof recipeSchema>;
/** A recipe as written. */
export type RecipeInput = z.input<typeof recipeSchema>;

/** Validate a recipe; the ValidationError's `details.field` is the path of the first problem (`stages.1.optimizer.lr`). */
export function parseRecipe(value: unknown): Recipe {
  const parsed = recipeSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.map(String).join('.');
    throw new ValidationError(`invalid recipe: ${field ? `${field}: ` : ''}${issue.message}`, { details: { field, issues: parsed.error.issues } });
  }
  return parsed.data;
}

/** SHA-256 (hex) of the recipe's canonical JSON (defaults filled, keys sorted): checkpoints record it so a resume can refuse another recipe. */
export async function recipeHash(recipe: Recipe | RecipeInput): Promise<string> {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as object)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  const bytes = new TextEncoder().encode(JSON.stringify(canonical(parseRecipe(recipe))));
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Optimiser steps of a stage as transformers' Trainer counts them: `maxSteps` when set, else
 * ceil(epochs × updates per epoch) with updates per epoch = ceil(micro-batches / gradientAccumulation), at least 1.
 */
export function stageTotalSteps(stage: RecipeStage, batchesPerEpoch: number): number {
  if (stage.maxSteps !== undefined) return stage.maxSteps;
  if (!Number.isInteger(batchesPerEpoch) || batchesPerEpoch < 1) {
    throw new ValidationError(`batchesPerEpoch must be a positive integer, got ${batchesPerEpoch}`, { details: { field: 'batchesPerEpoch' } });
  }
  const updatesPerEpoch = Math.max(1, Math.ceil(batchesPerEpoch / stage.gradientAccumulation));
  return Math.ceil((stage.epochs ?? 1) * updatesPerEpoch);
}

/** The stage's lr schedule over its total steps (warmupRatio turned into steps with ceil, as transformers). */
export function createStageSchedule(stage: RecipeStage, batchesPerEpoch: number): LrSchedule {
  const totalSteps = stageTotalSteps(stage, batchesPerEpoch);
  const { type, warmupSteps, warmupRatio, numCycles } = stage.schedule;
  return createLrSchedule({ type, totalSteps, numCycles, warmupSteps: warmupSteps ?? warmupStepsFromRatio(warmupRatio ?? 0, totalSteps) });
}

/** One module that gets a LoRA adapter. */
export interface LoraTarget {
  /** Module path (`model.language_model.layers.0.self_attn.q_proj`). */
  module: string;
  /** Its weight tensor (`<module>.weight`). */
  weight: string;
  /** Index of the rule in the stage's trainables. */
  rule: number;
  r: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scale: number;
}

/** Which tensors train, stay frozen, or get LoRA in a stage. */
export interface ResolvedTrainables {
  trained: string[];
  frozen: string[];
  lora: LoraTarget[];
}

/** Options of resolveTrainables. */
export interface ResolveTrainablesOptions {
  /** Index of the stage in its recipe, so error fields read `stages.<i>.trainables...`. */
  stageIndex?: number;
}

/** The PEFT adapter config a LoRA rule stands for (what writePeftAdapter saves). */
export function peftConfigForRule(rule: LoraRule, baseModelNameOrPath: string | null = null): PeftLoraConfig {
  return createPeftLoraConfig({
    r: rule.r,
    loraAlpha: rule.alpha,
    loraDropout: rule.dropout,
    useRslora: rule.useRslora,
    targetModules: rule.targetModules,
    baseModelNameOrPath,
  });
}

/**
 * Split a model's tensor names into trained, frozen and LoRA targets by the stage's rules. A pattern
 * or target module that matches nothing is a ValidationError naming the field, so a typo never turns
 * into a silently frozen model.
 */
export function resolveTrainables(
  stage: RecipeStage | RecipeStageInput,
  tensorNames: readonly string[],
  options: ResolveTrainablesOptions = {},
): ResolvedTrainables {
  const prefix = options.stageIndex !== undefined ? `stages.${options.stageIndex}.` : '';
  const parsed = recipeStageSchema.safeParse(stage);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = `${prefix}${issue.path.map(String).join('.')}`;
    throw new ValidationError(`invalid stage: ${field}: ${issue.message}`, { details: { field, issues: parsed.error.issues } });
  }
  const rules = parsed.data.trainables;
  const compiled = rules.map((rule, k) => rule.match.map((p, j) => compileNamePattern(p, `${prefix}trainables.${k}.match.${j}`)));
  rules.forEach((_, k) =>
    compiled[k].forEach((p, j) => {
      if (!tensorNames.some((n) => p.test(n))) {
        throw new ValidationError(`trainables pattern '${p.source}' matches no tensor of the model`, {
          details: { field: `${prefix}trainables.${k}.match.${j}`, pattern: p.source },
        });
      }
    }),
  );
  const out: ResolvedTrainables = { trained: [], frozen: [], lora: [] };
  const loraHits = rules.map(() => new Set<string>());
  for (const name of tensorNames) {
    const k = compiled.findIndex((ps) => ps.some((p) => p.test(name)));
    const rule = k >= 0 ? rules[k] : undefined;
    if (!rule || rule.mode === 'frozen') {
      out.frozen.push(name);
      continue;
    }
    if (rule.mode === 'trained') {
      out.trained.push(name);
      continue;
    }
    const module = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : undefined;
    if (module === undefined || !peftTargetMatches(module, rule.targetModules)) {
      out.frozen.push(name);
      continue;
    }
    out.frozen.push(name); // the base weight stays frozen under its adapter
    loraHits[k].add(module);
    const config = peftConfigForRule(rule);
    out.lora.push({
      module,
      weight: name,
      rule: k,
      r: rule.r,
      alpha: rule.alpha,
      dropout: rule.dropout,
      useRslora: rule.useRslora,
      scale: loraScale(config, module),
    });
  }
  rules.forEach((rule, k) => {
    if (rule.mode !== 'lora') return;
    const hits = [...loraHits[k]];
    if (typeof rule.targetModules === 'string') {
      if (hits.length === 0) {
        throw new ValidationError(`LoRA targetModules '${rule.targetModules}' matches no module covered by the rule`, {
          details: { field: `${prefix}trainables.${k}.targetModules` },
        });
      }
      return;
    }
    rule.targetModules.forEach((t, j) => {
      if (!hits.some((m) => peftTargetMatches(m, [t]))) {
        throw new ValidationError(`LoRA target module '${t}' matches no module covered by the rule`, {
          details: { field: `${prefix}trainables.${k}.targetModules.${j}`, module: t },
        });
      }
    });
  });
  return out;
}

/** Options of llavaRecipe. */
export interface LlavaRecipeOptions {
  /** Stage 1 (feature alignment) caption data, e.g. LLaVA's 558K LCS captions. */
  pretrainData: readonly z.input<typeof recipeDataSourceSchema>[];
  /** Stage 2 (visual instruction tuning) data, e.g. LLaVA-665K. */
  instructionData: readonly z.input<typeof recipeDataSourceSchema>[];
  /** Stage 2 through LoRA on the language model instead of full tuning. Default false (full). */
  lora?: boolean | { r?: number; alpha?: number; dropout?: number; targetModules?: readonly string[] };
  /** Tensor patterns of the projector. Default `*multi_modal_projector.*` (transformers' Llava names). */
  projector?: readonly string[];
  /** Tensor patterns of the language model. Default `*language_model.*` and `lm_head.*`. */
  languageModel?: readonly string[];
  /** Tensor patterns of the vision tower. Default `*vision_tower.*`. */
  visionTower?: readonly string[];
  /** Global batch per stage = batchSize × gradientAccumulation. Defaults: LLaVA-1.5's 256 and 128 as micro-batches of 16. */
  stage1?: { batchSize?: number; gradientAccumulation?: number; lr?: number };
  /**
   * `visionTowerLr`: train the vision tower in stage 2 too, fully, at this lr (LLaVA-NeXT's
   * `--unfreeze_mm_vision_tower True --mm_vision_tower_lr`, there 2e-6 against the stage's 1e-5). Default: frozen.
   */
  stage2?: { batchSize?: number; gradientAccumulation?: number; lr?: number; visionTowerLr?: number };
  maxLength?: number;
  seed?: number | string;
}

/** LLaVA's attention/MLP projections, the linear layers LLaVA's LoRA script adapts in a Llama decoder. */
export const LLAVA_LORA_TARGETS: readonly string[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/**
 * LLaVA-1.5's two-stage recipe: stage 1 trains only the projector on captions with the plain
 * template (lr 1e-3, 1 epoch, global batch 256); stage 2 trains projector + language model (full, or
 * LoRA r=128 alpha=256 on the decoder's projections) on instruction data with the conversation
 * template (lr 2e-5, 1 epoch, global batch 128). Both: cosine schedule, 3% warmup, no weight
 * decay, clipping at 1.0; the vision encoder stays frozen unless `stage2.visionTowerLr` is given.
 */
export function llavaRecipe(options: LlavaRecipeOptions): Recipe {
  const projector = [...(options.projector ?? ['*multi_modal_projector.*'])];
  const languageModel = [...(options.languageModel ?? ['*language_model.*', 'lm_head.*'])];
  const lora = options.lora === true ? {} : options.lora || undefined;
  const common = { schedule: { type: 'cosine' as const, warmupRatio: 0.03 }, clipGradNorm: 1, epochs: 1, maxLength: options.maxLength ?? 2048 };
  const stage2Trainables: z.input<typeof trainableRuleSchema>[] = lora
    ? [
        { mode: 'trained', match: projector },
        {
          mode: 'lora',
          match: languageModel,
          targetModules: [...(lora.targetModules ?? LLAVA_LORA_TARGETS)],
          r: lora.r ?? 128,
          alpha: lora.alpha ?? 256,
          dropout: lora.dropout ?? 0.05,
        },
      ]
    : [
        { mode: 'trained', match: projector },
        { mode: 'trained', match: languageModel },
      ];
  const towerLr = options.stage2?.visionTowerLr;
  const visionTower = [...(options.visionTower ?? ['*vision_tower.*'])];
  if (towerLr !== undefined) stage2Trainables.push({ mode: 'trained', match: visionTower });
  return parseRecipe({
    name: lora ? 'llava-1.5-lora' : 'llava-1.5',
    seed: options.seed ?? 0,
    stages: [
      {
        name: 'pretrain',
        ...common,
        data: { sources: options.pretrainData },
        template: 'llava-plain',
        trainables: [{ mode: 'trained', match: projector }],
        optimizer: { lr: options.stage1?.lr ?? 1e-3, weightDecay: 0 },
        batchSize: options.stage1?.batchSize ?? 16,
        gradientAccumulation: options.stage1?.gradientAccumulation ?? 16,
      },
      {
        name: 'finetune',
        ...common,
        data: { sources: options.instructionData },
        template: 'llava-v1',
        trainables: stage2Trainables,
        optimizer: { lr: options.stage2?.lr ?? 2e-5, weightDecay: 0, ...(towerLr !== undefined ? { groups: [{ match: visionTower, lr: towerLr }] } : {}) },
        batchSize: options.stage2?.batchSize ?? 16,
        gradientAccumulation: options.stage2?.gradientAccumulation ?? 8,
      },
    ],
  });
}
