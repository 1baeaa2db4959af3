// Constant memory, checked structurally rather than by sampling the process: a conversion pulls its
// source lazily, records come out while the source is still being read, and at no point has it read
// more than one source chunk beyond the record the consumer is at, for 50k records as for 200k.
// (Peak RSS against a readFile + JSON.parse baseline is measured in bench/data-stream.mjs.)
import { createRng } from '@vlit/core';
import { describe, expect, it } from 'vitest';
import { convertRecords, type ConversionStats } from './records.js';

const CHUNK = 16 * 1024;
const encoder = new TextEncoder();

interface LazyLlava {
  /** The LLaVA JSON array of n records (~500 bytes each), made as it is pulled, in CHUNK-byte chunks. */
  source: AsyncGenerator<Uint8Array>;
  /** Chunks and bytes handed out so far. */
  pulled: { chunks: number; bytes: number };
  /** True once the last chunk has been handed out. */
  exhausted: boolean;
  /** Byte offset just past record i (known once its bytes have been made). */
  ends: Float64Array;
  /** Total bytes, once exhausted. */
  total: number;
}

/** A deterministic LLaVA source that never holds more than one chunk of text (ASCII only: one byte per character). */
function lazyLlava(n: number): LazyLlava {
  const rng = createRng(`mem-${n}`);
  const words =
    'the a dog cat person red blue small large near left right table street sky tree car bus two three holding wearing on under in with is what where how many'.split(
      ' ',
    );
  const sentence = (k: number) => Array.from({ length: k }, () => rng.choice(words)).join(' ');
  const state: LazyLlava = { source: undefined as never, pulled: { chunks: 0, bytes: 0 }, exhausted: false, ends: new Float64Array(n), total: 0 };
  const hand = (text: string): Uint8Array => {
    state.pulled.chunks++;
    state.pulled.bytes += text.length;
    return encoder.encode(text);
  };
  state.source = (async function* () {
    let pending = '[';
    let made = 1;
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
      const text = `${i ? ',' : ''}${JSON.stringify(rec)}`;
      pending += text;
      made += text.length;
      state.ends[i] = made;
      while (pending.length >= CHUNK) {
        yield hand(pending.slice(0, CHUNK));
        pending = pending.slice(CHUNK);
      }
    }
    pending += ']';
    state.total = made + 1;
    while (pending.length) {
      const piece = pending.slice(0, CHUNK);
      pending = pending.slice(CHUNK);
      if (!pending.length) state.exhausted = true;
      yield hand(piece);
    }
  })();
  return state;
}

/** Convert n LLaVA records to canonical JSONL, noting how far the source had been read at each record out. */
async function convertLazily(n: number) {
  const src = lazyLlava(n);
  const stats: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 };
  let out = 0;
  let first: { chunks: number; bytes: number; exhausted: boolean } | undefined;
  let ids = true;
  let maxChunksAhead = 0;
  for await (const line of convertRecords(src.source, { from: 'llava', to: 'vlit' }, stats)) {
    if (out === 0) first = { ...src.pulled, exhausted: src.exhausted };
    if (!line.startsWith(`{"id":"r${out}",`)) ids = false;
    // Chunks pulled beyond the one that holds the last byte of the record just written.
    const holding = Math.ceil(src.ends[out] / CHUNK);
    maxChunksAhead = Math.max(maxChunksAhead, src.pulled.chunks - holding);
    out++;
  }
  return { stats, out, first: first!, ids, maxChunksAhead, total: src.total, exhausted: src.exhausted };
}

describe('streaming conversion memory', () => {
  it('memory does not scale with input size: records come out as the source is read, never more than one chunk ahead (50k vs 200k LLaVA records)', async () => {
    for (const n of [50_000, 200_000]) {
      const r = await convertLazily(n);
      expect(r.stats).toEqual({ read: n, written: n, rejected: 0, warnings: 0 });
      expect(r.out, `${n}`).toBe(n);
      expect(r.ids, `${n}: records out in order`).toBe(true);
      expect(r.exhausted, `${n}`).toBe(true);
      expect(r.total, `${n}: ~500 bytes a record`).toBeGreaterThan(n * 300);
      // The first record comes out after the first chunk, long before the source ends...
      expect(r.first, `${n}`).toEqual({ chunks: 1, bytes: CHUNK, exhausted: false });
      // ...and the reader never runs ahead of the consumer by more than the chunk that completes a
      // record, whatever the input size: what it holds is bounded by a chunk plus the record.
      expect(r.maxChunksAhead, `${n}`).toBeLessThanOrEqual(1);
    }
  }, 120_000);
});
