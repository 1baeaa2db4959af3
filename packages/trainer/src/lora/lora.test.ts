import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createTensor, isVlitError, serializeSafetensors, type Tensor } from '@vlit/core';
import { readSafetensorsFile } from '@vlit/core/node';
import { runReferencePython } from '@vlit/test-kit/node';
import { recordFigures } from '../testing/figures.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { readPeftAdapter, writePeftAdapter } from '../node.js';
import {
  createLoraAdapter,
  createPeftLoraConfig,
  loraScale,
  mergeLoraAdapter,
  parsePeftAdapter,
  peftTargetMatches,
  serializePeftAdapter,
  type LoraModuleWeights,
} from './index.js';

const py = (name: string) => new URL(`./py/${name}`, import.meta.url).pathname;

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

let dir = '';
let base = new Map<string, Tensor>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'vlit-peft-'));
  runReferencePython(py('peft_make_adapter.py'), [dir], { timeoutMs: 300_000 });
  const st = await readSafetensorsFile(path.join(dir, 'base', 'model.safetensors'));
  base = new Map([...st.tensors].map(([k, e]) => [k, e.toTensor()]));
}, 300_000);

async function checkMergeAgainstPeft(name: string): Promise<number> {
  const adapter = await readPeftAdapter(path.join(dir, `adapter-${name}`));
  const merged = mergeLoraAdapter(base, adapter);
  const reference = await readSafetensorsFile(path.join(dir, `merged-${name}.safetensors`));
  let worst = 0;
  for (const [key, t] of merged) {
    const ref = reference.get(key).toFloat32();
    worst = Math.max(worst, maxAbs(t.data, ref));
    // Not vacuous: the adapter really moves the weight.
    expect(maxAbs(t.data, base.get(key)!.data as Float32Array)).toBeGreaterThan(1e-2);
  }
  expect(merged.size).toBe(adapter.modules.size);
  recordFigures(`peft-made-${name}`, { mergedMaxAbsDiff: worst, modules: merged.size });
  return worst;
}

describe('PEFT 0.21 adapters made by peft', () => {
  it('reads q_proj/v_proj r=4 alpha=8 and merges to merge_and_unload() weights within 1e-6', { timeout: 120_000 }, async () => {
    const adapter = await readPeftAdapter(path.join(dir, 'adapter-plain'));
    expect(adapter.config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0.05, task_type: 'CAUSAL_LM' });
    // peft keeps target_modules as a set, so the saved order varies.
    expect([...(adapter.config.target_modules as string[])].sort()).toEqual(['q_proj', 'v_proj']);
    expect([...adapter.modules.keys()].sort()).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    expect(loraScale(adapter.config, 'model.layers.0.self_attn.q_proj')).toBe(2);
    expect(await checkMergeAgainstPeft('plain')).toBeLessThan(1e-6);
  });

  it('honours rsLoRA, rank_pattern and alpha_pattern as peft does', { timeout: 120_000 }, async () => {
    const adapter = await readPeftAdapter(path.join(dir, 'adapter-patterns'));
    expect(adapter.modules.get('model.layers.1.self_attn.v_proj')!.a.dims).toEqual([2, 16]);
    expect(loraScale(adapter.config, 'model.layers.1.self_attn.q_proj')).toBeCloseTo(3 / 2, 12); // alpha 3, sqrt(4)
    expect(loraScale(adapter.config, 'model.layers.1.self_attn.v_proj')).toBeCloseTo(8 / Math.SQRT2, 12);
    expect(loraScale(adapter.config, 'model.layers.1.self_attn.o_proj')).toBeCloseTo(4, 12);
    expect(await checkMergeAgainstPeft('patterns')).toBeLessThan(1e-6);
  });
});

describe('adapters written by Vlit', () => {
  it('load with PeftModel.from_pretrained: same LoRA weights, same scaling, merged weights within 1e-6', { timeout: 300_000 }, async () => {
    const rng = createRng('vlit-lora-write');
    const targets = ['q_proj', 'v_proj', 'down_proj'];
    const modules: LoraModuleWeights[] = [];
    for (const [key, t] of base) {
      const module = key.replace(/\.weight$/, '');
      if (!key.endsWith('.weight') || t.dims.length !== 2 || !peftTargetMatches(module, targets)) continue;
      const [outF, inF] = t.dims;
      modules.push({
        module,
        a: createTensor('float32', [3, inF], rng.fillNormal(new Float32Array(3 * inF), 0.3)),
        b: createTensor('float32', [outF, 3], rng.fillNormal(new Float32Array(outF * 3), 0.3)),
      });
    }
    expect(modules.length).toBe(6);
    const config = createPeftLoraConfig({ r: 3, loraAlpha: 6, targetModules: targets, useRslora: true, loraDropout: 0.1 });
    const adapter = createLoraAdapter(config, modules);
    const adapterDir = path.join(dir, 'vlit-adapter');
    await writePeftAdapter(adapterDir, adapter);
    const expected: Record<string, Tensor> = {};
    for (const m of modules) {
      expected[`${m.module}.A`] = m.a;
      expected[`${m.module}.B`] = m.b;
    }
    writeFileSync(path.join(dir, 'vlit-expected.safetensors'), serializeSafetensors(expected));
    writeFileSync(path.join(dir, 'vlit-merged.safetensors'), serializeSafetensors(Object.fromEntries(mergeLoraAdapter(base, adapter))));
    const out = path.join(dir, 'vlit-load.json');
    runReferencePython(
      py('peft_load_adapter.py'),
      [path.join(dir, 'base'), adapterDir, path.join(dir, 'vlit-expected.safetensors'), path.join(dir, 'vlit-merged.safetensors'), out],
      { timeoutMs: 300_000 },
    );
    const report = JSON.parse(readFileSync(out, 'utf8')) as {
      modules: string[];
      loraMaxDiff: number;
      mergedMaxDiff: number;
      mergedCompared: number;
      scaling: Record<string, number>;
    };
    recordFigures('vlit-written-adapter', { loraMaxDiff: report.loraMaxDiff, mergedMaxDiff: report.mergedMaxDiff, modules: report.modules.length });
    expect(report.modules).toEqual(modules.map((m) => m.module).sort());
    expect(report.loraMaxDiff).toBe(0);
    expect(report.mergedCompared).toBe(6);
    expect(report.mergedMaxDiff).toBeLessThan(1e-6);
    for (const s of Object.values(report.scaling)) expect(s).toBeCloseTo(6 / Math.sqrt(3), 12);
    // The folder holds what peft itself writes, and reads back unchanged.
    const again = await readPeftAdapter(adapterDir);
    expect(again.config).toEqual(adapter.config);
    for (const m of modules) expect(Array.from(again.modules.get(m.module)!.b.data)).toEqual(Array.from(m.b.data));
    await expect(writePeftAdapter(adapterDir, adapter)).rejects.toMatchObject({ code: 'VLIT_CONFLICT' });
  });

  it('writes every field peft 0.21 writes to adapter_config.json', async () => {
    const peftConfig = JSON.parse(readFileSync(path.join(dir, 'adapter-plain', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const ours = JSON.parse(
      serializePeftAdapter(createLoraAdapter(createPeftLoraConfig({ r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'], loraDropout: 0.05 }), [])).config,
    ) as Record<string, unknown>;
    expect(Object.keys(ours)).toEqual(Object.keys(peftConfig));
    // target_modules is a set in peft (order varies); base_model_name_or_path is where the test loaded the base from.
    for (const k of Object.keys(peftConfig)) if (k !== 'target_modules' && k !== 'base_model_name_or_path') expect([k, ours[k]]).toEqual([k, peftConfig[k]]);
  });
});

describe('bad adapters and target matching', () => {
  it('a module with lora_A but no lora_B is a FormatError naming the key; DoRA is unsupported', () => {
    const config = createPeftLoraConfig({ r: 2, loraAlpha: 2, targetModules: ['q_proj'] });
    const bytes = serializeSafetensors({ 'base_model.model.x.q_proj.lora_A.weight': createTensor('float32', [2, 3], new Float32Array(6)) });
    try {
      parsePeftAdapter(config, bytes);
      expect.unreachable();
    } catch (err) {
      expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
      expect((err as { details: { field: string } }).details.field).toBe('base_model.model.x.q_proj');
    }
    expect(() => parsePeftAdapter({ ...config, use_dora: true }, bytes)).toThrow(/DoRA/);
  });

  it('PEFT target rules: list entries match whole names or dotted suffixes; a string is a full regex', () => {
    expect(peftTargetMatches('model.layers.0.self_attn.q_proj', ['q_proj'])).toBe(true);
    expect(peftTargetMatches('model.layers.0.self_attn.qq_proj', ['q_proj'])).toBe(false);
    expect(peftTargetMatches('q_proj', ['q_proj'])).toBe(true);
    expect(peftTargetMatches('model.layers.0.self_attn.q_proj', '.*layers\\.0.*q_proj')).toBe(true);
    expect(peftTargetMatches('model.layers.1.self_attn.q_proj', '.*layers\\.0.*q_proj')).toBe(false);
  });

  it('merging by hand: W + (alpha/r) B A', () => {
    const config = createPeftLoraConfig({ r: 1, loraAlpha: 2, targetModules: ['p'] });
    const adapter = createLoraAdapter(config, [{ module: 'p', a: createTensor('float32', [1, 2], [1, 2]), b: createTensor('float32', [2, 1], [3, -1]) }]);
    const merged = mergeLoraAdapter(new Map([['p.weight', createTensor('float32', [2, 2], [1, 0, 0, 1])]]), adapter);
    // B A = [[3, 6], [-1, -2]]; scale 2.
    expect(Array.from(merged.get('p.weight')!.data)).toEqual([7, 12, -2, -3]);
  });
});
