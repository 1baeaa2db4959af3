#!/usr/bin/env node
// Render the command reference of docs/cli.md from the CLI's own definitions (packages/cli must be built).
//   node scripts/cli-reference.mjs          rewrite the section between the markers
//   node scripts/cli-reference.mjs --check  exit 1 when docs/cli.md differs from the rendering
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { COMMANDS, renderCliReference, replaceReferenceSection, REFERENCE_START, REFERENCE_END } = await import(
  new URL('../packages/cli/dist/index.js', import.meta.url).href
);
const file = `${root}docs/cli.md`;
const page = readFileSync(file, 'utf8');
const next = replaceReferenceSection(page, renderCliReference(COMMANDS));
if (next === undefined) {
  process.stderr.write(`cli-reference: ${file} lacks the markers\n  ${REFERENCE_START}\n  ${REFERENCE_END}\n`);
  process.exit(1);
}
if (process.argv.includes('--check')) {
  if (next !== page) {
    process.stderr.write('cli-reference: docs/cli.md is out of date; run node scripts/cli-reference.mjs\n');
    process.exit(1);
  }
  process.stdout.write('cli-reference: docs/cli.md is up to date\n');
} else {
  writeFileSync(file, next);
  process.stdout.write(next === page ? 'cli-reference: docs/cli.md unchanged\n' : 'cli-reference: docs/cli.md updated\n');
}
