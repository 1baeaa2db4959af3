// `vlit train` (issue #12 item 1): --help, real runs on a tiny LLaVA folder and generated images (exit code,
// run folder, --json stage summaries, the saved folder loads and has new weights), a reference check (the
// first step's loss equals the loss of the same sample scored through the input folder's inference model,
// and the loss falls on a one-sample memorisable set), bad flags and missing files as one line.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpointFolder } from '@vlit/core/node';
import { parseSafetensors, type RawImage, type VlitRecord } from '@vlit/core';
import { createNodeRuntime, createSharpCodec } from '@vlit/runtime/node';
import { loadVisionLanguageModel } from '@vlit/models/node';
import { llavaRecipe } from '@vlit/trainer';
import { trainLlavaFolder } from '@vlit/trainer/node';
import { readRecordsFile } from '@vlit/data/node';
import { expectOneLine, toJsonLines, vlit, writeTinyLlavaFolder } from './testing/harness.js';

/** A one-image colour question answered `it is <colour>`; the image file is named by `image`. */
const colourQuestion = (id: string, image: string, colour: string) => ({
  id,
  images: [`img/${image}.png`],
  messages: [
    { role: 'user', content: '<image> what colour is it' },
    { role: 'assistant', content: `it is ${colour}` },
  ],
});

// The third record names an image that is never written, so the runs must reject it.
const RECORDS = [colourQuestion('red', 'red', 'red'), colourQuestion('blue', 'blue', 'blue'), colourQuestion('gone', 'missing', 'green')];

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PYTHON = process.env.VLIT_PYTHON || join(ROOT, '.venv', 'bin', 'python');

/** transformers' view of a saved folder: missing/unexpected keys and the projector's first weight. */
const LOAD_WITH_TRANSFORMERS = `
import json, sys, torch
from transformers import LlavaForConditionalGeneration
model, info = LlavaForConditionalGeneration.from_pretrained(sys.argv[1], output_loading_info=True)
w = model.model.multi_modal_projector.linear_1.weight.detach().double().flatten().tolist()
print(json.dumps({"missing": sorted(info["missing_keys"]), "unexpected": sorted(info["unexpected_keys"]), "w": w}))
`;

function python(script: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ['-c', script, ...args], { maxBuffer: 64 << 20, env: { ...process.env, OMP_NUM_THREADS: '1' } }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

let dir: string;
let modelDir: string;
let root: string;
let data: string;

function solid(rgb: [number, number, number]): RawImage {
  const data = new Uint8Array(16 * 16 * 3);
  for (let i = 0; i < 16 * 16; i++) data.set([rgb[0] ^ (i & 7), rgb[1], rgb[2] ^ ((i >> 4) & 7)], i * 3);
  return { width: 16, height: 16, channels: 3, data };
}

/** A recipe file from trainer's LLaVA recipe with tiny stages (constant lr, a few steps). */
async function writeRecipe(
  file: string,
  stages: Array<{ template: string; steps: number; lr: number; trainLanguageModel: boolean; trainables?: unknown[] }>,
  lora = false,
): Promise<void> {
  const base = llavaRecipe({
    pretrainData: [{ name: 'd', path: 'd.jsonl' }],
    instructionData: [{ name: 'd', path: 'd.jsonl' }],
    seed: 7,
    maxLength: 64,
    ...(lora ? { lora: { r: 2, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'] } } : {}),
  });
  const recipe = {
    ...base,
    stages: stages.map((s, k) => ({
      ...base.stages[s.trainLanguageModel ? 1 : 0],
      name: `s${k + 1}`,
      template: s.template,
      maxSteps: s.steps,
      batchSize: 1,
      gradientAccumulation: 1,
      schedule: { type: 'constant' },
      optimizer: { ...base.stages[0].optimizer, lr: s.lr },
      ...(s.trainables ? { trainables: s.trainables } : {}),
    })),
  };
  await writeFile(file, JSON.stringify(recipe));
}

const mean = (a: Float32Array): number => a.reduce((s, v) => s + v, 0) / a.length;

async function tensorOf(folder: string, suffix = 'multi_modal_projector.linear_1.weight'): Promise<Float32Array> {
  const f = await openCheckpointFolder(folder);
  try {
    const name = f.tensorNames().find((n) => n.endsWith(suffix)) as string;
    return await f.readFloat32(name);
  } finally {
    await f.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vlit-train-'));
  modelDir = join(dir, 'model');
  await writeTinyLlavaFolder(modelDir, ['USER: ASSISTANT:', ...RECORDS.map((r) => r.messages.map((m) => m.content).join(' '))], {
    seed: 'train',
    imageSize: 16,
    towerHidden: 16,
    lmHidden: 32,
    lmLayers: 1,
    maxPositions: 128,
  });
  root = join(dir, 'images');
  await mkdir(join(root, 'img'), { recursive: true });
  const codec = createSharpCodec();
  await writeFile(join(root, 'img', 'red.png'), await codec.encode(solid([230, 20, 20]), 'png'));
  await writeFile(join(root, 'img', 'blue.png'), await codec.encode(solid([20, 20, 230]), 'png'));
  data = join(dir, 'records.jsonl');
  await writeFile(data, toJsonLines(RECORDS));
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('vlit train', () => {
  it('--help has usage and a worked example', async () => {
    const help = await vlit('train', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: vlit train --model DIR');
    expect(help.stdout).toContain('Examples:\n');
    expect(help.stdout).toContain('vlit train --model');
  });

  it('trains both stages of a recipe, writes the run folder and a LLaVA folder that loads with new weights; --json parses', async () => {
    const recipe = join(dir, 'two-stage.json');
    await writeRecipe(recipe, [
      { template: 'llava-plain', steps: 2, lr: 1e-2, trainLanguageModel: false },
      { template: 'model', steps: 2, lr: 1e-3, trainLanguageModel: true },
    ]);
    const out = join(dir, 'run');
    const run = await vlit('train', '--model', modelDir, '--data', data, '--root', root, '--recipe', recipe, '--out', out, '--json');
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as {
      records: number;
      savedDir: string;
      stages: Array<{ name: string; steps: number; samples: number; rejected: number; finalLoss: number; dir: string }>;
      rejects: Array<{ id: string; stage: number; reason: string }>;
    };
    expect(summary.records).toBe(3);
    expect(summary.stages.map((s) => [s.name, s.steps, s.samples, s.rejected])).toEqual([
      ['s1', 2, 2, 1],
      ['s2', 2, 2, 1],
    ]);
    for (const s of summary.stages) expect(Number.isFinite(s.finalLoss)).toBe(true);
    // The missing image is a reject naming it, in each stage.
    expect(summary.rejects.map((r) => [r.id, r.stage])).toEqual([
      ['gone', 0],
      ['gone', 1],
    ]);
    expect(summary.rejects[0].reason).toContain('img/missing.png');
    // Run folder: metrics and final outputs per stage, the trained LLaVA folder.
    for (const s of ['stage-1', 'stage-2']) {
      const lines = (await readFile(join(out, s, 'metrics.jsonl'), 'utf8')).trim().split('\n');
      expect(lines.length).toBe(2);
      expect(existsSync(join(out, s, 'final', 'trained.safetensors'))).toBe(true);
    }
    expect(summary.savedDir).toBe(join(out, 'final-model'));
    for (const f of ['config.json', 'tokenizer.json', 'chat_template.jinja']) expect(existsSync(join(out, 'final-model', f)), f).toBe(true);
    // It trained: the saved projector differs from the input's; the model loads and runs.
    const before = await tensorOf(modelDir);
    const after = await tensorOf(summary.savedDir);
    expect(after.length).toBe(before.length);
    expect(Math.max(...after.map((v, i) => Math.abs(v - before[i])))).toBeGreaterThan(1e-4);
    expect(Math.abs(mean(after))).toBeLessThan(10);
    const runtime = createNodeRuntime();
    const model = await loadVisionLanguageModel(summary.savedDir, { runtime });
    try {
      const [score] = await model.score({ messages: [{ role: 'user', content: '<image> what colour is it' }], images: [solid([230, 20, 20])] }, ['it is red']);
      expect(Number.isFinite(score.logLikelihood)).toBe(true);
    } finally {
      await model.dispose();
    }
    // transformers loads the saved folder: every weight present, the projector as Vlit saved it.
    const hf = JSON.parse((await python(LOAD_WITH_TRANSFORMERS, summary.savedDir)).trim().split('\n').pop() as string) as {
      missing: string[];
      unexpected: string[];
      w: number[];
    };
    expect(hf.missing).toEqual([]);
    expect(hf.unexpected).toEqual([]);
    expect(Math.max(...hf.w.map((v, i) => Math.abs(v - after[i])))).toBe(0);
    // The human summary.
    const human = await vlit('train', '--model', modelDir, '--data', data, '--root', root, '--recipe', recipe, '--out', out);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(`trained model: ${join(out, 'final-model')}`);
  });

  it("reference: the first step's loss is the input model's loss on that sample; the loss falls on one memorisable sample", async () => {
    const one = join(dir, 'one.jsonl');
    await writeFile(one, `${JSON.stringify(RECORDS[0])}\n`);
    const recipe = join(dir, 'memorise.json');
    await writeRecipe(recipe, [{ template: 'model', steps: 6, lr: 1e-2, trainLanguageModel: true }]);
    const out = join(dir, 'memorise');
    const run = await vlit('train', '--model', modelDir, '--data', one, '--root', root, '--recipe', recipe, '--out', out, '--json');
    expect(run.code, run.stderr).toBe(0);
    const metrics = (await readFile(join(out, 'stage-1', 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; loss: number });
    expect(metrics.length).toBe(6);
    // Independent path: the input folder loaded for inference scores the same reply to the same image.
    const runtime = createNodeRuntime();
    const image = await createSharpCodec().decode(await readFile(join(root, 'img', 'red.png')), { source: 'red.png' });
    const request = { messages: [{ role: 'user' as const, content: '<image> what colour is it' }], images: [image] };
    const scoreWith = async (folder: string): Promise<{ logLikelihood: number; tokens: number }> => {
      const model = await loadVisionLanguageModel(folder, { runtime });
      try {
        return (await model.score(request, ['it is red']))[0];
      } finally {
        await model.dispose();
      }
    };
    const input = await scoreWith(modelDir);
    const first = metrics[0].loss;
    expect(
      Math.abs(first - -input.logLikelihood / input.tokens),
      `${first} vs ${-input.logLikelihood / input.tokens} over ${input.tokens} tokens`,
    ).toBeLessThan(1e-5 * first);
    expect(metrics[metrics.length - 1].loss).toBeLessThan(0.5 * first);
    const trained = await scoreWith(join(out, 'final-model'));
    expect(trained.logLikelihood).toBeGreaterThan(input.logLikelihood);
  });

  it('a LoRA stage: the PEFT adapter is written and the saved folder holds W + (alpha/r)·B·A, merged independently here', async () => {
    const recipe = join(dir, 'lora.json');
    await writeRecipe(recipe, [{ template: 'model', steps: 3, lr: 1e-2, trainLanguageModel: true }], true);
    const out = join(dir, 'lora');
    const run = await vlit('train', '--model', modelDir, '--data', data, '--root', root, '--recipe', recipe, '--out', out, '--json');
    expect(run.code, run.stderr).toBe(0);
    const adapterDir = join(out, 'stage-1', 'final', 'adapter');
    const config = JSON.parse(await readFile(join(adapterDir, 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number };
    expect([config.r, config.lora_alpha]).toEqual([2, 8]);
    const adapter = parseSafetensors(new Uint8Array(await readFile(join(adapterDir, 'adapter_model.safetensors'))));
    const f32 = (name: string): Float32Array => {
      const b = adapter.get(name).bytes;
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    const key = [...adapter.tensors.keys()].find((k) => k.includes('layers.0.self_attn.q_proj.lora_A')) as string;
    expect(key).toBeDefined();
    const a = f32(key);
    const b = f32(key.replace('lora_A', 'lora_B'));
    const [r, inF] = adapter.get(key).shape;
    const outF = adapter.get(key.replace('lora_A', 'lora_B')).shape[0];
    const before = await tensorOf(modelDir, 'layers.0.self_attn.q_proj.weight');
    const after = await tensorOf(join(out, 'final-model'), 'layers.0.self_attn.q_proj.weight');
    let delta = 0;
    let worst = 0;
    for (let o = 0; o < outF; o++) {
      for (let i = 0; i < inF; i++) {
        let acc = 0;
        for (let k = 0; k < r; k++) acc += b[o * r + k] * a[k * inF + i];
        const expected = before[o * inF + i] + (config.lora_alpha / config.r) * acc;
        worst = Math.max(worst, Math.abs(after[o * inF + i] - expected));
        delta = Math.max(delta, Math.abs(after[o * inF + i] - before[o * inF + i]));
      }
    }
    expect(delta).toBeGreaterThan(1e-5); // B moved off zero: the adapter trained
    expect(worst).toBeLessThan(1e-6);
  });

  it("--engine torchrun: transformers' LLaVA under torchrun follows the local engine step for step on one sample, and saves a whole folder", async () => {
    // One record, so both engines see the same sample at every step whatever their data order.
    const one = join(dir, 'one-torchrun.jsonl');
    await writeFile(one, `${JSON.stringify(RECORDS[0])}\n`);
    const recipe = join(dir, 'torchrun.json');
    await writeRecipe(recipe, [{ template: 'llava-plain', steps: 2, lr: 1e-2, trainLanguageModel: false }]);
    const local = await vlit('train', '--model', modelDir, '--data', one, '--root', root, '--recipe', recipe, '--out', join(dir, 'tr-local'), '--json');
    expect(local.code, local.stderr).toBe(0);
    const out = join(dir, 'tr-torchrun');
    const run = await vlit(
      'train',
      '--model',
      modelDir,
      '--data',
      one,
      '--root',
      root,
      '--recipe',
      recipe,
      '--out',
      out,
      '--engine',
      'torchrun',
      '--nproc',
      '1',
      '--python',
      PYTHON,
      '--json',
    );
    expect(run.code, run.stderr).toBe(0);
    type Summary = { savedDir: string; stages: Array<{ steps: number; samples: number; rejected: number; firstLoss: number; finalLoss: number }> };
    const a = JSON.parse(local.stdout) as Summary;
    const b = JSON.parse(run.stdout) as Summary;
    expect(b.stages.map((s) => [s.steps, s.samples, s.rejected])).toEqual(a.stages.map((s) => [s.steps, s.samples, s.rejected]));
    // Same model and sample: Vlit's ONNX graphs (cached features) and transformers (pixels through the tower) agree
    // on the first loss, and after one AdamW step on the projector, on the second.
    expect(Math.abs(b.stages[0].firstLoss - a.stages[0].firstLoss) / a.stages[0].firstLoss).toBeLessThan(1e-4);
    expect(Math.abs(b.stages[0].finalLoss - a.stages[0].finalLoss) / a.stages[0].finalLoss).toBeLessThan(1e-3);
    expect(b.savedDir).toBe(join(out, 'final-model'));
    for (const f of ['config.json', 'tokenizer.json', 'chat_template.jinja']) expect(existsSync(join(out, 'final-model', f)), f).toBe(true);
    const before = await tensorOf(modelDir);
    const after = await tensorOf(b.savedDir);
    expect(Math.max(...after.map((v, i) => Math.abs(v - before[i])))).toBeGreaterThan(1e-4);
    const runtime = createNodeRuntime();
    const model = await loadVisionLanguageModel(b.savedDir, { runtime });
    try {
      const [score] = await model.score({ messages: [{ role: 'user', content: '<image> what colour is it' }], images: [solid([230, 20, 20])] }, ['it is red']);
      expect(Number.isFinite(score.logLikelihood)).toBe(true);
    } finally {
      await model.dispose();
    }
  }, 300_000);

  it('a stage that trains the vision tower, then a frozen-tower stage: the local engine follows transformers under torchrun step for step', async () => {
    // Stage 1 trains tower + projector (pixels through the tower in the graph); stage 2 the projector alone on
    // features the trained tower computes again. transformers runs the same recipe on pixels throughout.
    const one = join(dir, 'one-tower.jsonl');
    await writeFile(one, `${JSON.stringify(RECORDS[0])}\n`);
    const recipe = join(dir, 'tower.json');
    await writeRecipe(recipe, [
      {
        template: 'llava-plain',
        steps: 2,
        lr: 1e-2,
        trainLanguageModel: false,
        trainables: [{ mode: 'trained', match: ['model.vision_tower.*', 'model.multi_modal_projector.*'] }],
      },
      { template: 'llava-plain', steps: 2, lr: 1e-2, trainLanguageModel: false },
    ]);
    const args = ['train', '--model', modelDir, '--data', one, '--root', root, '--recipe', recipe, '--json'];
    const local = await vlit(...args, '--out', join(dir, 'tower-local'));
    expect(local.code, local.stderr).toBe(0);
    const run = await vlit(...args, '--out', join(dir, 'tower-torchrun'), '--engine', 'torchrun', '--nproc', '1', '--python', PYTHON);
    expect(run.code, run.stderr).toBe(0);
    type Summary = { savedDir: string; stages: Array<{ steps: number; firstLoss: number; finalLoss: number }> };
    const a = JSON.parse(local.stdout) as Summary;
    const b = JSON.parse(run.stdout) as Summary;
    expect(a.stages.map((s) => s.steps)).toEqual([2, 2]);
    expect(b.stages.map((s) => s.steps)).toEqual([2, 2]);
    for (const [k, s] of a.stages.entries()) {
      expect(Math.abs(b.stages[k].firstLoss - s.firstLoss) / s.firstLoss, `stage ${k + 1} first loss`).toBeLessThan(1e-4);
      expect(Math.abs(b.stages[k].finalLoss - s.finalLoss) / s.finalLoss, `stage ${k + 1} final loss`).toBeLessThan(1e-3);
    }
    // Stage 2 starts where stage 1 left the model: its first loss is below stage 1's first.
    expect(a.stages[1].firstLoss).toBeLessThan(a.stages[0].firstLoss);
    // The saved towers moved off the input's, by the same steps in both engines.
    const before = await tensorOf(modelDir, 'patch_embedding.weight');
    const local1 = await tensorOf(a.savedDir, 'patch_embedding.weight');
    const torch1 = await tensorOf(b.savedDir, 'patch_embedding.weight');
    expect(Math.max(...local1.map((v, i) => Math.abs(v - before[i])))).toBeGreaterThan(1e-3);
    expect(Math.max(...local1.map((v, i) => Math.abs(v - torch1[i])))).toBeLessThan(1e-4);
  }, 300_000);

  it('features past featureMemoryBytes go to files and back: the same losses and weights as in memory, tower stage included', async () => {
    // Tower + projector, then the projector alone on the trained tower's recomputed features, then the
    // projector again: every frozen-tower stage reads features, which a zero budget puts all on disk.
    const recipe = join(dir, 'spill.json');
    await writeRecipe(recipe, [
      { template: 'llava-plain', steps: 2, lr: 1e-2, trainLanguageModel: false },
      {
        template: 'llava-plain',
        steps: 2,
        lr: 1e-2,
        trainLanguageModel: false,
        trainables: [{ mode: 'trained', match: ['model.vision_tower.*', 'model.multi_modal_projector.*'] }],
      },
      { template: 'llava-plain', steps: 3, lr: 1e-2, trainLanguageModel: false },
    ]);
    const records: VlitRecord[] = [];
    for await (const r of readRecordsFile(data, { dialect: 'vlit' })) records.push(r);
    let spilledDuringStage3: string[] = [];
    const run = (outDir: string, featureMemoryBytes?: number) =>
      trainLlavaFolder({
        runtime: createNodeRuntime(),
        modelDir,
        records,
        imageRoot: root,
        recipe: JSON.parse(readFileSync(recipe, 'utf8')),
        outDir,
        ...(featureMemoryBytes === undefined ? {} : { featureMemoryBytes }),
        onProgress: (e) => {
          const spill = existsSync(outDir) ? readdirSync(outDir).filter((f) => f.startsWith('.features-')) : [];
          if (featureMemoryBytes === 0 && e.stage === 's3' && spill.length === 1) spilledDuringStage3 = readdirSync(join(outDir, spill[0])).sort();
        },
      });
    const memory = await run(join(dir, 'spill-memory'));
    const files = await run(join(dir, 'spill-files'), 0);
    // The spilled files: the two readable images, written once and rewritten after the tower stage (the
    // same two files), in the call's own .features-* folder while stage 3 trains; gone once the model is saved.
    expect(spilledDuringStage3).toEqual(['image-0.safetensors', 'image-1.safetensors']);
    for (const out of ['spill-files', 'spill-memory']) expect(readdirSync(join(dir, out)).filter((f) => f.startsWith('.features-'))).toEqual([]);
    expect(files.stages.map((s) => s.steps)).toEqual([2, 2, 3]);
    const losses = async (r: typeof memory) =>
      Promise.all(
        r.stages.map(async (s) =>
          (await readFile(join(s.dir, 'metrics.jsonl'), 'utf8'))
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l).loss),
        ),
      );
    expect(await losses(files)).toEqual(await losses(memory));
    expect(files.rejects).toEqual(memory.rejects);
    for (const suffix of ['multi_modal_projector.linear_1.weight', 'patch_embedding.weight']) {
      expect(Array.from(await tensorOf(files.savedDir, suffix)), suffix).toEqual(Array.from(await tensorOf(memory.savedDir, suffix)));
    }
  }, 300_000);

  it('bad flags and missing files: one line, non-zero exit', async () => {
    const recipe = join(dir, 'bad-flags.json');
    await writeRecipe(recipe, [{ template: 'model', steps: 1, lr: 1e-3, trainLanguageModel: true }]);
    const out = join(dir, 'bad');
    expectOneLine(await vlit('train', '--no-such-flag'), 2, 'vlit train:', '--no-such-flag');
    expectOneLine(await vlit('train', '--data', data, '--root', root, '--recipe', recipe, '--out', out), 2, '--model');
    expectOneLine(await vlit('train', '--model', modelDir, '--data', data, '--root', root, '--recipe', recipe, '--out', out, '--engine', 'gpu'), 2, '--engine');
    expectOneLine(
      await vlit('train', '--model', modelDir, '--data', join(dir, 'nope.jsonl'), '--root', root, '--recipe', recipe, '--out', out),
      1,
      'nope.jsonl',
    );
    expectOneLine(await vlit('train', '--model', modelDir, '--data', data, '--root', root, '--recipe', join(dir, 'nope.json'), '--out', out), 1, 'nope.json');
    expectOneLine(await vlit('train', '--model', join(dir, 'no-model'), '--data', data, '--root', root, '--recipe', recipe, '--out', out), 1, 'no-model');
  });
});
