/**
 * Node-only helpers of quality control: loading images under a dataset root (symlink-safe),
 * writing the COCO-style fixture, shards with an index, and quality reports to disk.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { type ImageCodec, type VlitRecordInput } from '@vlit/core';
import { readUserFile, resolveUnderRoot, writeFileAtomic } from '@vlit/core/node';
import { generateCocoFixture, type CocoFixture, type CocoFixtureOptions } from './fixtures/coco-fixture.js';
import type { DataQualityReport } from './metrics/metrics.js';
import { renderQualityJson, renderQualityMarkdown } from './metrics/render.js';
import { shardJsonl } from './mix/shard.js';
import type { ImageBytesLoader } from './types.js';

/** Default cap on one image file: far above any real training image, far below what would exhaust memory. */
export const DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024;

/** Options of createRootImageLoader. */
export interface RootImageLoaderOptions {
  /** Refuse image files larger than this many bytes (LimitExceededError). Default 64 MiB. */
  maxBytes?: number;
}

/**
 * An ImageBytesLoader reading files under `root`: escapes (`..`, absolute paths, symlinks leaving the root)
 * throw PathEscapeError, missing files NotFoundError, anything but a regular file (a FIFO, a device, a
 * folder) InvalidArgumentError, a file over `maxBytes` LimitExceededError; none of them blocks.
 */
export function createRootImageLoader(root: string, options: RootImageLoaderOptions = {}): ImageBytesLoader {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  return async (relativePath) => {
    const abs = await resolveUnderRoot(root, relativePath);
    // O_NONBLOCK open + fstat on the handle: a FIFO planted under the root is refused, never waited on.
    const buf = await readUserFile(abs, { maxBytes, what: 'image' });
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  };
}

async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, data);
}

/** Paths of a fixture written to disk. */
export interface WrittenFixture {
  root: string;
  /** `ImageAnnotations` per line. */
  annotations: string;
  /** Canonical records per line. */
  records: string;
  manifest: string;
}

/** Write a fixture under `root`: images at their relative paths, `annotations.jsonl`, `records.jsonl`, `manifest.json`. */
export async function writeCocoFixture(root: string, fixture: CocoFixture): Promise<WrittenFixture> {
  for (const [rel, bytes] of fixture.images) await writeAtomic(path.join(root, rel), bytes);
  const out: WrittenFixture = {
    root,
    annotations: path.join(root, 'annotations.jsonl'),
    records: path.join(root, 'records.jsonl'),
    manifest: path.join(root, 'manifest.json'),
  };
  await writeAtomic(out.annotations, fixture.annotations.map((a) => JSON.stringify(a)).join('\n') + '\n');
  await writeAtomic(out.records, fixture.records.map((r: VlitRecordInput) => JSON.stringify(r)).join('\n') + '\n');
  await writeAtomic(out.manifest, `${JSON.stringify(fixture.manifest, null, 2)}\n`);
  return out;
}

/** Generate a fixture and write it under `root` in one call (for scripts); returns the fixture and its paths. */
export async function generateCocoFixtureToDir(
  root: string,
  options: CocoFixtureOptions & { codec: ImageCodec },
): Promise<{ fixture: CocoFixture; paths: WrittenFixture }> {
  const fixture = await generateCocoFixture(options);
  return { fixture, paths: await writeCocoFixture(root, fixture) };
}

/** Read a JSONL file into parsed values (one per non-empty line). */
export async function readJsonlFile(file: string): Promise<unknown[]> {
  const text = (await readUserFile(file, { what: 'JSON Lines file' })).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as unknown);
}

/** One shard in the index. */
export interface ShardIndexEntry {
  file: string;
  records: number;
  bytes: number;
  sha256: string;
  firstId?: string;
  lastId?: string;
}

/** The shard index written beside the shards. */
export interface ShardIndex {
  version: 1;
  targetBytes: number;
  records: number;
  bytes: number;
  shards: ShardIndexEntry[];
}

/** Write records as JSONL shards of at most `targetBytes` under `dir`, plus `<prefix>-index.json`; returns the index. */
export async function writeShards(records: Iterable<{ id?: string }>, options: { dir: string; targetBytes: number; prefix?: string }): Promise<ShardIndex> {
  const prefix = options.prefix ?? 'shard';
  const index: ShardIndex = { version: 1, targetBytes: options.targetBytes, records: 0, bytes: 0, shards: [] };
  for (const shard of shardJsonl(records, { targetBytes: options.targetBytes, prefix })) {
    const data = shard.lines.join('');
    await writeAtomic(path.join(options.dir, shard.name), data);
    index.shards.push({
      file: shard.name,
      records: shard.lines.length,
      bytes: shard.bytes,
      sha256: createHash('sha256').update(data).digest('hex'),
      firstId: shard.firstId,
      lastId: shard.lastId,
    });
    index.records += shard.lines.length;
    index.bytes += shard.bytes;
  }
  await writeAtomic(path.join(options.dir, `${prefix}-index.json`), `${JSON.stringify(index, null, 2)}\n`);
  return index;
}

/** Write reports as `<base>.json` and `<base>.md`; returns both paths. */
export async function writeQualityReport(base: string, reports: readonly DataQualityReport[]): Promise<{ json: string; markdown: string }> {
  const json = `${base}.json`;
  const markdown = `${base}.md`;
  await writeAtomic(json, renderQualityJson(reports));
  await writeAtomic(markdown, `# Data-quality report\n\n${renderQualityMarkdown(reports)}`);
  return { json, markdown };
}
