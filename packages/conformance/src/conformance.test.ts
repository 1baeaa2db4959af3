import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSafetensors, serializeSafetensors, toFloat32, type Tensor } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createWebRuntime } from '@vlit/runtime/web';
import { conformanceCases, maxAbsDiff, runCase, type CaseResult } from './index.js';
import { erf, gelu, softmaxRows } from './reference.js';

const runtimes = {
  node: createNodeRuntime({ session: { intraOpThreads: 1 } }),
  web: createWebRuntime({ wasm: { numThreads: 1 } }),
};
const cases = conformanceCases();
const results: Record<string, CaseResult[]> = { node: [], web: [] };

describe('the references themselves', () => {
  it('erf and gelu match published values', () => {
    // Abramowitz & Stegun table 7.1 / high-precision values.
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf(2)).toBeCloseTo(0.9953222650189527, 14);
    expect(erf(3)).toBeCloseTo(0.9999779095030014, 14);
    expect(erf(-1.5)).toBeCloseTo(-0.9661051464753108, 14);
    expect(gelu(1)).toBeCloseTo(0.8413447460685429, 14);
  });

  it('softmax of a hand-worked row', () => {
    const p = softmaxRows([0, Math.log(2), Math.log(5)], 1, 3);
    expect(Array.from(p).map((v) => +v.toFixed(12))).toEqual([0.125, 0.25, 0.625]);
  });
});

describe.each(Object.keys(runtimes) as (keyof typeof runtimes)[])('runtime %s', (platform) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s matches the float64 TypeScript reference within 1e-5', async (_name, c) => {
    const r = await runCase(runtimes[platform].backend, c);
    results[platform].push(r);
    expect(r.problems).toEqual([]);
    for (const diff of Object.values(r.maxAbsDiff)) expect(diff).toBeLessThanOrEqual(1e-5);
  });
});

describe('native and web agree', () => {
  it('every output of every case within 1e-5 across runtimes', () => {
    expect(results.node.length).toBe(cases.length);
    expect(results.web.length).toBe(cases.length);
    for (let i = 0; i < cases.length; i++) {
      for (const name of Object.keys(cases[i].expected)) {
        const a = toFloat32(results.node[i].outputs[name]);
        const b = toFloat32(results.web[i].outputs[name]);
        expect(maxAbsDiff(a, b), `${cases[i].name} ${name}`).toBeLessThanOrEqual(1e-5);
      }
    }
  });
});

describe('parity with numpy (an independent reference in another language)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlit-parity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('numpy float64 computes the same outputs as the native runtime', () => {
    const all: Record<string, Tensor> = {};
    for (const c of cases) Object.assign(all, c.tensors);
    writeFileSync(join(dir, 'in.safetensors'), serializeSafetensors(all));
    const script = new URL('../parity/reference.py', import.meta.url).pathname;
    // Debian's numpy is visible only to /usr/bin/python3 (.ci/run installs python3-numpy).
    execFileSync('/usr/bin/python3', [script, join(dir, 'in.safetensors'), join(dir, 'out.safetensors')], { stdio: 'pipe' });
    const out = parseSafetensors(readFileSync(join(dir, 'out.safetensors')));
    const byKey: Record<string, [number, string]> = { mlp: [0, 'projected'], patch: [1, 'tokens'], ln: [2, 'y'], attn: [3, 'y'] };
    for (const [key, [index, output]] of Object.entries(byKey)) {
      const expected = out.get(key);
      expect(expected.shape, key).toEqual(cases[index].expected[output].dims);
      const numpy = expected.toFloat32();
      // The TypeScript reference and numpy agree to float64 precision (as float32 after transfer)...
      expect(maxAbsDiff(numpy, cases[index].expected[output].data), key).toBeLessThanOrEqual(1e-6);
      // ...and the runtime agrees with numpy within the conformance tolerance.
      expect(maxAbsDiff(toFloat32(results.node[index].outputs[output]), numpy), key).toBeLessThanOrEqual(1e-5);
    }
  });
});
