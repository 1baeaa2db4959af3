/** `vlit export`: a recipe stage and its data in LLaMA-Factory, ms-swift or LLaVA layout. */
import { resolve } from 'node:path';
import { assertRegularFile } from '@vlit/core/node';
import { readRecordsFile } from '@vlit/data/node';
import { exportLlamaFactory, exportLlava, exportMsSwift } from '@vlit/trainer/node';
import { defineCommand, num, str } from '../define.js';
import { readRecipeFile } from '../recipe-file.js';
import { EXIT, dialect, positionals, printJson, required, UsageError } from '../shared.js';

const TARGETS = ['llama-factory', 'ms-swift', 'llava'] as const;

export const exportCommand = defineCommand({
  name: 'export',
  summary: 'write a recipe stage and its data for LLaMA-Factory, ms-swift or LLaVA (files + the command to run)',
  usage: 'export --to llama-factory|ms-swift|llava --recipe FILE --data FILE --model PATH --out DIR [options]',
  description: `Translate one stage of a Vlit recipe (JSON, the trainer's recipe schema) and its records into another
framework's layout: LLaMA-Factory (ShareGPT data, its dataset_info.json entry, the training YAML),
ms-swift (its JSON Lines and a launch script) or LLaVA (its JSON array and a launch script). The
stage's trainable parts (vision tower, projector, language model, LoRA) and its batch, learning rate
and schedule carry over; the command to run is printed.`,
  flags: [
    { name: 'to', type: 'string', arg: TARGETS.join('|'), description: 'target framework (required)' },
    { name: 'recipe', type: 'string', arg: 'FILE', description: 'recipe JSON (required)' },
    { name: 'data', type: 'string', arg: 'FILE', description: "the stage's records (required)" },
    { name: 'from', type: 'string', arg: '<dialect>', description: 'dialect of --data (default vlit)' },
    { name: 'model', type: 'string', arg: 'PATH', description: 'the model as the framework loads it: a checkpoint folder or hub id (required)' },
    { name: 'out', type: 'string', arg: 'DIR', description: 'folder for the files (required)' },
    { name: 'stage', type: 'string', arg: 'NAME|INDEX', description: 'the stage to export (default 0)' },
    { name: 'world-size', type: 'integer', arg: 'N', default: 1, min: 1, description: 'GPUs per run (accumulation is divided to keep the global batch)' },
    { name: 'image-folder', type: 'string', arg: 'DIR', description: "LLaVA's --image_folder (with --to llava; required there)" },
  ],
  examples: [
    {
      command: 'vlit export --to llama-factory --recipe recipe.json --data kept.jsonl --model llava-hf/llava-1.5-7b-hf --out lf/ --stage 1',
      note: "stage 2 of a LLaVA recipe for 'llamafactory-cli train'",
    },
    {
      command: 'vlit export --to llava --recipe recipe.json --data kept.jsonl --model lmsys/vicuna-7b-v1.5 --image-folder data/ --out llava/ --json',
      note: "LLaVA's own layout and launch script; file paths as JSON",
    },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    positionals(pos, []);
    const to = required(str(values, 'to'), 'to');
    if (!(TARGETS as readonly string[]).includes(to))
      throw new UsageError(`--to must be one of ${TARGETS.join(', ')}, got '${to}'`, { details: { field: '--to' } });
    const recipe = await readRecipeFile(required(str(values, 'recipe'), 'recipe'));
    const data = required(str(values, 'data'), 'data');
    const model = required(str(values, 'model'), 'model');
    const outDir = required(str(values, 'out'), 'out');
    const stageText = str(values, 'stage');
    const stage = stageText === undefined ? 0 : /^\d+$/.test(stageText) ? Number(stageText) : stageText;
    const from = dialect(str(values, 'from') ?? 'vlit', 'from');
    await assertRegularFile(data, { what: '--data' });
    const base = { stage, records: readRecordsFile(data, { dialect: from }), outDir, model, worldSize: num(values, 'world-size') };
    let result: { dataFile: string; command: string; stats: { written: number; rejected: number } } & Record<string, unknown>;
    if (to === 'llama-factory') result = { ...(await exportLlamaFactory(recipe, base)) };
    else if (to === 'ms-swift') result = { ...(await exportMsSwift(recipe, base)) };
    else result = { ...(await exportLlava(recipe, { ...base, imageFolder: resolve(required(str(values, 'image-folder'), 'image-folder')) })) };
    if (json) printJson(io, { to, ...result });
    else io.stdout(`exported stage ${String(stage)} for ${to}: ${result.stats.written} records -> ${result.dataFile}\nrun: ${result.command}\n`);
    return EXIT.ok;
  },
});
