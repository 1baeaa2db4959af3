#!/usr/bin/env node
// Checks every public package exactly as npm would publish it: packs the tarball, then runs publint
// (--strict: warnings fail too) and are-the-types-wrong (--profile esm-only: Vlit ships ESM only) on it,
// and checks the house rules publint does not know: Apache-2.0 with the root LICENSE text, a README
// whose TypeScript example type-checks (scripts/docs-check.mjs),
// every `exports` entry with `types`, `import` and `default`, no tests or test helpers in the tarball,
// the hashbang on bin files only, and every package a built file imports declared in `dependencies` or
// `peerDependencies` (none bundled in from a devDependency).
//
//   node scripts/check-packages.mjs                 every non-private packages/*
//   node scripts/check-packages.mjs DIR [DIR...]    only these package folders (e.g. a broken fixture)
//
// Needs each package's dist/ built (`npm run build`). Exits 1 on any problem, naming package and rule.
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');

const args = process.argv.slice(2);
const dirs =
  args.length > 0
    ? args.map((d) => resolve(d))
    : readdirSync(join(root, 'packages'))
        .map((n) => join(root, 'packages', n))
        .filter((d) => existsSync(join(d, 'package.json')) && JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')).private !== true);

const problems = [];
const tmp = mkdtempSync(join(tmpdir(), 'vlit-check-packages-'));

/**
 * Package names a built ESM file imports (static and dynamic, with quoted specifiers), without node
 * builtins or relative paths. `createRequire(...)('x')` and template-literal specifiers are not seen;
 * tsup's output has none today.
 */
function importedPackages(text) {
  const names = new Set();
  for (const m of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|^import\s*["']([^"']+)["']/gm)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) continue;
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
  return names;
}

/** Runs a tool; returns its combined output and whether it exited 0. */
function run(cmd, argv, cwd) {
  try {
    const out = execFileSync(cmd, argv, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
    return { ok: true, out };
  } catch (err) {
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` || String(err) };
  }
}

try {
  for (const dir of dirs) {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const name = pkg.name ?? basename(dir);
    const fail = (rule, detail) => problems.push(`${name}: ${rule}${detail ? `: ${detail}` : ''}`);

    // House rules on package.json.
    if (pkg.license !== 'Apache-2.0') fail('license', `"license" is ${JSON.stringify(pkg.license)}, expected "Apache-2.0"`);
    if (pkg.type !== 'module') fail('type', '"type" must be "module" (ESM only)');
    if (!pkg.exports || typeof pkg.exports !== 'object') fail('exports', 'no "exports" map');
    for (const [sub, entry] of Object.entries(pkg.exports ?? {})) {
      if (sub === './package.json') continue;
      if (typeof entry !== 'object' || entry === null) {
        fail('exports', `${sub} is not a conditions object`);
        continue;
      }
      for (const cond of ['types', 'import', 'default']) if (typeof entry[cond] !== 'string') fail('exports', `${sub} has no "${cond}" condition`);
      if (Object.keys(entry)[0] !== 'types') fail('exports', `${sub}: "types" must come first`);
    }
    if (!existsSync(join(dir, 'README.md'))) fail('readme', 'no README.md');
    if (!existsSync(join(dir, 'LICENSE'))) fail('license-file', 'no LICENSE');
    else if (readFileSync(join(dir, 'LICENSE'), 'utf8') !== rootLicense) fail('license-file', 'LICENSE differs from the root LICENSE');

    const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {}), name]);

    // Pack exactly what npm would publish.
    const packed = run('npm', ['pack', dir, '--json', '--ignore-scripts', '--pack-destination', tmp], root);
    if (!packed.ok) {
      fail('npm pack', packed.out.trim().split('\n').slice(-5).join(' | '));
      continue;
    }
    const info = JSON.parse(packed.out.slice(packed.out.indexOf('[')))[0];
    const tgz = join(tmp, info.filename);
    const files = info.files.map((f) => f.path);
    for (const f of ['README.md', 'LICENSE', 'package.json']) if (!files.includes(f)) fail('tarball', `${f} is not in the tarball`);
    for (const f of files) if (/(^|\/)testing\/|\.test\.|(^|\/)src\//.test(f)) fail('tarball', `${f} is a source, test or test-helper file`);
    for (const f of files.filter((p) => p.endsWith('.js'))) {
      const text = readFileSync(join(dir, f), 'utf8');
      if (/^\/\/ src\/(?:.*\/)?testing\//m.test(text)) fail('tarball', `${f} bundles code from src/testing/`);
      // tsup inlines a package it does not treat as external (a devDependency) and marks its files
      // with `// ../<package>/...` comments; what users install must import such packages instead.
      const bundled = text.match(/^\/\/ \.\.\/([^/\n]+)\//m);
      if (bundled) fail('dependencies', `${f} bundles code of ../${bundled[1]} (declare that package in "dependencies" so it stays an import)`);
      for (const spec of importedPackages(text)) {
        if (!declared.has(spec)) fail('dependencies', `${f} imports "${spec}", which is not in "dependencies" or "peerDependencies"`);
      }
      const isBin = Object.values(typeof pkg.bin === 'string' ? { [name]: pkg.bin } : (pkg.bin ?? {})).some((b) => b.replace(/^\.\//, '') === f);
      if (isBin && !text.startsWith('#!')) fail('bin', `${f} is a bin without a hashbang`);
      if (!isBin && text.startsWith('#!')) fail('bin', `${f} is not a bin but starts with a hashbang`);
    }

    const lint = run(bin('publint'), ['run', tgz, '--strict', '--level', 'warning'], root);
    if (!lint.ok || /\b(Errors?|Warnings?):/.test(lint.out)) fail('publint', lint.out.trim());
    // attw's JSON holds every problem; the esm-only profile ignores the node10 and node16-cjs
    // resolutions (Vlit has no CommonJS build). attw exits 0 for a package without any types, so that is checked too.
    const attw = run(bin('attw'), [tgz, '--profile', 'esm-only', '--format', 'json'], root);
    let report;
    try {
      report = JSON.parse(attw.out.slice(attw.out.indexOf('{')));
    } catch {
      fail('attw', attw.out.trim());
    }
    if (report) {
      if (report.analysis.types === false) fail('attw', 'the package contains no types');
      const ignored = new Set(['node10', 'node16-cjs']);
      const found = (Array.isArray(report.problems) ? report.problems : Object.values(report.problems ?? {}).flat()).filter(
        (pr) => !pr.resolutionKind || !ignored.has(pr.resolutionKind),
      );
      for (const pr of found) fail('attw', `${pr.kind} at ${pr.entrypoint ?? '?'} (${pr.resolutionKind ?? 'any resolution'})`);
    }
    console.log(`${problems.some((p) => p.startsWith(`${name}:`)) ? 'FAIL' : 'ok  '} ${name} (${files.length} files)`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

// Each README's TypeScript example must type-check against the built packages, and its links resolve.
const readmes = dirs.map((d) => join(d, 'README.md')).filter((f) => existsSync(f));
const docs = run(process.execPath, [join(root, 'scripts', 'docs-check.mjs'), ...readmes], root);
if (!docs.ok) problems.push(`README examples and links (scripts/docs-check.mjs):\n${docs.out.trim()}`);

if (problems.length > 0) {
  console.error(`\n${problems.length} problem(s):\n${problems.map((p) => `- ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(`${dirs.length} package(s): publint, are-the-types-wrong and house rules pass`);
