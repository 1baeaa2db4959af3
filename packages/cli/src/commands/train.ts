/** `vlit train`: train a LLaVA checkpoint folder on VLIT records with a recipe (trainer's trainLlavaFolder). */
import { resolve } from 'node:path';
import type { VlitRecord } from '@vlit/core';
import { assertRegularFile } from '@vlit/core/node';
import { readRecordsFile } from '@vlit/data/node';
import { createNodeRuntime } from '@vlit/runtime/node';
import { trainLlavaFolder } from '@vlit/trainer/node';
import { defineCommand, num, str } from '../define.js';
import { withProgress } from '../progress.js';
import { readRecipeFile } from '../recipe-file.js';
import { EXIT, dialect, positionals, printJson, required, UsageError } from '../shared.js';

const ENGINES = ['local', 'torchrun'] as const;

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'train a LLaVA checkpoint folder on VLIT records with a recipe; save the trained LLaVA folder',
  usage: 'train --model DIR --data FILE --root DIR --recipe FILE --out DIR [options]',
  description: `Train a LLaVA checkpoint folder (LlavaForConditionalGeneration layout: config.json, safetensors,
tokenizer.json and a chat template) on the records of --data (VLIT JSON Lines, or another dialect with
--from), every stage of the recipe (the trainer's recipe JSON) in order on the same records. Images
are read under --root, never outside it; the vision tower encodes each once, unless a stage's
trainables match it ('model.vision_tower.*'): that stage takes pixels through the tower and trains it.
Each stage's template is a built-in name or 'model' (the folder's chat template). DIR receives stage-<k>/ per stage
(checkpoints, metrics.jsonl, final/trained.safetensors, PEFT adapters of LoRA stages) and final-model/,
a LLaVA folder with the trained weights (LoRA merged) that 'vlit eval --model' and transformers load.
Records whose image is missing or that do not encode are left out and counted. Running again with the
same --out resumes each stage from its newest checkpoint.`,
  flags: [
    { name: 'model', type: 'string', arg: 'DIR', description: 'the LLaVA checkpoint folder to start from (required)' },
    { name: 'data', type: 'string', arg: 'FILE', description: 'the training records (required)' },
    { name: 'from', type: 'string', arg: '<dialect>', description: 'dialect of --data (default vlit)' },
    { name: 'root', type: 'string', arg: 'DIR', description: "root of the records' image paths (required)" },
    { name: 'recipe', type: 'string', arg: 'FILE', description: 'recipe JSON (required)' },
    { name: 'out', type: 'string', arg: 'DIR', description: 'run folder (required)' },
    { name: 'engine', type: 'string', arg: ENGINES.join('|'), description: "training engine (default local: Vlit's own on onnxruntime)" },
    { name: 'nproc', type: 'integer', arg: 'N', default: 1, min: 1, description: 'processes per node with --engine torchrun' },
    {
      name: 'python',
      type: 'string',
      arg: 'PATH',
      description: 'Python with torch, transformers and peft for --engine torchrun (default: $VLIT_PYTHON, else python3)',
    },
  ],
  examples: [
    {
      command: 'vlit train --model llava-tiny/ --data kept.jsonl --root data/ --recipe recipe.json --out runs/train',
      note: 'every stage of recipe.json on kept.jsonl; the trained model lands in runs/train/final-model',
    },
    {
      command: 'vlit train --model llava-tiny/ --data kept.jsonl --root data/ --recipe recipe.json --out runs/train --json',
      note: 'the same, with per-stage steps, samples, rejects and losses as JSON',
    },
    {
      command: 'vlit train --model llava-tiny/ --data kept.jsonl --root data/ --recipe recipe.json --out runs/ddp --engine torchrun --nproc 2',
      note: "the same recipe on PyTorch's torchrun (transformers' LLaVA + peft, DDP over 2 processes); the same final-model folder",
    },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    positionals(pos, []);
    const modelDir = required(str(values, 'model'), 'model');
    const data = required(str(values, 'data'), 'data');
    const root = required(str(values, 'root'), 'root');
    const recipeFile = required(str(values, 'recipe'), 'recipe');
    const outDir = required(str(values, 'out'), 'out');
    const engine = str(values, 'engine') ?? 'local';
    if (!(ENGINES as readonly string[]).includes(engine))
      throw new UsageError(`--engine must be one of ${ENGINES.join(', ')}, got '${engine}'`, { details: { field: '--engine' } });
    const nproc = num(values, 'nproc');
    const from = dialect(str(values, 'from') ?? 'vlit', 'from');
    const recipe = await readRecipeFile(recipeFile);
    await assertRegularFile(data, { what: '--data' });
    const records: VlitRecord[] = [];
    for await (const r of readRecordsFile(data, { dialect: from })) records.push(r);
    const runtime = createNodeRuntime();
    const result = await withProgress(io, (onProgress) =>
      trainLlavaFolder({
        runtime,
        modelDir,
        records,
        imageRoot: resolve(root),
        recipe,
        outDir,
        ...(engine === 'torchrun' ? { torchrun: { nprocPerNode: nproc, ...(str(values, 'python') ? { python: str(values, 'python') } : {}) } } : {}),
        onProgress: (e) => {
          // The bars show `detail` beside the count: the step's loss.
          const event = { stage: e.stage, done: e.done, total: e.total, detail: e.loss !== undefined ? `loss ${e.loss.toFixed(4)}` : '' };
          onProgress(event);
        },
      }),
    );
    if (json) printJson(io, { model: modelDir, engine, records: records.length, stages: result.stages, savedDir: result.savedDir, rejects: result.rejects });
    else {
      const lines = result.stages.map(
        (s) =>
          `${s.name}: ${s.steps} steps on ${s.samples} samples (${s.rejected} rejected), loss ${s.firstLoss?.toFixed(4) ?? '-'} -> ${s.finalLoss?.toFixed(4) ?? '-'} (${s.dir})`,
      );
      io.stdout(`${lines.join('\n')}\ntrained model: ${result.savedDir}\n`);
    }
    return EXIT.ok;
  },
});
