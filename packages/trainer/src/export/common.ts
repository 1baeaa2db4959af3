/**
 * What exports share: which stage to export, what it trains in the terms other frameworks use
 * (vision tower / projector / language model, full or LoRA), and quoting for command lines.
 */
import { InvalidArgumentError } from '@vlit/core';
import type { VlitRecord } from '@vlit/core';
import { writeFile, rename } from 'node:fs/promises';
import { torchSeed } from '../distributed/job.js';
import { parseRecipe, resolveTrainables, type Recipe, type RecipeInput, type RecipeStage } from '../recipe.js';

/** Options every export takes. */
export interface ExportOptionsBase {
  /** The stage to export (name or index). Default 0. */
  stage?: string | number;
  /** The records of the stage's data (canonical Vlit records). */
  records: AsyncIterable<VlitRecord> | Iterable<VlitRecord>;
  /** Folder the files go to (created). */
  outDir: string;
  /** The model as the framework should load it (a Hugging Face checkpoint folder or hub id). */
  model: string;
  /** The model's tensor names, to classify the stage's trainables exactly; without them the rule patterns are read as text. */
  tensorNames?: readonly string[];
  /** GPUs per run: the per-device accumulation is divided by it so the global batch stays the recipe's. Default 1. */
  worldSize?: number;
}

/** What a stage trains, in the vocabulary of LLaMA-Factory / ms-swift / LLaVA. */
export interface StageTraining {
  recipe: Recipe;
  stage: RecipeStage;
  /** The stage's seed as an integer (string seeds hashed as the torchrun engine does). */
  seed: number;
  index: number;
  visionTower: boolean;
  projector: boolean;
  /** The language model fully trained. */
  languageModel: boolean;
  /** LoRA on the language model. */
  lora: { r: number; alpha: number; dropout: number; useRslora: boolean; targetModules: string[] } | null;
  /** gradient accumulation per device for `worldSize` devices (at least 1). */
  accumulationPerDevice: number;
  /** The lr of an optimizer group whose patterns all name the vision tower / the projector (frameworks with per-part lrs). */
  partLr: { vision?: number; projector?: number };
}

type Part = 'vision' | 'projector' | 'llm';

/** Which part of a LLaVA-style model a tensor name (or pattern) belongs to. */
export function modelPartOf(name: string): Part {
  if (/multi_modal_projector|mm_projector|aligner|connector/.test(name)) return 'projector';
  if (/vision_tower|vision_model|visual\./.test(name)) return 'vision';
  return 'llm';
}

/** Resolve a recipe stage into what it trains. */
export function stageTraining(recipeInput: Recipe | RecipeInput, options: Pick<ExportOptionsBase, 'stage' | 'tensorNames' | 'worldSize'>): StageTraining {
  const recipe = parseRecipe(recipeInput);
  const want = options.stage ?? 0;
  const index = typeof want === 'number' ? want : recipe.stages.findIndex((s) => s.name === want);
  const stage = recipe.stages[index];
  if (!stage) throw new InvalidArgumentError(`no stage ${String(want)} in recipe ${recipe.name}`, { details: { field: 'stage' } });
  const parts = new Set<Part>();
  if (options.tensorNames) {
    const resolved = resolveTrainables(stage, options.tensorNames, { stageIndex: index });
    for (const n of resolved.trained) parts.add(modelPartOf(n));
  } else {
    for (const rule of stage.trainables) if (rule.mode === 'trained') for (const p of rule.match) parts.add(modelPartOf(p));
  }
  const loraRule = stage.trainables.find((r) => r.mode === 'lora');
  const worldSize = options.worldSize ?? 1;
  if (!Number.isInteger(worldSize) || worldSize < 1)
    throw new InvalidArgumentError(`worldSize must be a positive integer, got ${worldSize}`, { details: { field: 'worldSize' } });
  return {
    recipe,
    stage,
    seed: torchSeed(stage.seed ?? recipe.seed),
    index,
    visionTower: parts.has('vision'),
    projector: parts.has('projector'),
    languageModel: parts.has('llm'),
    lora:
      loraRule && loraRule.mode === 'lora'
        ? {
            r: loraRule.r,
            alpha: loraRule.alpha,
            dropout: loraRule.dropout,
            useRslora: loraRule.useRslora,
            targetModules: typeof loraRule.targetModules === 'string' ? [loraRule.targetModules] : [...loraRule.targetModules],
          }
        : null,
    accumulationPerDevice: Math.max(1, Math.round(stage.gradientAccumulation / worldSize)),
    partLr: groupLrByPart(stage),
  };
}

/** Per part, the lr of the first optimizer group that covers only that part (first match wins, as in AdamW). */
function groupLrByPart(stage: RecipeStage): StageTraining['partLr'] {
  const out: StageTraining['partLr'] = {};
  for (const g of stage.optimizer.groups) {
    const parts = new Set(g.match.map(modelPartOf));
    const [part] = parts;
    if (parts.size === 1 && g.lr !== undefined && (part === 'vision' || part === 'projector') && out[part] === undefined) out[part] = g.lr;
  }
  return out;
}

/** Quote one shell word (POSIX sh). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line from argv, one `--flag value` pair per continued line. */
export function formatCommand(argv: readonly string[]): string {
  const lines: string[] = [];
  let current: string[] = [];
  for (const word of argv) {
    if (word.startsWith('--') && current.length) {
      lines.push(current.join(' '));
      current = [];
    }
    current.push(shellQuote(word));
  }
  if (current.length) lines.push(current.join(' '));
  return lines.join(' \\\n  ');
}

/** A YAML scalar (strings quoted only when YAML would read them as something else). */
export function yamlScalar(value: string | number | boolean): string {
  if (typeof value !== 'string') return String(value);
  return /^[A-Za-z_./][A-Za-z0-9_./,-]*$/.test(value) && !/^(true|false|yes|no|null|on|off)$/i.test(value) ? value : JSON.stringify(value);
}

/** The schedule's warmup as a `[key, value]` pair (steps win over ratio). */
export function warmupSetting(stage: RecipeStage): [string, number] {
  return stage.schedule.warmupSteps !== undefined ? ['warmup_steps', stage.schedule.warmupSteps] : ['warmup_ratio', stage.schedule.warmupRatio ?? 0];
}

/** Write a text file atomically (temp file + rename). */
export async function writeTextAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
