#!/usr/bin/env node
// The docs check: internal links and TypeScript code blocks in README.md and docs/*.md.
//
//   node scripts/docs-check.mjs               README.md and docs/*.md
//   node scripts/docs-check.mjs FILE.md ...   only these (scripts/fixtures/docs-check/broken.md must fail)
//
// 1. Links: every relative link `[text](path)`, `[text](path#anchor)`, `[text](#anchor)` and reference
//    definition `[id]: path` must name a file or folder that exists, and an anchor must be a heading of the
//    target markdown file (GitHub's slugs). http(s), mailto and links inside code are not checked.
// 2. Code: every ```ts / ```typescript block is written to its own module and type-checked by tsc against
//    the built packages' types (run `npm run build` first), strict, as the packages themselves are.
//    Markers, as an HTML comment on the line(s) right above the fence (invisible when rendered):
//      <!-- docs-check: skip REASON -->         a fragment that is not meant to compile alone
//      <!-- docs-check: prelude DECLARATIONS --> TypeScript put before the block (declare its free names)
// 3. docs/getting-started.md: every line of its bash/sh blocks must be a line of a code block in README.md.
// Prints one line per problem as FILE:LINE and exits 1 when there is any.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const files =
  args.length > 0
    ? args.map((a) => resolve(a))
    : [
        join(repo, 'README.md'),
        ...readdirSync(join(repo, 'docs'))
          .filter((f) => f.endsWith('.md'))
          .sort()
          .map((f) => join(repo, 'docs', f)),
      ];

const problems = [];
const report = (file, line, message) => problems.push(`${relative(repo, file)}:${line}: ${message}`);

/** Markdown split into lines, with fenced code blocks found (and their markers). */
function parse(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks = [];
  const inCode = new Array(lines.length).fill(false);
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]);
    if (!open) continue;
    const fence = open[2];
    let j = i + 1;
    while (j < lines.length && !lines[j].trimStart().startsWith(fence)) j++;
    for (let k = i; k <= Math.min(j, lines.length - 1); k++) inCode[k] = true;
    const markers = [];
    for (let k = i - 1; k >= 0 && /^\s*<!--\s*docs-check:/.test(lines[k]); k--) markers.unshift(lines[k]);
    blocks.push({ lang: open[3].toLowerCase(), start: i + 1, body: lines.slice(i + 1, j), markers });
    i = j;
  }
  return { lines, blocks, inCode };
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
const anchorCache = new Map();
function anchorsOf(file) {
  if (anchorCache.has(file)) return anchorCache.get(file);
  const { lines, inCode } = parse(file);
  const seen = new Map();
  const anchors = new Set();
  lines.forEach((line, i) => {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h || inCode[i]) return;
    const text = h[1]
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  });
  anchorCache.set(file, anchors);
  return anchors;
}

function checkLink(file, lineNo, target) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return; // http:, https:, mailto:, ...
  const [rawPath, anchor] = target.split('#', 2);
  const path = decodeURIComponent(rawPath);
  const dest = path === '' ? file : resolve(dirname(file), path);
  if (!existsSync(dest)) return report(file, lineNo, `broken link: ${target} (no ${relative(repo, dest)})`);
  if (anchor === undefined || anchor === '') return;
  if (statSync(dest).isDirectory() || !dest.endsWith('.md')) return report(file, lineNo, `anchor #${anchor} on a non-markdown target: ${target}`);
  if (!anchorsOf(dest).has(anchor.toLowerCase())) report(file, lineNo, `broken anchor: ${target} (no heading #${anchor} in ${relative(repo, dest)})`);
}

const tsBlocks = [];
for (const file of files) {
  if (!existsSync(file)) {
    report(file, 0, 'no such file');
    continue;
  }
  const { lines, blocks, inCode } = parse(file);
  lines.forEach((line, i) => {
    if (inCode[i]) return;
    const text = line.replace(/`[^`]*`/g, ''); // links inside inline code are examples, not links
    for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) checkLink(file, i + 1, m[1]);
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/.exec(text);
    if (def) checkLink(file, i + 1, def[1]);
  });
  // Getting started promises exactly the README's commands: each of its command lines must be one of them.
  if (file.endsWith(`${join('docs', 'getting-started.md')}`)) {
    const readme = join(repo, 'README.md');
    const readmeCommands = new Set(existsSync(readme) ? parse(readme).blocks.flatMap((rb) => rb.body.map((l) => l.trim())) : []);
    for (const b of blocks.filter((x) => ['bash', 'sh', 'shell'].includes(x.lang))) {
      b.body.forEach((l, k) => {
        if (l.trim() !== '' && !readmeCommands.has(l.trim())) report(file, b.start + 1 + k, `command not in README.md's code blocks: ${l.trim()}`);
      });
    }
  }
  for (const b of blocks) {
    if (b.lang !== 'ts' && b.lang !== 'typescript') continue;
    if (b.markers.some((m) => /docs-check:\s*skip\b/.test(m))) continue;
    const prelude = b.markers.map((m) => /docs-check:\s*prelude\s+([\s\S]*?)\s*-->/.exec(m)?.[1]).filter(Boolean);
    tsBlocks.push({ file, start: b.start, body: b.body, prelude });
  }
}

// Type-check the blocks: one module per block, in a folder under node_modules/.cache so that
// `@vlit/*` resolves through the workspace links to the built packages, exactly as a user's code would.
let checked = 0;
if (tsBlocks.length > 0) {
  const dir = join(repo, 'node_modules', '.cache', 'vlit-docs-check');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const map = new Map();
  tsBlocks.forEach((b, i) => {
    const name = `${relative(repo, b.file).replace(/[^\w]+/g, '_')}_${b.start}.ts`;
    const head = [...b.prelude, ''];
    writeFileSync(join(dir, name), `${head.join('\n')}${b.body.join('\n')}\nexport {};\n`);
    map.set(name, { ...b, offset: head.length, index: i });
  });
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify(
      {
        extends: join(repo, 'tsconfig.base.json'),
        compilerOptions: {
          noEmit: true,
          declaration: false,
          skipLibCheck: true,
          noUnusedLocals: false,
          types: ['node'],
          typeRoots: [join(repo, 'node_modules', '@types')],
        },
        include: ['*.ts'],
      },
      null,
      1,
    ),
  );
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], {
    encoding: 'utf8',
    cwd: dir,
    maxBuffer: 64 * 1024 * 1024,
  });
  checked = tsBlocks.length;
  const out = `${r.stdout}${r.stderr}`;
  for (const line of out.split('\n')) {
    const m = /^(.*?\.ts)\((\d+),(\d+)\): error (TS\d+: .*)$/.exec(line.trim());
    if (!m) continue;
    const b = map.get(m[1].split('/').pop());
    if (!b) {
      problems.push(`(type check) ${line.trim()}`);
      continue;
    }
    const inBlock = Number(m[2]) - b.offset;
    const docLine = inBlock >= 1 ? b.start + inBlock : b.start;
    report(b.file, docLine, `ts block does not type-check: ${m[4]}${inBlock < 1 ? ' (in its prelude)' : ''}`);
  }
  if (r.status !== 0 && !problems.some((p) => p.includes('type-check') || p.startsWith('(type check)'))) {
    problems.push(`(type check) tsc exited ${r.status}: ${out.trim().split('\n').slice(0, 5).join(' | ')}`);
  }
}

for (const p of problems) process.stdout.write(`${p}\n`);
process.stdout.write(`docs check: ${files.length} files, ${checked} ts blocks type-checked, ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
process.exit(problems.length > 0 ? 1 : 0);
