/** The `vlit` binary: the only place that touches the process (argv, streams, exit code). */
import { runCli } from './main.js';

// `vlit ... | head` closes stdout early; that is the reader's choice, not a failure worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTty: process.stdout.isTTY === true,
  progress: process.stderr,
  stdin: process.stdin,
});
