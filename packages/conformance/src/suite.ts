import { toFloat32, type InferenceBackend, type SessionOptions, type Tensor } from '@vlit/core';
import { maxAbsDiff } from '@vlit/test-kit';
import type { ConformanceCase } from './cases.js';

/** The outcome of one case on one backend. */
export interface CaseResult {
  case: string;
  backend: string;
  /** Largest absolute difference from the expectation, per output. */
  maxAbsDiff: Record<string, number>;
  /** Raw outputs, for comparing backends with each other. */
  outputs: Record<string, Tensor>;
  passed: boolean;
  /** Why it failed, when it did. */
  problems: string[];
}

/** Run one case on a backend and compare every output with its expectation. */
export async function runCase(backend: InferenceBackend, c: ConformanceCase, options?: SessionOptions): Promise<CaseResult> {
  const session = await backend.createSession(c.model, options);
  try {
    const outputs = await session.run(c.feeds);
    const result: CaseResult = { case: c.name, backend: backend.name, maxAbsDiff: {}, outputs, passed: true, problems: [] };
    for (const [name, exp] of Object.entries(c.expected)) {
      const out = outputs[name];
      if (!out) {
        result.problems.push(`missing output ${name}`);
        continue;
      }
      if (out.dims.join(',') !== exp.dims.join(',')) result.problems.push(`${name}: dims [${out.dims}] != [${exp.dims}]`);
      const diff = maxAbsDiff(toFloat32(out), exp.data);
      result.maxAbsDiff[name] = diff;
      if (!(diff <= c.tolerance)) result.problems.push(`${name}: max |diff| ${diff} > ${c.tolerance}`);
    }
    result.passed = result.problems.length === 0;
    return result;
  } finally {
    await session.release();
  }
}

/** Run every case on a backend. */
export async function runConformance(backend: InferenceBackend, cases: readonly ConformanceCase[], options?: SessionOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) results.push(await runCase(backend, c, options));
  return results;
}
