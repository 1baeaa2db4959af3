// Vlit's main job, offline on a CPU (npm run demo, or: node examples/vlit-demo.mjs [out-dir]); the flow lives in @vlit/cli (packages/cli/src/demo.ts), also run by `vlit demo`.
import { runDemo } from '@vlit/cli';
await runDemo({ out: process.argv[2] ?? 'examples/out/demo', onLog: (line) => process.stdout.write(`${line}\n`) });
