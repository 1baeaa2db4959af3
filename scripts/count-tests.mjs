#!/usr/bin/env node
// Sums the vitest JSON reports that every package's `test` script writes to test-results.json,
// and prints the closing line CI reads: "N passed, N failed". Exits 1 when any test failed
// or when a package that has tests produced no report (a crash before reporting must not look green).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
const failures = [];
for (const dir of readdirSync(join(root, 'packages'))) {
  const pkgDir = join(root, 'packages', dir);
  if (!existsSync(join(pkgDir, 'package.json'))) continue;
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  if (!pkg.scripts?.test) continue;
  const report = join(pkgDir, 'test-results.json');
  if (!existsSync(report)) {
    missing.push(pkg.name);
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A suite that failed to load (syntax error, import failure) has no failed tests but is a failure.
  for (const suite of r.testResults ?? []) {
    const file = suite.name ? suite.name.replace(root, '') : dir;
    for (const a of suite.assertionResults ?? []) {
      if (a.status !== 'failed') continue;
      const why = String(a.failureMessages?.[0] ?? '')
        .split('\n')
        .slice(0, 6)
        .join('\n    ');
      failures.push(`${file} > ${a.fullName ?? a.title}\n    ${why}`);
    }
    if (suite.status === 'failed' && (suite.assertionResults ?? []).every((a) => a.status !== 'failed')) {
      failed += 1;
      failures.push(
        `${file} (suite failed to run)\n    ${String(suite.message ?? '')
          .split('\n')
          .slice(0, 6)
          .join('\n    ')}`,
      );
    }
  }
}
// A build or typecheck task that failed counts as a failure even when every test passed.
const turboRc = Number(process.env.VLIT_TURBO_RC ?? 0);
if (turboRc !== 0 && failed === 0) {
  process.stderr.write(`npm test exited ${turboRc} (a build or typecheck task failed; see above)\n`);
  failed += 1;
}
// Checks .ci/run runs outside vitest (docs check, notebooks, TypeDoc and their broken fixtures).
passed += Number(process.env.VLIT_EXTRA_PASSED ?? 0);
failed += Number(process.env.VLIT_EXTRA_FAILED ?? 0);
// Name every failed test (CI keeps only the end of the log, so repeat them just above the last line).
if (failures.length) process.stdout.write(`failed tests:\n${failures.map((f) => `  ${f}`).join('\n')}\n`);
if (missing.length) {
  process.stderr.write(`no test report from: ${missing.join(', ')}\n`);
  failed += missing.length;
}
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(failed > 0 ? 1 : 0);
