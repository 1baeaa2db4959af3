#!/usr/bin/env node
// Lists the names every public entry point of every package exports (values and types), read from the
// built declaration files with the TypeScript compiler: the input of the export snapshot test and of the
// "no name is exported by two packages" check. `node scripts/export-names.mjs` prints the lists and the
// names that two packages export; `--write` refreshes each package's api-names.txt (review the diff).
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;

/** Every package folder with its package.json. */
export function packages() {
  return readdirSync(join(root, 'packages'))
    .map((dir) => ({ dir: join(root, 'packages', dir), name: dir }))
    .filter((p) => existsSync(join(p.dir, 'package.json')))
    .map((p) => ({ ...p, pkg: JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) }));
}

/** The declaration file of each export subpath ('.', './node', ...). */
function entryTypes(pkg, dir) {
  const out = {};
  for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
    const types = typeof target === 'string' ? undefined : (target.types ?? target.import?.types);
    if (typeof types === 'string' && types.endsWith('.d.ts')) out[sub] = join(dir, types);
  }
  return out;
}

/** { subpath: sorted names } for one package, from its dist/*.d.ts. */
export function exportNames(p) {
  const entries = entryTypes(p.pkg, p.dir);
  const files = Object.values(entries).filter((f) => existsSync(f));
  if (!files.length) return {};
  const program = ts.createProgram(files, {
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  });
  const checker = program.getTypeChecker();
  const result = {};
  for (const [sub, file] of Object.entries(entries)) {
    const sf = program.getSourceFile(file);
    const sym = sf && checker.getSymbolAtLocation(sf);
    result[sub] = sym
      ? checker
          .getExportsOfModule(sym)
          .map((s) => s.getName())
          .sort()
      : [];
  }
  return result;
}

/** The api-names.txt text of one package: one `subpath name` line per export. */
export function snapshotText(names) {
  return (
    Object.entries(names)
      .flatMap(([sub, list]) => list.map((n) => `${sub} ${n}`))
      .join('\n') + '\n'
  );
}

/** Names exported by more than one package (re-exports of the same thing from two subpaths of one package are fine). */
export function sharedNames(all) {
  const owners = new Map();
  for (const { name, names } of all) for (const list of Object.values(names)) for (const n of list) owners.set(n, new Set([...(owners.get(n) ?? []), name]));
  return [...owners]
    .filter(([, s]) => s.size > 1)
    .map(([n, s]) => ({ name: n, packages: [...s].sort() }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const all = packages()
    .filter((p) => !p.pkg.private)
    .map((p) => ({ ...p, names: exportNames(p) }));
  for (const p of all) {
    const count = Object.values(p.names).reduce((a, l) => a + l.length, 0);
    process.stdout.write(
      `${p.pkg.name}: ${count} names (${Object.entries(p.names)
        .map(([s, l]) => `${s} ${l.length}`)
        .join(', ')})\n`,
    );
    if (process.argv.includes('--write')) writeFileSync(join(p.dir, 'api-names.txt'), snapshotText(p.names));
  }
  const shared = sharedNames(all);
  process.stdout.write(`\nexported by two or more packages: ${shared.length}\n`);
  for (const s of shared) process.stdout.write(`  ${s.name}: ${s.packages.join(', ')}\n`);
}
