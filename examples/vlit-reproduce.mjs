// The review's reproduction: npm run reproduce [-- --quick] [--out DIR] [--seeds 1,2,3] [--force].
// Trains the main job's model on six data variants with several seeds each and writes the two tables
// (variants x dimensions; data quality per dataset). The full run rewrites docs/results.md; --quick writes
// only into its output folder (examples/out/reproduce-quick). See docs/results.md and packages/cli/src/main-job/reproduce.ts.
import { writeFile } from 'node:fs/promises';
import { isVlitError } from '@vlit/core';
import { runReproduction } from '@vlit/cli';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const value = (flag) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const out = value('--out') ?? (quick ? 'examples/out/reproduce-quick' : 'examples/out/reproduce');
const seeds = value('--seeds')?.split(',').map(Number);
let last = '';
try {
  const result = await runReproduction({
    out,
    quick,
    force: args.includes('--force'),
    ...(seeds ? { seeds } : {}),
    onProgress: (e) => {
      if (e.stage === 'run-done' || e.stage === 'report' || (e.stage !== last && e.stage !== 'train'))
        process.stderr.write(`[${e.done}/${e.total ?? '?'}] ${e.stage} ${e.message ?? ''}\n`);
      last = e.stage;
    },
  });
  if (!quick) await writeFile('docs/results.md', result.markdown);
  process.stdout.write(result.markdown);
  process.stderr.write(`\nwritten: ${result.markdownPath}${quick ? '' : ' and docs/results.md'} (${result.seconds.toFixed(0)} s)\n`);
} catch (err) {
  if (!isVlitError(err)) throw err;
  process.stderr.write(`vlit-reproduce: ${err.code} ${err.message}\n`);
  process.exitCode = 1;
}
