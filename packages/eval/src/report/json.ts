import type { EvalRun } from '../run/evaluate.js';
import { VLIT_VERSION } from '../version.js';

/** The JSON report: every run with its scores, per-item results and manifest. */
export interface JsonReport {
  format: 'vlit-eval-report/1';
  vlitVersion: string;
  title: string;
  runs: EvalRun[];
}

/** Build the JSON report object (serialise with `JSON.stringify(report, null, 2)`). */
export function toJsonReport(runs: readonly EvalRun[], options: { title?: string } = {}): JsonReport {
  return { format: 'vlit-eval-report/1', vlitVersion: VLIT_VERSION, title: options.title ?? 'Vlit evaluation', runs: [...runs] };
}
