// Vlit's main job, offline on a CPU (npm run demo, or: node examples/vlit-demo.mjs [out-dir] [--force]); the flow lives in @vlit/cli (packages/cli/src/demo.ts), also run by `vlit demo`.
// The output folder must be new, empty or made by an earlier run (a .vlit-output marker): a folder of yours is refused, never emptied.
import { isVlitError } from '@vlit/core';
import { runDemo } from '@vlit/cli';

const args = process.argv.slice(2);
const force = args.includes('--force');
const out = args.find((a) => a !== '--force') ?? 'examples/out/demo';
try {
  await runDemo({ out, force, onLog: (line) => process.stdout.write(`${line}\n`) });
} catch (err) {
  if (!isVlitError(err)) throw err;
  process.stderr.write(`vlit-demo: ${err.code} ${err.message}\n`);
  process.exitCode = 1;
}
