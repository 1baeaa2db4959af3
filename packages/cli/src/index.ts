/**
 * @vlit/cli: the `vlit` command (bin `vlit`, see docs/cli.md) and the demo flow it runs.
 * @packageDocumentation
 */
export { runDemo, type DemoOptions, type DemoResult } from './demo.js';
export { runCli, COMMANDS, GROUPS, cliVersion, usage, resolveCommand } from './main.js';
export { defineCommand, renderHelp, configSchema, COMMON_FLAGS, type CommandSpec, type FlagSpec, type ExampleSpec, type DeclaredCommand } from './define.js';
export { createProgressBars, type ProgressBars } from './progress.js';
export * from './main-job/index.js';
export type { CliIo, Command } from './shared.js';
export { renderCliReference, replaceReferenceSection, REFERENCE_START, REFERENCE_END } from './reference.js';
