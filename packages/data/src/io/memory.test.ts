import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng } from '@vlit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertFile } from './node.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vlit-data-mem-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Write a deterministic LLaVA JSON array of n records (~500 bytes each) without holding it in memory. */
async function generateLlava(file: string, n: number): Promise<number> {
  const rng = createRng(`mem-${n}`);
  const words = 'the a dog cat person red blue small large near left right table street sky tree car bus two three holding wearing on under in with is what where how many'.split(' ');
  const sentence = (k: number) => Array.from({ length: k }, () => rng.choice(words)).join(' ');
  const out = createWriteStream(file);
  const write = (s: string) => (out.write(s) ? undefined : new Promise<void>((r) => out.once('drain', () => r())));
  let buf = '[';
  for (let i = 0; i < n; i++) {
    const images = i % 10 === 0 ? [] : i % 10 === 1 ? [`a/${i}.jpg`, `b/${i}.jpg`] : [`a/${i}.jpg`];
    const conversations = [];
    for (let t = 0; t < 1 + rng.int(0, 3); t++) {
      conversations.push({ from: 'human', value: `${t === 0 ? '<image>\n'.repeat(images.length) : ''}${sentence(8)}?` });
      conversations.push({ from: 'gpt', value: `${sentence(12 + rng.int(0, 20))}.` });
    }
    const rec: Record<string, unknown> = { id: `r${i}` };
    if (images.length) rec.image = images.length === 1 ? images[0] : images;
    rec.conversations = conversations;
    buf += (i ? ',' : '') + JSON.stringify(rec);
    if (buf.length > 1 << 20) {
      const w = write(buf);
      buf = '';
      if (w) await w;
    }
  }
  await write(`${buf}]`);
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return (await stat(file)).size;
}

/** Convert one file, sampling memory while it runs; returns the peak growth over the start. */
async function convertMeasured(input: string, output: string): Promise<{ heapGrowth: number; rssGrowth: number; read: number }> {
  const sample = () => {
    const m = process.memoryUsage();
    return { heap: m.heapUsed + m.arrayBuffers, rss: m.rss };
  };
  const start = sample();
  let peak = { ...start };
  const take = () => {
    const s = sample();
    peak = { heap: Math.max(peak.heap, s.heap), rss: Math.max(peak.rss, s.rss) };
  };
  const timer = setInterval(take, 1);
  try {
    const stats = await convertFile({ input, output, from: 'llava', to: 'vlit', onProgress: take, rejects: `${output}.rejects` });
    expect(stats.read).toBe(stats.written + stats.rejected);
    take();
    return { heapGrowth: peak.heap - start.heap, rssGrowth: peak.rss - start.rss, read: stats.read };
  } finally {
    clearInterval(timer);
  }
}

describe('streaming conversion memory', () => {
  it('memory growth does not scale with file size (50k vs 200k LLaVA records)', async () => {
    const small = path.join(dir, 'small.json');
    const large = path.join(dir, 'large.json');
    const smallBytes = await generateLlava(small, 50_000);
    const largeBytes = await generateLlava(large, 200_000);
    expect(largeBytes).toBeGreaterThan(3.5 * smallBytes);
    // warm up code paths so the first measurement does not pay for compilation
    await convertMeasured(small, path.join(dir, 'warm.jsonl'));
    const s = await convertMeasured(small, path.join(dir, 'small.jsonl'));
    const l = await convertMeasured(large, path.join(dir, 'large.jsonl'));
    console.info(`memory growth: 50k records ${(s.heapGrowth / 2 ** 20).toFixed(0)} MiB heap / ${(s.rssGrowth / 2 ** 20).toFixed(0)} MiB rss; 200k records ${(l.heapGrowth / 2 ** 20).toFixed(0)} MiB heap / ${(l.rssGrowth / 2 ** 20).toFixed(0)} MiB rss; files ${(smallBytes / 1e6).toFixed(0)} / ${(largeBytes / 1e6).toFixed(0)} MB`);
    expect(s.read).toBe(50_000);
    expect(l.read).toBe(200_000);
    // Holding the large file would need at least its size again; four times the input must not
    // mean more resident memory. (Heap figures include garbage not yet collected, so the bound is on RSS.)
    expect(l.rssGrowth).toBeLessThan(largeBytes);
    expect(l.rssGrowth).toBeLessThan(1.5 * Math.max(s.rssGrowth, 16 << 20) + (16 << 20));
  }, 120_000);
});
