/**
 * @vlit/cli: the `vlit` command (bin `vlit`, see docs/cli.md) and the demo flow it runs.
 * @packageDocumentation
 */
export { runDemo, type DemoOptions, type DemoResult } from './demo.js';
export { runCli, COMMANDS, cliVersion } from './main.js';
export * from './main-job/index.js';
export type { CliIo, Command } from './shared.js';
