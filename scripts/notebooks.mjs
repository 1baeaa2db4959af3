#!/usr/bin/env node
// Execute the example notebooks headless with Deno's Jupyter kernel and type-check their code.
//
//   node scripts/notebooks.mjs                 every examples/notebooks/*.ipynb (fixtures/ is not included)
//   node scripts/notebooks.mjs FILE.ipynb ...  only these (e.g. examples/notebooks/fixtures/broken.ipynb, which must fail)
//
// Needs: the packages built (`npm run build`), Debian's jupyter-nbconvert, jupyter-client and python3-ipykernel,
// and the root devDependency `deno`. The kernel is installed into a repo-local HOME (deno ignores JUPYTER_DATA_DIR).
// Executed copies go to examples/out/notebooks/executed/, the extracted code to examples/out/notebooks/check/.
// Prints one line per notebook and exits 1 when any notebook fails to execute or to type-check.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const deno = join(repo, 'node_modules', '.bin', 'deno');
const work = join(repo, 'examples', 'out', 'notebooks');
const home = join(work, 'home');
const executedDir = join(work, 'executed');
const checkDir = join(work, 'check');
const timeoutS = Number(process.env.VLIT_NOTEBOOK_TIMEOUT ?? 300);
const env = { ...process.env, HOME: home, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', ONNXRUNTIME_NODE_INSTALL: 'skip' };

const args = process.argv.slice(2);
const notebooks =
  args.length > 0
    ? args.map((a) => resolve(a))
    : readdirSync(join(repo, 'examples', 'notebooks'))
        .filter((f) => f.endsWith('.ipynb'))
        .sort()
        .map((f) => join(repo, 'examples', 'notebooks', f));

function fail(message) {
  process.stdout.write(`notebooks: ${message}\n`);
  process.exit(1);
}

if (notebooks.length === 0) fail('no notebooks found');
for (const nb of notebooks) if (!existsSync(nb)) fail(`no such notebook: ${nb}`);
if (!existsSync(deno)) fail(`${relative(repo, deno)} is missing: run npm ci (deno is a root devDependency)`);
if (spawnSync('jupyter', ['nbconvert', '--version'], { encoding: 'utf8' }).status !== 0) {
  fail('jupyter nbconvert is missing: apt-get install -y --no-install-recommends jupyter-nbconvert jupyter-client python3-ipykernel');
}

// The kernel spec names the deno binary by absolute path, so reinstall when the checkout moved.
const kernelJson = join(home, '.local', 'share', 'jupyter', 'kernels', 'deno', 'kernel.json');
const kernelOk = existsSync(kernelJson) && readFileSync(kernelJson, 'utf8').includes(join(repo, 'node_modules'));
if (!kernelOk) {
  mkdirSync(home, { recursive: true });
  const r = spawnSync(deno, ['jupyter', '--install'], { env, encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(kernelJson)) fail(`deno jupyter --install failed:\n${r.stdout}${r.stderr}`);
}

rmSync(checkDir, { recursive: true, force: true });
mkdirSync(checkDir, { recursive: true });
mkdirSync(executedDir, { recursive: true });

/** The code cells of a notebook as one TypeScript module (cell boundaries kept as comments for error lines). */
function extractCode(nbFile) {
  const nb = JSON.parse(readFileSync(nbFile, 'utf8'));
  const cells = (nb.cells ?? []).filter((c) => c.cell_type === 'code');
  const text = cells.map((c, i) => `// ---- cell ${i + 1}\n${Array.isArray(c.source) ? c.source.join('') : String(c.source ?? '')}\n`).join('');
  // `export {}` keeps the file a module, so top-level await and block-scoped names behave as in the kernel.
  return `${text}\nexport {};\n`;
}

const results = [];
const checkFiles = new Map();
for (const nb of notebooks) {
  const name = basename(nb, '.ipynb');
  const t0 = performance.now();
  const r = spawnSync(
    'jupyter',
    [
      'nbconvert',
      '--to',
      'notebook',
      '--execute',
      `--ExecutePreprocessor.timeout=${timeoutS}`,
      '--ExecutePreprocessor.kernel_name=deno',
      '--output-dir',
      executedDir,
      nb,
    ],
    { env, encoding: 'utf8', cwd: dirname(nb), maxBuffer: 64 * 1024 * 1024 },
  );
  const seconds = (performance.now() - t0) / 1000;
  let error;
  if (r.status !== 0) {
    // nbconvert's CellExecutionError names the cell and the kernel's message; keep its last lines.
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('[NbConvertApp]'));
    error = `execution failed (exit ${r.status ?? r.signal}): ${lines.slice(-6).join(' | ')}`;
  }
  const checkFile = join(checkDir, `${name}.ts`);
  writeFileSync(checkFile, extractCode(nb));
  checkFiles.set(name, checkFile);
  results.push({ name, nb, seconds, error });
}

// One `deno check` over every notebook (the package types load once); errors are attributed by file name.
// --unstable-sloppy-imports: tsup's .d.ts files import their chunks as './chunk-x.js', which deno maps
// to the .d.ts only when sloppy imports are on (the packages are workspace folders, not npm tarballs).
const tc0 = performance.now();
const check = spawnSync(deno, ['check', '--unstable-sloppy-imports', '--quiet', ...checkFiles.values()], {
  env,
  encoding: 'utf8',
  cwd: repo,
  maxBuffer: 64 * 1024 * 1024,
});
const checkSeconds = (performance.now() - tc0) / 1000;
const checkOutput = `${check.stdout}${check.stderr}`;
if (check.status !== 0) {
  const blocks = checkOutput.split(/\n(?=TS\d+ \[ERROR\]|error:)/);
  for (const res of results) {
    const mine = blocks.filter((b) => b.includes(`/check/${res.name}.ts`));
    // An error that names no notebook (e.g. a broken package type) fails them all.
    const orphan = mine.length === 0 && !blocks.some((b) => /\/check\/[^/]+\.ts/.test(b) && /TS\d+/.test(b));
    if (mine.length > 0 || orphan) {
      const first = (mine[0] ?? checkOutput).trim().split('\n').slice(0, 3).join(' | ');
      res.typeError = `type check failed (${mine.length || 'see output'} error${mine.length === 1 ? '' : 's'}): ${first}`;
    }
  }
}

let failed = 0;
for (const res of results) {
  const problems = [res.error, res.typeError].filter(Boolean);
  if (problems.length > 0) failed++;
  const status = problems.length === 0 ? 'ok  ' : 'FAIL';
  process.stdout.write(
    `${status} ${relative(repo, res.nb)}  executed in ${res.seconds.toFixed(1)} s${problems.length ? `: ${problems.join('; ')}` : ', type-checked'}\n`,
  );
}
if (failed > 0 && check.status !== 0) process.stdout.write(`\ndeno check output:\n${checkOutput}\n`);
process.stdout.write(
  `notebooks: ${results.length - failed} of ${results.length} ok (type check ${checkSeconds.toFixed(1)} s); executed copies in ${relative(repo, executedDir)}/\n`,
);
process.exit(failed > 0 ? 1 : 0);
