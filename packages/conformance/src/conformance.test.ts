import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSafetensors, serializeSafetensors, toFloat32, type Tensor } from '@vlit/core';
import { gelu, maxAbsDiff } from '@vlit/test-kit';
import { RUNTIME_PLATFORMS, createRuntimePair } from '@vlit/test-kit/node';
import { attentionReference, conformanceCases, mlpReference, runCase, type CaseResult } from './index.js';

const runtimes = createRuntimePair();
const cases = conformanceCases();
type Platform = (typeof RUNTIME_PLATFORMS)[number];
const runs = new Map<string, Promise<CaseResult>>();
/** Case `index` run on one runtime, computed once and shared, so each test can run on its own. */
function result(platform: Platform, index: number): Promise<CaseResult> {
  const key = `${platform} ${index}`;
  let r = runs.get(key);
  if (!r) {
    r = runCase(runtimes[platform].backend, cases[index]);
    runs.set(key, r);
  }
  return r;
}
/** Every case on one runtime, in case order (run one after another). */
async function results(platform: Platform): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (let i = 0; i < cases.length; i++) out.push(await result(platform, i));
  return out;
}

describe('the case references themselves (hand-worked; the primitives are tested in @vlit/test-kit)', () => {
  it('mlpReference is gelu(x W1 + b1) W2 + b2 with [in, out] weights', () => {
    // W1 = I, W2 = [1, 1]^T: gelu(1) + gelu(-1) + 0.5, from the published Phi(1) = 0.8413447460685429.
    const y = mlpReference([1, -1], [1, 0, 0, 1], [0, 0], [1, 1], [0.5], 1, 2, 2, 1);
    expect(y.length).toBe(1);
    expect(y[0]).toBeCloseTo(0.8413447460685429 - 0.15865525393145707 + 0.5, 14);
    expect(y[0]).toBeCloseTo(gelu(1) + gelu(-1) + 0.5, 15);
  });

  it('attentionReference: zero queries and keys give uniform weights, so every token gets the mean value', () => {
    const zero = [0, 0, 0, 0];
    const eye = [1, 0, 0, 1];
    const y = attentionReference([1, 2, 3, 4], { wq: zero, bq: [0, 0], wk: zero, bk: [0, 0], wv: eye, bv: [0, 0], wo: eye, bo: [10, 20] }, 2, 2, 2);
    expect(Array.from(y)).toEqual([12, 23, 12, 23]);
  });
});

describe.each(RUNTIME_PLATFORMS)('runtime %s', (platform) => {
  it.each(cases.map((c, i) => [c.name, i] as const))('%s matches the float64 TypeScript reference within 1e-5', async (_name, i) => {
    const r = await result(platform, i);
    expect(r.problems).toEqual([]);
    for (const diff of Object.values(r.maxAbsDiff)) expect(diff).toBeLessThanOrEqual(1e-5);
  });
});

describe('native and web agree', () => {
  it('every output of every case within 1e-5 across runtimes', async () => {
    const node = await results('node');
    const web = await results('web');
    expect(node.length).toBe(cases.length);
    expect(web.length).toBe(cases.length);
    for (let i = 0; i < cases.length; i++) {
      for (const name of Object.keys(cases[i].expected)) {
        const a = toFloat32(node[i].outputs[name]);
        const b = toFloat32(web[i].outputs[name]);
        expect(maxAbsDiff(a, b), `${cases[i].name} ${name}`).toBeLessThanOrEqual(1e-5);
      }
    }
  });
});

describe('parity with numpy (an independent reference in another language)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlit-parity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('numpy float64 computes the same outputs as the native runtime', async () => {
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
      expect(maxAbsDiff(toFloat32((await result('node', index)).outputs[output]), numpy), key).toBeLessThanOrEqual(1e-5);
    }
  });
});
