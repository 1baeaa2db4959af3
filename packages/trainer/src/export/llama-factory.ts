/**
 * A recipe stage and its data for LLaMA-Factory: the records in its ShareGPT multimodal layout
 * (`messages` with role/content, `images`), written by @vlit/data's ShareGPT dialect; the
 * `dataset_info.json` entry with exactly the fields LLaMA-Factory documents for such data
 * (file_name, formatting, columns {messages, images}, tags {role_tag, content_tag, user_tag,
 * assistant_tag}); and the training YAML for `llamafactory-cli train`.
 */
import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { VlitRecord } from '@vlit/core';
import { createShareGptDialect, type DatasetInfoEntry, type WriteStats } from '@vlit/data';
import { readDatasetInfoFile, writeDatasetInfoFile, writeRecordsFile } from '@vlit/data/node';
import type { Recipe, RecipeInput } from '../recipe.js';
import { stageTraining, warmupSetting, writeTextAtomic, yamlScalar, type ExportOptionsBase } from './common.js';
import { globalBatchNote } from './launch.js';

/** Options of exportLlamaFactory. */
export interface LlamaFactoryExportOptions extends ExportOptionsBase {
  /** Dataset name in dataset_info.json. Default `vlit_<stage>`. */
  datasetName?: string;
  /** LLaMA-Factory chat template. Default: `llava` for LLaVA templates, else the recipe's template name. */
  template?: string;
  /** Where LLaMA-Factory writes the run. Default `saves/<recipe>-<stage>`. */
  outputDir?: string;
}

/** Files written by exportLlamaFactory and the command to run. */
export interface LlamaFactoryExport {
  dataFile: string;
  datasetInfoFile: string;
  yamlFile: string;
  /** The dataset_info.json entry added. */
  entry: DatasetInfoEntry;
  stats: WriteStats;
  command: string;
}

/** The column and tag names of LLaMA-Factory's multimodal ShareGPT example (`mllm_demo`). */
export const LLAMA_FACTORY_SHAREGPT = {
  columns: { messages: 'messages', images: 'images' },
  tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
} as const;

/**
 * The dataset_info.json entry LLaMA-Factory documents for multimodal ShareGPT data; with `system`,
 * also its documented `system` column (the ShareGPT writer puts a leading system message there, and
 * LLaMA-Factory ignores columns an entry does not name).
 */
export function llamaFactoryDatasetEntry(fileName: string, options: { system?: boolean } = {}): DatasetInfoEntry {
  return {
    file_name: fileName,
    formatting: 'sharegpt',
    columns: { ...LLAMA_FACTORY_SHAREGPT.columns, ...(options.system ? { system: 'system' } : {}) },
    tags: { ...LLAMA_FACTORY_SHAREGPT.tags },
  };
}

async function* watchSystem(records: AsyncIterable<VlitRecord> | Iterable<VlitRecord>, seen: { system: boolean }): AsyncGenerator<VlitRecord> {
  for await (const item of records) {
    // Typed here: TypeScript widens `for await` over a union of sync and async iterables to any in some programs.
    const r: VlitRecord = item;
    if (r.messages.some((m) => m.role === 'system')) seen.system = true;
    yield r;
  }
}

const LF_TEMPLATES: Record<string, string> = { 'llava-v1': 'llava', 'llava-plain': 'llava', chatml: 'qwen' };

/** Write a stage's data, its dataset_info.json entry (merged into an existing file) and the training YAML. */
export async function exportLlamaFactory(recipe: Recipe | RecipeInput, options: LlamaFactoryExportOptions): Promise<LlamaFactoryExport> {
  const t = stageTraining(recipe, options);
  const { stage } = t;
  const name = options.datasetName ?? `vlit_${stage.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  await mkdir(options.outDir, { recursive: true });
  const fileName = `${name}.json`;
  const dataFile = path.join(options.outDir, fileName);
  const dialect = createShareGptDialect({ columns: LLAMA_FACTORY_SHAREGPT.columns, tags: LLAMA_FACTORY_SHAREGPT.tags });
  const seen = { system: false };
  const stats = await writeRecordsFile(dataFile, watchSystem(options.records, seen), { dialect, container: 'json' });
  const datasetInfoFile = path.join(options.outDir, 'dataset_info.json');
  const info = existsSync(datasetInfoFile) ? await readDatasetInfoFile(datasetInfoFile) : {};
  const entry = llamaFactoryDatasetEntry(fileName, { system: seen.system });
  info[name] = entry;
  await writeDatasetInfoFile(datasetInfoFile, info);

  const parsed = t.recipe.name;
  const [warmKey, warmValue] = warmupSetting(stage);
  const yaml: [string, string | number | boolean][][] = [
    [
      ['model_name_or_path', options.model],
      ['trust_remote_code', true],
    ],
    [
      ['stage', 'sft'],
      ['do_train', true],
      ['finetuning_type', t.lora ? 'lora' : 'full'],
      ['freeze_vision_tower', !t.visionTower],
      ['freeze_multi_modal_projector', !t.projector],
      ['freeze_language_model', !t.languageModel],
      ...(t.lora
        ? ([
            ['lora_rank', t.lora.r],
            ['lora_alpha', t.lora.alpha],
            ['lora_dropout', t.lora.dropout],
            ['lora_target', t.lora.targetModules.join(',')],
            ...(t.lora.useRslora ? [['use_rslora', true]] : []),
          ] as [string, string | number | boolean][])
        : []),
    ],
    [
      ['dataset', name],
      ['dataset_dir', options.outDir],
      ['template', options.template ?? LF_TEMPLATES[stage.template] ?? stage.template],
      ...(stage.maxLength !== undefined ? ([['cutoff_len', stage.maxLength]] as [string, number][]) : []),
      ['overwrite_cache', true],
    ],
    [
      ['output_dir', options.outputDir ?? `saves/${parsed}-${stage.name}`],
      ['logging_steps', 1],
      ['save_steps', stage.checkpointEvery ?? 500],
      ['plot_loss', true],
      ['overwrite_output_dir', true],
    ],
    [
      ['per_device_train_batch_size', stage.batchSize],
      ['gradient_accumulation_steps', t.accumulationPerDevice],
      ['learning_rate', stage.optimizer.lr],
      ['num_train_epochs', stage.epochs ?? 1],
      ...(stage.maxSteps !== undefined ? ([['max_steps', stage.maxSteps]] as [string, number][]) : []),
      ['lr_scheduler_type', stage.schedule.type],
      [warmKey, warmValue],
      ['weight_decay', stage.optimizer.weightDecay],
      ['adam_beta1', stage.optimizer.betas[0]],
      ['adam_beta2', stage.optimizer.betas[1]],
      ['adam_epsilon', stage.optimizer.eps],
      ['max_grad_norm', stage.clipGradNorm ?? 0],
      ['seed', t.seed],
    ],
  ];
  const titles = ['model', 'method', 'dataset', 'output', 'train'];
  const text = yaml.map((section, i) => [`### ${titles[i]}`, ...section.map(([k, v]) => `${k}: ${yamlScalar(v)}`)].join('\n')).join('\n\n');
  const header = `# LLaMA-Factory training config for stage '${stage.name}' of recipe '${parsed}', written by Vlit.\n${globalBatchNote(stage)}\n`;
  const yamlFile = path.join(options.outDir, `${name}.yaml`);
  await writeTextAtomic(yamlFile, `${header}${text}\n`);
  return { dataFile, datasetInfoFile, yamlFile, entry, stats, command: `llamafactory-cli train ${yamlFile}` };
}
