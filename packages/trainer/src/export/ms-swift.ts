/**
 * A recipe stage and its data for ms-swift: the records as its standard messages JSONL
 * (`{"messages": [{"role", "content"}], "images": [...]}`, `<image>` marking each image), written by
 * @vlit/data's ShareGPT dialect with role/content tags, and the `swift sft` command line.
 */
import { createShareGptDialect, type RecordDialect, type WriteStats } from '@vlit/data';
import type { Recipe, RecipeInput } from '../recipe.js';
import { warmupSetting, type ExportOptionsBase } from './common.js';
import { cliFlags, writeLaunchScript, writeStageData } from './launch.js';

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
  const { t, dataFile, stats } = await writeStageData(recipe, options, { dialect: msSwiftDialect(), container: 'jsonl' });
  const { stage } = t;
  const [warmKey, warmValue] = warmupSetting(stage);
  const argv = [
    'swift',
    'sft',
    ...cliFlags({
      model: options.model,
      train_type: t.lora ? 'lora' : 'full',
      dataset: dataFile,
      split_dataset_ratio: 0,
      freeze_vit: String(!t.visionTower),
      freeze_aligner: String(!t.projector),
      freeze_llm: String(!t.languageModel && !t.lora),
      ...(t.lora
        ? {
            lora_rank: t.lora.r,
            lora_alpha: t.lora.alpha,
            lora_dropout: t.lora.dropout,
            target_modules: t.lora.targetModules,
            use_rslora: t.lora.useRslora ? 'true' : undefined,
          }
        : {}),
      max_length: stage.maxLength,
      per_device_train_batch_size: stage.batchSize,
      gradient_accumulation_steps: t.accumulationPerDevice,
      learning_rate: stage.optimizer.lr,
      vit_lr: t.visionTower ? t.partLr.vision : undefined,
      aligner_lr: t.projector ? t.partLr.projector : undefined,
      num_train_epochs: stage.epochs ?? 1,
      max_steps: stage.maxSteps,
      lr_scheduler_type: stage.schedule.type,
      [warmKey]: warmValue,
      weight_decay: stage.optimizer.weightDecay,
      adam_beta1: stage.optimizer.betas[0],
      adam_beta2: stage.optimizer.betas[1],
      adam_epsilon: stage.optimizer.eps,
      max_grad_norm: stage.clipGradNorm ?? 0,
      seed: t.seed,
      logging_steps: 1,
      save_steps: stage.checkpointEvery ?? 500,
      output_dir: options.outputDir ?? `output/${t.recipe.name}-${stage.name}`,
    }),
  ];
  const { scriptFile, command } = await writeLaunchScript(t, options.outDir, { what: 'ms-swift run', suffix: 'swift-sft.sh', argv });
  return { dataFile, scriptFile, stats, argv, command };
}
