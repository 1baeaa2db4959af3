import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isVlitError } from '@vlit/core';
import { runReferencePython } from '@vlit/test-kit/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveAdamWSettings } from './optim/adamw.js';
import { createStageSchedule, llavaRecipe, parseRecipe, stageTotalSteps, recipeHash, resolveTrainables, type Recipe, type RecipeInput } from './recipe.js';

let names: string[] = [];

beforeAll(() => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'vlit-llava-names-')), 'names.json');
  runReferencePython(new URL('./py/llava_tensor_names.py', import.meta.url).pathname, [out], { timeoutMs: 300_000 });
  names = Object.keys(JSON.parse(readFileSync(out, 'utf8')) as Record<string, number[]>);
}, 300_000);

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
    return String((err as { details: { field: string } }).details.field);
  }
  throw new Error('expected a ValidationError');
}

const data = { pretrainData: [{ name: 'lcs', path: 'blip_laion_cc_sbu_558k.json' }], instructionData: [{ name: 'mix665k', path: 'llava_v1_5_mix665k.json' }] };

describe('LLaVA recipe', () => {
  it('stage 1 trains only the projector (plain template, lr 1e-3, 1 epoch, batch 256); stage 2 projector + LM (conversation template, lr 2e-5, batch 128)', () => {
    const r = llavaRecipe(data);
    const [s1, s2] = r.stages;
    expect([s1.template, s1.optimizer.lr, s1.epochs, s1.batchSize * s1.gradientAccumulation]).toEqual(['llava-plain', 1e-3, 1, 256]);
    expect([s2.template, s2.optimizer.lr, s2.epochs, s2.batchSize * s2.gradientAccumulation]).toEqual(['llava-v1', 2e-5, 1, 128]);
    expect([s1.schedule.type, s1.schedule.warmupRatio, s1.optimizer.weightDecay, s1.clipGradNorm]).toEqual(['cosine', 0.03, 0, 1]);

    const t1 = resolveTrainables(s1, names, { stageIndex: 0 });
    const projector = names.filter((n) => n.includes('multi_modal_projector'));
    expect(projector.length).toBe(4); // linear_1/linear_2 weight + bias
    expect(t1.trained).toEqual(projector);
    expect(t1.lora).toEqual([]);
    expect(t1.trained.length + t1.frozen.length).toBe(names.length);

    const t2 = resolveTrainables(s2, names, { stageIndex: 1 });
    expect(t2.trained.filter((n) => n.includes('vision_tower'))).toEqual([]);
    expect(t2.trained).toEqual(names.filter((n) => !n.includes('vision_tower')));
  });

  it('stage2.visionTowerLr unfreezes the whole tower in stage 2 at its own lr (LLaVA-NeXT), the rest at the stage lr', () => {
    const r = llavaRecipe({ ...data, stage2: { lr: 1e-5, visionTowerLr: 2e-6 } });
    const t2 = resolveTrainables(r.stages[1], names, { stageIndex: 1 });
    const tower = names.filter((n) => n.startsWith('model.vision_tower.'));
    expect(tower.length).toBe(39); // transformers' CLIP tower: embeddings, 2 layers, pre/post LayerNorms
    expect(t2.trained.sort()).toEqual([...names].sort());
    const lrs = new Map(resolveAdamWSettings(t2.trained, r.stages[1].optimizer).map((p) => [p.name, p.lr]));
    for (const n of tower) expect(lrs.get(n), n).toBe(2e-6);
    for (const n of names.filter((n) => !n.startsWith('model.vision_tower.'))) expect(lrs.get(n), n).toBe(1e-5);
    // Stage 1 and the default recipe keep it frozen.
    expect(resolveTrainables(r.stages[0], names).trained.some((n) => n.includes('vision_tower'))).toBe(false);
    expect(resolveTrainables(llavaRecipe(data).stages[1], names).trained.some((n) => n.includes('vision_tower'))).toBe(false);
  });

  it("the LoRA variant puts adapters on every decoder projection of transformers' Llava names", () => {
    const r = llavaRecipe({ ...data, lora: true });
    const t = resolveTrainables(r.stages[1], names, { stageIndex: 1 });
    const expected = names.filter((n) => /language_model\.layers\.\d+\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj\.weight$/.test(n));
    expect(expected.length).toBe(14);
    expect(t.lora.map((l) => l.weight)).toEqual(expected);
    expect(t.lora[0]).toMatchObject({ r: 128, alpha: 256, dropout: 0.05, scale: 2, module: expected[0].slice(0, -'.weight'.length) });
    expect(t.trained).toEqual(names.filter((n) => n.includes('multi_modal_projector')));
    expect(t.trained.length + t.frozen.length).toBe(names.length);
  });
});

describe('recipe validation names the field', () => {
  const base = (): RecipeInput => JSON.parse(JSON.stringify(llavaRecipe(data))) as RecipeInput;

  it('bad values', () => {
    const a = base();
    a.stages[1].optimizer.lr = -1;
    expect(fieldOf(() => parseRecipe(a))).toBe('stages.1.optimizer.lr');
    const b = base();
    delete b.stages[0].epochs;
    expect(fieldOf(() => parseRecipe(b))).toBe('stages.0.epochs');
    const c = base();
    c.stages[1].name = 'pretrain';
    expect(fieldOf(() => parseRecipe(c))).toBe('stages.1.name');
    const d = base();
    (d.stages[1].trainables[0] as { mode: string }).mode = 'melted';
    expect(fieldOf(() => parseRecipe(d))).toBe('stages.1.trainables.0.mode');
  });

  it('a pattern or LoRA target that matches no tensor of the model', () => {
    const r = llavaRecipe({ ...data, projector: ['*mm_projector.*'] });
    expect(fieldOf(() => resolveTrainables(r.stages[0], names, { stageIndex: 0 }))).toBe('stages.0.trainables.0.match.0');
    const l = llavaRecipe({ ...data, lora: { targetModules: ['q_proj', 'qkv_proj'] } });
    expect(fieldOf(() => resolveTrainables(l.stages[1], names))).toBe('trainables.1.targetModules.1');
  });

  it('JSON round trip is lossless and the hash ignores key order but not values', async () => {
    const r = llavaRecipe(data);
    const again: Recipe = parseRecipe(JSON.parse(JSON.stringify(r)));
    expect(again).toEqual(r);
    const reordered = JSON.parse(JSON.stringify(r, Object.keys(r).reverse())) as RecipeInput;
    const h = await recipeHash(r);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(await recipeHash({ ...reordered, stages: r.stages })).toBe(h);
    const changed = base();
    changed.stages[0].optimizer.lr = 2e-3;
    expect(await recipeHash(changed)).not.toBe(h);
  });
});

describe('stage length and schedule', () => {
  it("counts optimiser steps as transformers' Trainer (ceil of micro-batches / accumulation) and turns the warmup ratio into steps", () => {
    const stage = llavaRecipe(data).stages[1]; // accumulation 8, 1 epoch, cosine, warmup 3%
    expect(stageTotalSteps(stage, 100)).toBe(13); // ceil(100 / 8)
    expect(stageTotalSteps({ ...stage, epochs: 2.5 }, 100)).toBe(33); // ceil(2.5 * 13)
    expect(stageTotalSteps({ ...stage, maxSteps: 7 }, 100)).toBe(7);
    expect(stageTotalSteps({ ...stage, gradientAccumulation: 200 }, 100)).toBe(1);
    const s = createStageSchedule(stage, 100);
    expect(s.options).toMatchObject({ type: 'cosine', totalSteps: 13, warmupSteps: 1 }); // ceil(0.39)
    expect([s.factor(0), s.factor(1), s.factor(13)]).toEqual([0, 1, 0]);
  });
});
