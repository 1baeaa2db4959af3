/**
 * A recipe stage and its data for ms-swift: the records as its standard messages JSONL
 * (`{"messages": [{"role", "content"}], "images": [...]}`, `<image>` marking each image), written by
 * @vlit/data's ShareGPT dialect with role/content tags, and the `swift sft` command line.
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { createShareGptDialect, type RecordDialect, type WriteStats } from '@vlit/data';
import { writeRecordsFile } from '@vlit/data/node';
import type { Recipe, RecipeInput } from '../recipe.js';
import { formatCommand, stageTraining, warmupSetting, writeTextAtomic, type ExportOptionsBase } from './common.js';

/** Options of exportMsSwift. */
export interface MsSwiftExportOptions extends ExportOptionsBase {
  /** Data file name. Default `<stage>.jsonl`. */
  fileName?: string;
  /** Where swift writes the run. Default `output/<recipe>-<stage>`. */
  outputDir?: string;
}

/** Files written by exportMsSwift and the command to run. */
export interface MsSwiftExport {
  dataFile: string;
  /** A shell script holding the command. */
  scriptFile: string;
  stats: WriteStats;
  argv: string[];
  command: string;
}

/** The dialect of ms-swift's messages JSONL (read it back with @vlit/data's readRecords). */
export function msSwiftDialect(): RecordDialect {
  return createShareGptDialect(
    {
      columns: { messages: 'messages', images: 'images' },
      tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' },
    },
    'ms-swift',
  );
}

/** Write a stage's data as ms-swift messages JSONL and the `swift sft` command for it. */
export async function exportMsSwift(recipe: Recipe | RecipeInput, options: MsSwiftExportOptions): Promise<MsSwiftExport> {
  const t = stageTraining(recipe, options);
  const { stage } = t;
  await mkdir(options.outDir, { recursive: true });
  const dataFile = path.join(options.outDir, options.fileName ?? `${stage.name}.jsonl`);
  const stats = await writeRecordsFile(dataFile, options.records, { dialect: msSwiftDialect(), container: 'jsonl' });
  const [warmKey, warmValue] = warmupSetting(stage);
  const argv = [
    'swift',
    'sft',
    '--model',
    options.model,
    '--train_type',
    t.lora ? 'lora' : 'full',
    '--dataset',
    dataFile,
    '--split_dataset_ratio',
    '0',
    '--freeze_vit',
    String(!t.visionTower),
    '--freeze_aligner',
    String(!t.projector),
    '--freeze_llm',
    String(!t.languageModel && !t.lora),
    ...(t.lora
      ? [
          '--lora_rank',
          String(t.lora.r),
          '--lora_alpha',
          String(t.lora.alpha),
          '--lora_dropout',
          String(t.lora.dropout),
          '--target_modules',
          ...t.lora.targetModules,
          ...(t.lora.useRslora ? ['--use_rslora', 'true'] : []),
        ]
      : []),
    ...(stage.maxLength !== undefined ? ['--max_length', String(stage.maxLength)] : []),
    '--per_device_train_batch_size',
    String(stage.batchSize),
    '--gradient_accumulation_steps',
    String(t.accumulationPerDevice),
    '--learning_rate',
    String(stage.optimizer.lr),
    '--num_train_epochs',
    String(stage.epochs ?? 1),
    ...(stage.maxSteps !== undefined ? ['--max_steps', String(stage.maxSteps)] : []),
    '--lr_scheduler_type',
    stage.schedule.type,
    `--${warmKey}`,
    String(warmValue),
    '--weight_decay',
    String(stage.optimizer.weightDecay),
    '--adam_beta1',
    String(stage.optimizer.betas[0]),
    '--adam_beta2',
    String(stage.optimizer.betas[1]),
    '--adam_epsilon',
    String(stage.optimizer.eps),
    '--max_grad_norm',
    String(stage.clipGradNorm ?? 0),
    '--seed',
    String(t.seed),
    '--logging_steps',
    '1',
    '--save_steps',
    String(stage.checkpointEvery ?? 500),
    '--output_dir',
    options.outputDir ?? `output/${t.recipe.name}-${stage.name}`,
  ];
  const command = formatCommand(argv);
  const scriptFile = path.join(options.outDir, `${stage.name}.swift-sft.sh`);
  await writeTextAtomic(
    scriptFile,
    `#!/bin/sh\n# ms-swift run of stage '${stage.name}' of recipe '${t.recipe.name}', written by Vlit.\n# Global batch = per_device_train_batch_size x gradient_accumulation_steps x GPUs (recipe: ${stage.batchSize * stage.gradientAccumulation}).\n${command}\n`,
  );
  return { dataFile, scriptFile, stats, argv, command };
}
