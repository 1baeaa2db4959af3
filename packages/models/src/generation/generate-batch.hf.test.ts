// Batched generation against transformers' own `generate` on a left-padded batch (greedy, with and
// without an end token), for tiny random decoders saved with save_pretrained by ./py/batch_generate.py.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNTIME_PLATFORMS, createRuntimePair, runReferencePython } from '@vlit/test-kit/node';
import { recordingModel } from '../decoder/testing/fixtures.js';
import { generate, generateBatch } from '../index.js';
import { loadHfLanguageModel, type HfLanguageModel } from '../node.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'py', 'batch_generate.py');
const runtimes = createRuntimePair();
const CASES = ['llama-default-untied', 'mistral-window'];
let work: string;
const loaded: HfLanguageModel[] = [];

interface Reference {
  prompts: number[][];
  new: number;
  free: number[][];
  eos: number;
  stopped: number[][];
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vlit-batch-generate-'));
  runReferencePython(script, [work], { timeoutMs: 600_000 });
}, 600_000);
afterAll(async () => {
  for (const m of loaded) await m.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.each(CASES)('%s: left-padded batch generation matches transformers generate', (name) => {
  it.each(RUNTIME_PLATFORMS)(
    '%s: 6 prompts of 1..70 tokens (the longest prefilled in a pass of its own), 20 greedy tokens each, without and with an end token that stops rows early',
    async (platform) => {
      const ref = JSON.parse(readFileSync(join(work, `${name}.json`), 'utf8')) as Reference;
      const model = await loadHfLanguageModel(join(work, name), { runtime: runtimes[platform] });
      loaded.push(model);
      // The [batch, seq] of every forward pass, seen through a model that only records them.
      const { model: counted, record } = recordingModel(model);
      const { passes } = record;
      const free = await generateBatch(
        counted,
        ref.prompts.map((ids) => ({ input: { inputIds: ids }, options: { maxNewTokens: ref.new, stopTokenIds: [] } })),
      );
      expect(free.map((r) => r.tokenIds)).toEqual(ref.free);
      // Prompts of 1, 2, 7, 12, 17 | 70 tokens: two prompt passes (32 per pass + rows x longest: 117 + 102
      // against 452 for one pass of 6 x 70, worked by hand), whose caches are joined; then the whole batch.
      expect(passes.slice(0, 3)).toEqual([
        [5, 17],
        [1, 70],
        [6, 1],
      ]);
      const stopped = await generateBatch(
        model,
        ref.prompts.map((ids) => ({ input: { inputIds: ids }, options: { maxNewTokens: ref.new, stopTokenIds: [ref.eos] } })),
      );
      expect(stopped.map((r) => r.tokenIds)).toEqual(ref.stopped);
      expect(stopped.map((r) => r.finishReason)).toEqual(ref.stopped.map((s) => (s.length < ref.new ? 'stop' : 'length')));
      expect(ref.stopped.some((s) => s.length < ref.new)).toBe(true);
      if (name === 'llama-default-untied') {
        // Without a sliding window, each row alone gives the same tokens as in the batch.
        for (let i = 0; i < ref.prompts.length; i++) {
          expect((await generate(model, { inputIds: ref.prompts[i] }, { maxNewTokens: ref.new, stopTokenIds: [] })).tokenIds).toEqual(ref.free[i]);
        }
      }
    },
    300_000,
  );
});
