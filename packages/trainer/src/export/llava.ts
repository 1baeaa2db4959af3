/**
 * A recipe stage and its data for LLaVA's own trainer (haotian-liu/LLaVA): the records as its JSON
 * (`[{"id", "image", "conversations": [{"from": "human"|"gpt", "value"}]}]`), written by @vlit/data's
 * LLaVA dialect, and the `llava/train/train_mem.py` arguments of the stage (as LLaVA-1.5's
 * pretrain.sh / finetune.sh / finetune_lora.sh pass them).
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { WriteStats } from '@vlit/data';
import { writeRecordsFile } from '@vlit/data/node';
import type { Recipe, RecipeInput } from '../recipe.js';
import { formatCommand, stageTraining, writeTextAtomic, type ExportOptionsBase } from './common.js';

/** Options of exportLlava. */
export interface LlavaExportOptions extends ExportOptionsBase {
  /** Folder the records' image paths are relative to (`--image_folder`). */
  imageFolder: string;
  /** `--vision_tower`. Default `openai/clip-vit-large-patch14-336`. */
  visionTower?: string;
  /** `--mm_projector_type`. Default `mlp2x_gelu`. */
  projectorType?: string;
  /** `--pretrain_mm_mlp_adapter` for a stage after the projector's pre-training. */
  pretrainedProjector?: string;
  fileName?: string;
  outputDir?: string;
  /** `deepspeed` config for the launcher line. Default `./scripts/zero2.json`. */
  deepspeedConfig?: string;
}

/** Files written by exportLlava and the command to run. */
export interface LlavaExport {
  dataFile: string;
  scriptFile: string;
  stats: WriteStats;
  /** The trainer's arguments (after `llava/train/train_mem.py`). */
  args: string[];
  command: string;
}

const VERSIONS: Record<string, string> = { 'llava-plain': 'plain', 'llava-v1': 'v1' };

/** Write a stage's data as LLaVA JSON and the train_mem.py command for it. */
export async function exportLlava(recipe: Recipe | RecipeInput, options: LlavaExportOptions): Promise<LlavaExport> {
  const t = stageTraining(recipe, options);
  const { stage } = t;
  await mkdir(options.outDir, { recursive: true });
  const dataFile = path.join(options.outDir, options.fileName ?? `${stage.name}.json`);
  const stats = await writeRecordsFile(dataFile, options.records, { dialect: 'llava', container: 'json' });
  const projectorOnly = t.projector && !t.languageModel && !t.lora;
  const warm =
    stage.schedule.warmupSteps !== undefined
      ? ['--warmup_steps', String(stage.schedule.warmupSteps)]
      : ['--warmup_ratio', String(stage.schedule.warmupRatio ?? 0)];
  const args = [
    '--model_name_or_path',
    options.model,
    '--version',
    VERSIONS[stage.template] ?? stage.template,
    '--data_path',
    dataFile,
    '--image_folder',
    options.imageFolder,
    '--vision_tower',
    options.visionTower ?? 'openai/clip-vit-large-patch14-336',
    '--mm_projector_type',
    options.projectorType ?? 'mlp2x_gelu',
    ...(options.pretrainedProjector ? ['--pretrain_mm_mlp_adapter', options.pretrainedProjector] : []),
    ...(projectorOnly ? ['--tune_mm_mlp_adapter', 'True'] : []),
    ...(t.lora
      ? [
          '--lora_enable',
          'True',
          '--lora_r',
          String(t.lora.r),
          '--lora_alpha',
          String(t.lora.alpha),
          '--lora_dropout',
          String(t.lora.dropout),
          '--mm_projector_lr',
          String(stage.optimizer.lr),
        ]
      : []),
    '--mm_vision_select_layer',
    '-2',
    '--mm_use_im_start_end',
    'False',
    '--mm_use_im_patch_token',
    'False',
    ...(stage.template === 'llava-v1' ? ['--image_aspect_ratio', 'pad', '--group_by_modality_length', 'True'] : []),
    '--output_dir',
    options.outputDir ?? `./checkpoints/${t.recipe.name}-${stage.name}`,
    '--num_train_epochs',
    String(stage.epochs ?? 1),
    ...(stage.maxSteps !== undefined ? ['--max_steps', String(stage.maxSteps)] : []),
    '--per_device_train_batch_size',
    String(stage.batchSize),
    '--gradient_accumulation_steps',
    String(t.accumulationPerDevice),
    '--learning_rate',
    String(stage.optimizer.lr),
    '--weight_decay',
    String(stage.optimizer.weightDecay),
    ...warm,
    '--lr_scheduler_type',
    stage.schedule.type,
    '--max_grad_norm',
    String(stage.clipGradNorm ?? 0),
    ...(stage.maxLength !== undefined ? ['--model_max_length', String(stage.maxLength)] : []),
    '--seed',
    String(t.seed),
    '--logging_steps',
    '1',
    '--save_strategy',
    'steps',
    '--save_steps',
    String(stage.checkpointEvery ?? 24000),
    '--gradient_checkpointing',
    'True',
    '--report_to',
    'none',
  ];
  const argv = ['deepspeed', 'llava/train/train_mem.py', '--deepspeed', options.deepspeedConfig ?? './scripts/zero2.json', ...args];
  const command = formatCommand(argv);
  const scriptFile = path.join(options.outDir, `${stage.name}.llava-train.sh`);
  await writeTextAtomic(
    scriptFile,
    `#!/bin/sh\n# LLaVA run of stage '${stage.name}' of recipe '${t.recipe.name}', written by Vlit (run from a LLaVA checkout).\n# Global batch = per_device_train_batch_size x gradient_accumulation_steps x GPUs (recipe: ${stage.batchSize * stage.gradientAccumulation}).\n${command}\n`,
  );
  return { dataFile, scriptFile, stats, args, command };
}
