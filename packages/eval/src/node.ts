/**
 * @vlit/eval/node: file I/O for evaluation — the crash-safe prediction cache, file hashing for
 * manifests, root-confined image loading, benchmark files and report writing.
 * @packageDocumentation
 */
import { appendFile, mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { FormatError, type ImageCodec, type VlitWarning } from '@vlit/core';
import { readUserFile, resolveUnderRoot } from '@vlit/core/node';
import { createImageLoader } from './images.js';
import { parseMmbenchTsv, parseSeedBench, type MultipleChoiceFile } from './mc/datasets.js';
import type { KeyValueCache } from './run/cache.js';
import type { EvalRun, ImageLoader } from './run/evaluate.js';
import { renderHtmlReport, type DataQualitySection } from './report/html.js';
import { toJsonReport } from './report/json.js';
import { renderMarkdownReport } from './report/markdown.js';

/** SHA-256 of a file's bytes (streamed), as hex. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'r');
  try {
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
  } finally {
    await handle.close().catch(() => undefined);
  }
  return hash.digest('hex');
}

/** SHA-256 of several files, by the names given (for `describeModel.files`). */
export async function hashFiles(files: Record<string, string>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, path] of Object.entries(files)) out[name] = await hashFile(path);
  return out;
}

/** A prediction cache on disk, with what was found when it was opened. */
export interface FilePredictionCache extends KeyValueCache {
  readonly path: string;
  /** Entries read from the file when it was opened. */
  readonly loaded: number;
  /** Problems found on opening (e.g. a torn last line from a crash). */
  readonly warnings: VlitWarning[];
}

/**
 * Open (or create) an append-only JSONL prediction cache: one `{ key, value }` line per prediction,
 * appended as soon as it is made. A run that crashes loses at most the batch in flight; a torn last
 * line is skipped with a warning, so rerunning `evaluate` with the same cache resumes the run.
 */
export async function openPredictionCache(path: string): Promise<FilePredictionCache> {
  const map = new Map<string, string>();
  const warnings: VlitWarning[] = [];
  let loaded = 0;
  if (existsSync(path)) {
    const text = await readFile(path, 'utf8');
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const entry = JSON.parse(line) as { key?: unknown; value?: unknown };
        if (typeof entry.key !== 'string') throw new FormatError('no key', { details: { file: path, record: i + 1 } });
        map.set(entry.key, JSON.stringify(entry.value));
        loaded++;
      } catch (e) {
        warnings.push({
          code: 'VLIT_W_CACHE_LINE_SKIPPED',
          message: `skipped unreadable cache line ${i + 1} (${(e as Error).message})`,
          details: { file: path, record: i + 1 },
        });
      }
    });
    // A torn last line has no newline: start the next append on a fresh line.
    if (text.length && !text.endsWith('\n')) await appendFile(path, '\n');
  } else {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, '');
  }
  return {
    path,
    loaded,
    warnings,
    async get(key) {
      const v = map.get(key);
      return v === undefined ? undefined : JSON.parse(v);
    },
    async set(key, value) {
      const json = JSON.stringify(value);
      map.set(key, json);
      await appendFile(path, `${JSON.stringify({ key, value })}\n`);
    },
    size: () => map.size,
  };
}

// Far above any benchmark image, far below what would exhaust memory.
const DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024;

/**
 * Load benchmark images from files under `root` (paths may not escape it) or from inline bytes. Only
 * regular files are read (a FIFO or device is an InvalidArgumentError, never a hang), and a file over
 * `maxBytes` (default 64 MiB) is a LimitExceededError.
 */
export function createFileImageLoader(options: { root: string; codec: ImageCodec; channels?: 3 | 4; maxBytes?: number }): ImageLoader {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  return createImageLoader({
    codec: options.codec,
    channels: options.channels,
    readFile: async (p) => {
      const buf = await readUserFile(await resolveUnderRoot(options.root, p), { maxBytes, what: 'image' });
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    },
  });
}

/** Read a SEED-Bench JSON file; `sha256` is the file's hash for the manifest (`source`). */
export async function loadSeedBenchFile(path: string): Promise<MultipleChoiceFile & { sha256: string }> {
  const bytes = await readFile(path);
  const parsed = parseSeedBench(JSON.parse(bytes.toString('utf8')), { file: path });
  return { ...parsed, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Read an MMBench TSV file; `sha256` is the file's hash for the manifest (`source`). */
export async function loadMmbenchFile(path: string): Promise<MultipleChoiceFile & { sha256: string }> {
  const bytes = await readFile(path);
  const parsed = parseMmbenchTsv(bytes.toString('utf8'), { file: path });
  return { ...parsed, sha256: createHash('sha256').update(bytes).digest('hex') };
}

async function writeAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

/** Write `report.json`, `report.md` and `report.html` into a folder; returns their paths. */
export async function writeReports(
  dir: string,
  runs: readonly EvalRun[],
  options: { title?: string; dataQuality?: DataQualitySection } = {},
): Promise<{ json: string; markdown: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const paths = { json: join(dir, 'report.json'), markdown: join(dir, 'report.md'), html: join(dir, 'report.html') };
  await writeAtomic(paths.json, JSON.stringify(toJsonReport(runs, { title: options.title }), null, 2) + '\n');
  await writeAtomic(paths.markdown, renderMarkdownReport(runs, { title: options.title }));
  await writeAtomic(paths.html, await renderHtmlReport({ title: options.title, runs, dataQuality: options.dataQuality }));
  return paths;
}
