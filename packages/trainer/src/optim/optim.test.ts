import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createTensor, isVlitError, parseSafetensors, serializeSafetensors, type Tensor } from '@vlit/core';
import { runReferencePython } from '@vlit/test-kit/node';
import { recordFigures } from '../testing/figures.js';
import { relativeError } from '../testing/tiny-llava.js';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_NO_DECAY,
  clipGradNorm,
  createAdamW,
  createGradientAccumulator,
  createLrSchedule,
  parseAdamWState,
  resolveAdamWSettings,
  serializeAdamWState,
  totalGradNorm,
  type AdamWOptionsInput,
  type NamedParameter,
} from './index.js';

const py = (name: string) => new URL(`./py/${name}`, import.meta.url).pathname;

const SHAPES: Record<string, number[]> = { 'layer.weight': [8, 16], 'layer.bias': [16], 'proj.weight': [4, 8] };
const NAMES = Object.keys(SHAPES);
const STEPS = 20;
const OPTIONS: AdamWOptionsInput = {
  lr: 1e-2,
  betas: [0.9, 0.999],
  eps: 1e-8,
  weightDecay: 0.05,
  noDecay: ['*.bias'],
  groups: [{ match: ['proj.*'], lr: 2e-2, weightDecay: 0.1 }],
};

function fixture(): { init: Map<string, Float32Array>; grads: Map<string, Float32Array>[] } {
  const rng = createRng('trainer-adamw');
  const init = new Map(NAMES.map((n) => [n, rng.fillNormal(new Float32Array(SHAPES[n].reduce((a, b) => a * b, 1)))]));
  const grads = Array.from({ length: STEPS }, (_, s) => {
    // Alternate small and large gradients so clipping is active on some steps and idle on others.
    const scale = s % 3 === 0 ? 2 : 0.05;
    return new Map(NAMES.map((n) => [n, rng.fillNormal(new Float32Array(init.get(n)!.length), scale)]));
  });
  return { init, grads };
}

function runVlit(init: Map<string, Float32Array>, grads: Map<string, Float32Array>[], from = 0, to = STEPS, state?: Uint8Array) {
  const params: NamedParameter[] = NAMES.map((name) => ({ name, data: init.get(name)!.slice() }));
  const opt = createAdamW(params, OPTIONS);
  if (state) opt.loadState(parseAdamWState(state).state);
  const schedule = createLrSchedule({ type: 'cosine', warmupSteps: 3, totalSteps: STEPS });
  const norms: number[] = [];
  const lrs: number[][] = [];
  for (let s = from; s < to; s++) {
    const g = new Map([...grads[s]].map(([n, v]) => [n, v.slice()]));
    norms.push(clipGradNorm(g, { maxNorm: 1 }));
    lrs.push(opt.settings.map((x) => x.lr * schedule.factor(s)));
    opt.step(g, { lrFactor: schedule.factor(s) });
  }
  return { params, opt, norms, lrs };
}

describe('AdamW + clip_grad_norm_ + cosine warmup against torch 2.13', () => {
  it('20 steps give torch.optim.AdamW parameters and state within 1e-6 relative', { timeout: 300_000 }, () => {
    const { init, grads } = fixture();
    const dir = mkdtempSync(path.join(tmpdir(), 'vlit-adamw-'));
    const tensors: Record<string, Tensor> = {};
    for (const n of NAMES) tensors[`init.${n}`] = createTensor('float32', SHAPES[n], init.get(n)!);
    grads.forEach((g, s) => {
      for (const n of NAMES) tensors[`grad.${s}.${n}`] = createTensor('float32', SHAPES[n], g.get(n)!);
    });
    writeFileSync(path.join(dir, 'inputs.safetensors'), serializeSafetensors(tensors));
    const spec = {
      names: NAMES,
      lr: 1e-2,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weight_decay: 0.05,
      groups: [
        { names: ['layer.weight'], lr: 1e-2, weight_decay: 0.05 },
        { names: ['layer.bias'], lr: 1e-2, weight_decay: 0 },
        { names: ['proj.weight'], lr: 2e-2, weight_decay: 0.1 },
      ],
      warmup: 3,
      total: STEPS,
      steps: STEPS,
      max_norm: 1,
    };
    writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    runReferencePython(py('adamw_reference.py'), [path.join(dir, 'inputs.safetensors'), path.join(dir, 'spec.json'), dir], { timeoutMs: 300_000 });
    const torchOut = parseSafetensors(readFileSync(path.join(dir, 'torch-result.safetensors')));
    const torchJson = JSON.parse(readFileSync(path.join(dir, 'torch-result.json'), 'utf8')) as { lrs: number[][]; norms: number[] };

    const vlit = runVlit(init, grads);
    // Clipping really happened on some steps and not on others.
    expect(torchJson.norms.filter((n) => n > 1).length).toBeGreaterThan(3);
    expect(torchJson.norms.filter((n) => n < 1).length).toBeGreaterThan(3);
    for (let s = 0; s < STEPS; s++) {
      expect(Math.abs(vlit.norms[s] - torchJson.norms[s]) / torchJson.norms[s]).toBeLessThan(1e-6);
      // Group order in torch is layer.weight, layer.bias, proj.weight: the same as NAMES.
      for (let k = 0; k < 3; k++) expect(vlit.lrs[s][k]).toBeCloseTo(torchJson.lrs[s][k], 15);
    }
    const state = vlit.opt.getState().params;
    recordFigures('adamw-vs-torch', {
      paramsMaxRel: Math.max(...vlit.params.map((p) => relativeError(p.data, torchOut.get(`param.${p.name}`).toFloat32()))),
      expAvgSqMaxRel: Math.max(...vlit.params.map((p) => relativeError(state.get(p.name)!.expAvgSq, torchOut.get(`exp_avg_sq.${p.name}`).toFloat32()))),
      normMaxRel: Math.max(...vlit.norms.map((n, s) => Math.abs(n - torchJson.norms[s]) / torchJson.norms[s])),
      clippedSteps: torchJson.norms.filter((n) => n > 1).length,
    });
    for (const p of vlit.params) {
      const moved = relativeError(p.data, init.get(p.name)!);
      expect(moved).toBeGreaterThan(1e-3); // the parameters really changed
      expect(relativeError(p.data, torchOut.get(`param.${p.name}`).toFloat32())).toBeLessThan(1e-6);
      expect(relativeError(state.get(p.name)!.expAvg, torchOut.get(`exp_avg.${p.name}`).toFloat32())).toBeLessThan(1e-6);
      expect(relativeError(state.get(p.name)!.expAvgSq, torchOut.get(`exp_avg_sq.${p.name}`).toFloat32())).toBeLessThan(1e-6);
      expect(state.get(p.name)!.step).toBe(torchOut.get(`step.${p.name}`).toFloat32()[0]);
    }
  });

  it('resuming from serialised state after 10 steps ends bit-identical to an uninterrupted run', () => {
    const { init, grads } = fixture();
    const whole = runVlit(init, grads);
    const first = runVlit(init, grads, 0, 10);
    const bytes = serializeAdamWState(first.opt.getState(), { note: 'half way' });
    const resumedInit = new Map(first.params.map((p) => [p.name, p.data]));
    const second = runVlit(resumedInit, grads, 10, STEPS, bytes);
    for (let i = 0; i < NAMES.length; i++) expect(Array.from(second.params[i].data)).toEqual(Array.from(whole.params[i].data));
    expect(parseAdamWState(bytes).metadata.note).toBe('half way');
  });

  it('a state file with a missing piece is a FormatError naming the tensor', () => {
    const bytes = serializeSafetensors({ 'w.exp_avg': createTensor('float32', [2], new Float32Array(2)) }, { format: 'vlit-adamw-state', version: '1' });
    try {
      parseAdamWState(bytes);
      expect.unreachable();
    } catch (err) {
      expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
      expect((err as { details: { field: string } }).details.field).toBe('w');
    }
  });
});

describe('parameter groups and clipping by hand', () => {
  it('no-decay patterns and the first matching group decide lr and weight decay', () => {
    const names = ['model.layers.0.input_layernorm.weight', 'model.layers.0.mlp.up_proj.bias', 'proj.linear_1.weight', 'model.embed.weight'];
    const s = resolveAdamWSettings(names, { lr: 1, weightDecay: 0.1, noDecay: [...DEFAULT_NO_DECAY], groups: [{ match: ['proj.*'], lr: 5 }] });
    expect(s.map((x) => [x.lr, x.weightDecay, x.group])).toEqual([
      [1, 0, -1],
      [1, 0, -1],
      [5, 0.1, 0],
      [1, 0.1, -1],
    ]);
  });

  it('one AdamW step by hand: decay first, then the bias-corrected update', () => {
    // Step 1: m = 0.1 g, v = 0.001 g², m̂ = g, v̂ = g², so p ← p(1 − lr·wd) − lr·g/(|g| + eps).
    const p = new Float32Array([1, -2]);
    const opt = createAdamW([{ name: 'p', data: p }], { lr: 0.1, weightDecay: 0.5, eps: 0 });
    opt.step({ p: new Float32Array([3, -0.5]) });
    expect(p[0]).toBeCloseTo(1 * 0.95 - 0.1, 6);
    expect(p[1]).toBeCloseTo(-2 * 0.95 + 0.1, 6);
  });

  it('clipping returns the pre-clip norm and scales to max_norm (3-4-5 triangle)', () => {
    const g = new Map([
      ['a', new Float32Array([3])],
      ['b', new Float32Array([4])],
    ]);
    expect(totalGradNorm(g)).toBe(5);
    expect(clipGradNorm(g, { maxNorm: 1 })).toBe(5);
    expect(g.get('a')![0]).toBeCloseTo(0.6, 6);
    expect(g.get('b')![0]).toBeCloseTo(0.8, 6);
    expect(totalGradNorm(g, Infinity)).toBeCloseTo(0.8, 6);
  });

  it('gradient accumulation sums then divides by the micro-batch count or a token count', () => {
    const acc = createGradientAccumulator({ w: 2 });
    acc.add({ w: new Float32Array([1, 2]) });
    acc.add({ w: new Float32Array([3, 4]) });
    expect(acc.count).toBe(2);
    expect(Array.from(acc.result().get('w')!)).toEqual([2, 3]);
    expect(Array.from(acc.result(4).get('w')!)).toEqual([1, 1.5]);
    acc.reset();
    expect(Array.from(acc.result(1).get('w')!)).toEqual([0, 0]);
    expect(() => acc.add({ w: new Float32Array(3) })).toThrow(/expected 2/);
  });
});

describe('lr schedules against transformers 5.17', () => {
  it("constant_with_warmup, linear and cosine give transformers' lr at every step", { timeout: 300_000 }, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vlit-sched-'));
    const out = path.join(dir, 'schedules.json');
    runReferencePython(py('schedules_reference.py'), [out], { timeoutMs: 300_000 });
    const cases = JSON.parse(readFileSync(out, 'utf8')) as {
      type: 'linear' | 'cosine' | 'constant_with_warmup';
      warmup: number;
      total: number;
      lrs: number[];
    }[];
    expect(cases.length).toBe(15);
    for (const c of cases) {
      const s = createLrSchedule({ type: c.type, warmupSteps: c.warmup, totalSteps: c.total });
      c.lrs.forEach((lr, step) => expect(Math.abs(s.factor(step) - lr)).toBeLessThan(1e-15));
    }
  });

  it('a cosine schedule without totalSteps is a ValidationError naming the field', () => {
    try {
      createLrSchedule({ type: 'cosine', warmupSteps: 2 });
      expect.unreachable();
    } catch (err) {
      expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
      expect((err as { details: { field: string } }).details.field).toBe('totalSteps');
    }
  });
});
