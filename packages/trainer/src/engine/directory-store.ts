/**
 * Node-only: a training store in a run directory: atomic `checkpoint-<step>` folders (the checkpoint
 * module), `metrics.jsonl` appended step by step, and the final outputs (trained tensors as
 * safetensors, LoRA adapters as PEFT folders).
 */
import * as path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { serializeSafetensors, type SafetensorsInput, type Tensor } from '@vlit/core';
import { writeFileAtomic } from '@vlit/core/node';
import { createMetricsWriter, type MetricsWriter } from '../checkpoint/metrics-writer.js';
import { latestCheckpoint, readRunCheckpoint, removeIncompleteCheckpoints, writeRunCheckpoint } from '../checkpoint/run-checkpoint.js';
import { writePeftAdapter } from '../lora/adapter-files.js';
import { createLoraAdapter } from '../lora/adapter.js';
import { peftConfigForRule, recipeStageSchema, type RecipeStage, type RecipeStageInput } from '../recipe.js';
import { trainStage, type TrainStageOptions, type TrainStageResult, type TrainingStore } from './train-stage.js';
import type { TrainingSample } from '../data/order.js';

/** File name of the metrics JSONL inside a run directory. */
export const METRICS_FILE = 'metrics.jsonl';

/** Options of createDirectoryTrainingStore. */
export interface DirectoryTrainingStoreOptions {
  /** Keep only this many newest checkpoints. */
  keepLast?: number;
  /** Refuse to resume from a checkpoint of another recipe. */
  recipeHash?: string;
  /** Start fresh even when the directory holds checkpoints. Default false (resume). */
  ignoreCheckpoints?: boolean;
}

/** A TrainingStore over a run directory; resumes from the newest complete checkpoint in it. */
export function createDirectoryTrainingStore(dir: string, options: DirectoryTrainingStoreOptions = {}): TrainingStore {
  let metrics: Promise<MetricsWriter> | undefined;
  return {
    async latestCheckpoint() {
      if (options.ignoreCheckpoints) return null;
      await removeIncompleteCheckpoints(dir);
      const latest = await latestCheckpoint(dir);
      return latest ? readRunCheckpoint(latest, { recipeHash: options.recipeHash }) : null;
    },
    writeCheckpoint: (checkpoint) => writeRunCheckpoint(dir, checkpoint, { keepLast: options.keepLast }),
    async writeMetrics(record) {
      metrics ??= createMetricsWriter(path.join(dir, METRICS_FILE));
      await (await metrics).write(record);
    },
    async close() {
      if (metrics) await (await metrics).close();
      metrics = undefined;
    },
  };
}

/** Where trainStageInDirectory put the outputs. */
export interface TrainedOutputs {
  /** `trained.safetensors`: every fully trained tensor under its model name (absent when none). */
  trainedFile?: string;
  /** One PEFT adapter folder per LoRA rule (`adapter` for the first, `adapter-<k>` for rule k > first). */
  adapterDirs: string[];
}

/**
 * Train a stage with checkpoints and metrics in `outDir` (resuming from its newest checkpoint) and
 * write the outputs to `outDir/final`: fully trained tensors as `trained.safetensors` and LoRA adapters
 * as PEFT folders that `PeftModel.from_pretrained` loads.
 */
export async function trainStageInDirectory<S extends TrainingSample>(
  stage: RecipeStage | RecipeStageInput,
  options: Omit<TrainStageOptions<S>, 'store'> & { outDir: string; store?: DirectoryTrainingStoreOptions },
): Promise<TrainStageResult & { outputs: TrainedOutputs }> {
  const store = createDirectoryTrainingStore(options.outDir, { recipeHash: options.recipeHash, ...options.store });
  const result = await trainStage(stage, { ...options, store });
  const finalDir = path.join(options.outDir, 'final');
  await mkdir(finalDir, { recursive: true });
  const outputs: TrainedOutputs = { adapterDirs: [] };
  const trained = new Map<string, SafetensorsInput>();
  for (const p of result.graph.parameters) if (p.kind === 'trained') trained.set(p.name, result.weights.get(p.name) as SafetensorsInput);
  if (trained.size) {
    outputs.trainedFile = path.join(finalDir, 'trained.safetensors');
    await writeFileAtomic(outputs.trainedFile, serializeSafetensors(trained, { format: 'pt' }));
  }
  const parsed = recipeStageSchema.parse(stage);
  const rules = [...new Set(result.graph.lora.map((m) => m.rule))];
  for (const [i, k] of rules.entries()) {
    const rule = parsed.trainables[k];
    if (rule.mode !== 'lora') continue;
    const weight = (name: string) => result.weights.get(name) as Tensor<'float32'>;
    const modules = result.graph.lora.filter((m) => m.rule === k).map((m) => ({ module: m.module, a: weight(m.aName), b: weight(m.bName) }));
    const dir = path.join(finalDir, i === 0 ? 'adapter' : `adapter-${k}`);
    await writePeftAdapter(dir, createLoraAdapter(peftConfigForRule(rule), modules), { overwrite: true });
    outputs.adapterDirs.push(dir);
  }
  return { ...result, outputs };
}
