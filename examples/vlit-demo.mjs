// Vlit's main job, offline on a CPU: npm run demo, or node examples/vlit-demo.mjs [out-dir] [--quick] [--force] [--data-only].
// It renders a synthetic world, builds and checks instruction data, pretrains the tower (stage 0, full run), trains a small LLaVA in two stages,
// evaluates it per dimension and saves it as a checkpoint folder (packages/cli/src/main-job, docs/main-job.md).
// The output folder must be new, empty or made by an earlier run (a .vlit-output marker): a folder of yours is refused, never emptied.
import { isVlitError } from '@vlit/core';
import { runCli } from '@vlit/cli';

const args = process.argv.slice(2);
const out = args.find((a) => !a.startsWith('--')) ?? 'examples/out/demo';
const flags = args.filter((a) => a.startsWith('--'));
try {
  process.exitCode = await runCli(['demo', out, ...flags], {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
} catch (err) {
  if (!isVlitError(err)) throw err;
  process.stderr.write(`vlit-demo: ${err.code} ${err.message}\n`);
  process.exitCode = 1;
}
