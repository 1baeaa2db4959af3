/**
 * The steps the command-line exports (LLaVA's train_mem.py, ms-swift's `swift sft`) share: write the
 * stage's records, spell the run's flags, and write the launcher script. Internal: not re-exported.
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { WriteRecordsOptions, WriteStats } from '@vlit/data';
import { writeRecordsFile } from '@vlit/data/node';
import type { Recipe, RecipeInput, RecipeStage } from '../recipe.js';
import { formatCommand, stageTraining, writeTextAtomic, type ExportOptionsBase, type StageTraining } from './common.js';

/** A flag's value: one word, several words (a list), or undefined to leave the flag out. */
export type FlagValue = string | number | readonly string[] | undefined;

/** `--name value...` words for each flag, in the order given, leaving out the undefined ones. */
export function cliFlags(flags: Record<string, FlagValue>): string[] {
  return Object.entries(flags).flatMap(([name, value]) => (value === undefined ? [] : [`--${name}`, ...(typeof value === 'object' ? value : [String(value)])]));
}

/** The comment line that states the recipe's global batch, which the per-device settings must multiply back to. */
export function globalBatchNote(stage: RecipeStage): string {
  return `# Global batch = per_device_train_batch_size x gradient_accumulation_steps x GPUs (recipe: ${stage.batchSize * stage.gradientAccumulation}).`;
}

/** Resolve the stage and write its records to `outDir` (file `options.fileName`, default `<stage>.<container>`). */
export async function writeStageData(
  recipe: Recipe | RecipeInput,
  options: ExportOptionsBase & { fileName?: string },
  format: Pick<WriteRecordsOptions, 'dialect'> & { container: 'json' | 'jsonl' },
): Promise<{ t: StageTraining; dataFile: string; stats: WriteStats }> {
  const t = stageTraining(recipe, options);
  await mkdir(options.outDir, { recursive: true });
  const dataFile = path.join(options.outDir, options.fileName ?? `${t.stage.name}.${format.container}`);
  const stats = await writeRecordsFile(dataFile, options.records, format);
  return { t, dataFile, stats };
}

/**
 * Write `argv` as the shell script `<outDir>/<stage>.<suffix>`, under a comment naming the run (`what`,
 * then `note`) and the global batch; returns the script's path and the command as written.
 */
export async function writeLaunchScript(
  t: StageTraining,
  outDir: string,
  run: { what: string; note?: string; suffix: string; argv: readonly string[] },
): Promise<{ scriptFile: string; command: string }> {
  const command = formatCommand(run.argv);
  const scriptFile = path.join(outDir, `${t.stage.name}.${run.suffix}`);
  const header = `# ${run.what} of stage '${t.stage.name}' of recipe '${t.recipe.name}', written by Vlit${run.note ? ` ${run.note}` : ''}.`;
  await writeTextAtomic(scriptFile, `#!/bin/sh\n${header}\n${globalBatchNote(t.stage)}\n${command}\n`);
  return { scriptFile, command };
}
