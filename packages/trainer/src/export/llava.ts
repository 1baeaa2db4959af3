/**
 * A recipe stage and its data for LLaVA's own trainer (haotian-liu/LLaVA): the records as its JSON
 * (`[{"id", "image", "conversations": [{"from": "human"|"gpt", "value"}]}]`), written by @vlit/data's
 * LLaVA dialect, and the `llava/train/train_mem.py` arguments of the stage (as LLaVA-1.5's
 * pretrain.sh / finetune.sh / finetune_lora.sh pass them).
 */
import type { WriteStats } from '@vlit/data';
import type { Recipe, RecipeInput } from '../recipe.js';
import { UnsupportedError } from '@vlit/core';
import { stageTraining, warmupSetting, type ExportOptionsBase } from './common.js';
import { cliFlags, writeLaunchScript, writeStageData } from './launch.js';

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
  const planned = stageTraining(recipe, options);
  if (planned.visionTower) {
    // haotian-liu/LLaVA's ModelArguments have no flag that unfreezes the tower: a script would silently train less than the recipe says.
    throw new UnsupportedError(
      `stage ${planned.stage.name} trains the vision tower, which LLaVA's train_mem.py keeps frozen; export it to LLaMA-Factory or ms-swift, or run it with the torchrun engine`,
      { details: { field: `stages.${planned.index}.trainables` } },
    );
  }
  const { t, dataFile, stats } = await writeStageData(recipe, options, { dialect: 'llava', container: 'json' });
  const { stage } = t;
  const projectorOnly = t.projector && !t.languageModel && !t.lora;
  const [warmKey, warmValue] = warmupSetting(stage);
  const args = cliFlags({
    model_name_or_path: options.model,
    version: VERSIONS[stage.template] ?? stage.template,
    data_path: dataFile,
    image_folder: options.imageFolder,
    vision_tower: options.visionTower ?? 'openai/clip-vit-large-patch14-336',
    mm_projector_type: options.projectorType ?? 'mlp2x_gelu',
    pretrain_mm_mlp_adapter: options.pretrainedProjector || undefined,
    tune_mm_mlp_adapter: projectorOnly ? 'True' : undefined,
    ...(t.lora ? { lora_enable: 'True', lora_r: t.lora.r, lora_alpha: t.lora.alpha, lora_dropout: t.lora.dropout, mm_projector_lr: stage.optimizer.lr } : {}),
    mm_vision_select_layer: '-2',
    mm_use_im_start_end: 'False',
    mm_use_im_patch_token: 'False',
    ...(stage.template === 'llava-v1' ? { image_aspect_ratio: 'pad', group_by_modality_length: 'True' } : {}),
    output_dir: options.outputDir ?? `./checkpoints/${t.recipe.name}-${stage.name}`,
    num_train_epochs: stage.epochs ?? 1,
    max_steps: stage.maxSteps,
    per_device_train_batch_size: stage.batchSize,
    gradient_accumulation_steps: t.accumulationPerDevice,
    learning_rate: stage.optimizer.lr,
    weight_decay: stage.optimizer.weightDecay,
    [warmKey]: warmValue,
    lr_scheduler_type: stage.schedule.type,
    max_grad_norm: stage.clipGradNorm ?? 0,
    model_max_length: stage.maxLength,
    seed: t.seed,
    logging_steps: 1,
    save_strategy: 'steps',
    save_steps: stage.checkpointEvery ?? 24000,
    gradient_checkpointing: 'True',
    report_to: 'none',
  });
  const { scriptFile, command } = await writeLaunchScript(t, options.outDir, {
    what: 'LLaVA run',
    note: '(run from a LLaVA checkout)',
    suffix: 'llava-train.sh',
    argv: ['deepspeed', 'llava/train/train_mem.py', '--deepspeed', options.deepspeedConfig ?? './scripts/zero2.json', ...args],
  });
  return { dataFile, scriptFile, stats, args, command };
}
