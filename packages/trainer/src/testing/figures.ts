/** Test-only: parity figures written to test-artifacts/parity-<key>.json so reports quote measured numbers. */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-artifacts');

/** Write `figures` to test-artifacts/parity-<key>.json (one file per key: test files run in parallel). */
export function recordFigures(key: string, figures: Record<string, number | string>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `parity-${key}.json`), `${JSON.stringify(figures, null, 2)}\n`);
}
