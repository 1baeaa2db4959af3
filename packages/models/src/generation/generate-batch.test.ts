import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensor } from '@vlit/core';
import { RUNTIME_PLATFORMS, createRuntimePair } from '@vlit/test-kit/node';
import {
  createLlamaDecoder,
  generate,
  generateBatch,
  initLlamaWeights,
  tinyLlamaConfig,
  type BatchRow,
  type GenerateOptions,
  type LlamaDecoder,
} from '../index.js';
import { CHAR_VOCAB, CONFIGS, EOS, charTokenizer, recordingModel } from '../decoder/testing/fixtures.js';

const runtimes = createRuntimePair();
const tokenizer = charTokenizer();
// Eight prompts of different lengths (3 to 31 tokens).
const TEXTS = ['Hi!', 'The cat sat on', 'A', 'Once upon a time there was', 'xyz 123', 'Vision and language models', 'Why?', 'The quick brown fox jumps over'];
const PROMPTS = TEXTS.map((t) => tokenizer.encode(t).ids);

type Platform = keyof typeof runtimes;

/** Result fields that must agree between a batched row and the same prompt alone. */
function summary(r: Awaited<ReturnType<typeof generate>>): unknown {
  return { text: r.text, tokenIds: r.tokenIds, finishReason: r.finishReason, usage: r.usage, stoppedBy: r.stoppedBy };
}

describe.each(Object.keys(CONFIGS))('batched generation with decoder %s', (name) => {
  const config = CONFIGS[name];
  const weights = initLlamaWeights(config, `batch-${name}`);
  const models: Partial<Record<Platform, LlamaDecoder>> = {};
  beforeAll(async () => {
    for (const p of RUNTIME_PLATFORMS) models[p] = await createLlamaDecoder({ backend: runtimes[p].backend, config, weights });
  });
  afterAll(async () => {
    for (const p of RUNTIME_PLATFORMS) await models[p]?.dispose();
  });

  it.for(RUNTIME_PLATFORMS)(
    '%s: greedy, 8 prompts of lengths 1..31 in one batch: every row gets exactly the tokens of generating it alone',
    async (p, { annotate }) => {
      const m = models[p]!;
      const options: GenerateOptions = { maxNewTokens: 24, stopTokenIds: [] };
      const steps: Array<{ active: number; batch: number }> = [];
      // The [batch, seq] of every forward pass, and the cache-length hints, seen through a model that only records them.
      const { model: counted, record } = recordingModel(m);
      const { passes, hints } = record;
      const batched = await generateBatch(
        counted,
        PROMPTS.map((ids) => ({ input: { inputIds: ids }, options })),
        { onStep: (e) => steps.push(e) },
      );
      for (let i = 0; i < PROMPTS.length; i++) {
        const alone = await generate(m, { inputIds: PROMPTS[i] }, options);
        expect(alone.tokenIds).toHaveLength(24);
        expect(batched[i].tokenIds, `row ${i}`).toEqual(alone.tokenIds);
        expect(batched[i].usage).toEqual({ promptTokens: PROMPTS[i].length, completionTokens: 24 });
      }
      // One batch of 8, not 8 runs: the prompts (1, 3, 4, 7 | 14, 26, 26, 30 tokens) are prefilled in two
      // buckets, which minimise 32 per pass + rows x longest prompt (60 + 152 against 272 for one pass of 8 x 30,
      // worked by hand), then 23 decoding passes of all 8 rows.
      expect(PROMPTS.map((q) => q.length).sort((a, b) => a - b)).toEqual([1, 3, 4, 7, 14, 26, 26, 30]);
      expect(passes).toEqual([[4, 7], [4, 30], ...Array.from({ length: 23 }, () => [8, 1])]);
      // The joined cache, not the buckets', is told how long it gets: 30 + 24 - 1.
      expect(hints.slice(0, 3)).toEqual([undefined, undefined, 53]);
      expect(hints.slice(3).every((h) => h === undefined)).toBe(true);
      expect(steps).toHaveLength(24);
      expect(steps.every((s) => s.batch === 8)).toBe(true);
      // The rows do not all generate the same thing (the comparison is not vacuous).
      expect(new Set(batched.map((r) => r.tokenIds.join(','))).size).toBeGreaterThan(4);
      await annotate(`8 rows x 24 tokens identical to batch-1 generation`);
    },
  );

  it.for(RUNTIME_PLATFORMS)(
    '%s: per-row stopping (max tokens, stop id, stop strings, streaming) and per-row seeded sampling match each row alone',
    async (p) => {
      const m = models[p]!;
      const alone0 = await generate(m, { inputIds: PROMPTS[1] }, { maxNewTokens: 30, stopTokenIds: [] });
      // Stop strings and a stop id taken from what row 1 produces alone, so they really fire mid-generation.
      const stopString = tokenizer.decode(alone0.tokenIds.slice(5, 7));
      const stopId = alone0.tokenIds[9];
      const settings: GenerateOptions[] = [
        { maxNewTokens: 3, stopTokenIds: [] },
        { maxNewTokens: 30, stopTokenIds: [], stop: [stopString], tokenizer },
        { maxNewTokens: 17, stopTokenIds: [EOS] },
        { maxNewTokens: 30, stopTokenIds: [stopId], tokenizer },
        { maxNewTokens: 12, temperature: 0.9, topK: 20, topP: 0.9, seed: 5, stopTokenIds: [] },
        { maxNewTokens: 12, temperature: 1.2, repetitionPenalty: 1.3, seed: 77, stopTokenIds: [], tokenizer },
        { maxNewTokens: 0 },
        { maxNewTokens: 9, stopTokenIds: [], repetitionPenalty: 1.5 },
      ];
      const rowsFor = (i: number): number[] => (i === 1 || i === 3 ? PROMPTS[1] : PROMPTS[i]);
      const streamed: string[][] = settings.map(() => []);
      const steps: Array<{ active: number; batch: number }> = [];
      const batched = await generateBatch(
        m,
        settings.map((o, i) => ({ input: { inputIds: rowsFor(i) }, options: o.tokenizer ? { ...o, onToken: (t) => streamed[i].push(t) } : o })),
        { onStep: (e) => steps.push(e) },
      );
      // Finished rows leave the batch once at most half still generate (so the equalities below also
      // cover generation after the cache was cut down to the live rows).
      expect(steps[0].batch).toBe(7); // the maxNewTokens 0 row never enters the batch
      for (let k = 1; k < steps.length; k++) {
        const before = steps[k - 1];
        expect(steps[k].batch, `step ${k}`).toBe(before.active <= before.batch / 2 ? before.active : before.batch);
      }
      expect(steps[steps.length - 1].batch).toBeLessThan(4);
      for (let i = 0; i < settings.length; i++) {
        const pieces: string[] = [];
        const o = settings[i];
        const alone = await generate(m, { inputIds: rowsFor(i) }, o.tokenizer ? { ...o, onToken: (t) => pieces.push(t) } : o);
        expect(summary(batched[i]), `row ${i}`).toEqual(summary(alone));
        expect(streamed[i].join(''), `row ${i} stream`).toBe(pieces.join(''));
      }
      expect(batched[0].tokenIds).toHaveLength(3);
      expect(batched[1]).toMatchObject({ finishReason: 'stop', stoppedBy: { text: stopString } });
      const full = tokenizer.decode(alone0.tokenIds);
      expect(batched[1].text).toBe(full.slice(0, full.indexOf(stopString)));
      expect(batched[3]).toMatchObject({ finishReason: 'stop', stoppedBy: { tokenId: stopId } });
      expect(batched[3].tokenIds.length).toBeLessThanOrEqual(9);
      expect(batched[6]).toMatchObject({ tokenIds: [], finishReason: 'length' });
    },
  );

  it.for(RUNTIME_PLATFORMS)('%s: rows given as embeddings and as ids mix in one batch, and aborting one row leaves the others alone', async (p) => {
    const m = models[p]!;
    const embeds = await Promise.all(PROMPTS.map((ids) => m.embed(createTensor('int64', [1, ids.length], ids.map(BigInt)))));
    const abort = new AbortController();
    const rows: BatchRow[] = PROMPTS.map((ids, i) => ({
      input: i % 2 === 0 ? { inputsEmbeds: embeds[i], inputIds: ids } : { inputIds: ids },
      options: {
        maxNewTokens: 10,
        stopTokenIds: [],
        ...(i === 5 ? { signal: abort.signal, onTokenId: (e: { index: number }) => (e.index === 3 ? abort.abort() : undefined) } : {}),
      },
    }));
    const batched = await generateBatch(m, rows);
    for (let i = 0; i < PROMPTS.length; i++) {
      const alone = await generate(m, { inputIds: PROMPTS[i] }, { maxNewTokens: 10, stopTokenIds: [] });
      if (i === 5) {
        expect(batched[i].finishReason).toBe('abort');
        expect(batched[i].tokenIds).toEqual(alone.tokenIds.slice(0, 4));
      } else {
        expect(batched[i].tokenIds, `row ${i}`).toEqual(alone.tokenIds);
      }
    }
  });
});

describe('batches and the context', () => {
  it('rows that fit the context alone are grouped so that padding never exceeds it; a batch-wide abort ends every row', async () => {
    const config = tinyLlamaConfig({ hiddenSize: 48, vocabSize: CHAR_VOCAB, intermediateSize: 96, maxPositionEmbeddings: 40, eosTokenId: EOS });
    const m = await createLlamaDecoder({ backend: runtimes.node.backend, config, seed: 'ctx' });
    try {
      // 31 + 9 - 1 = 39 and 3 + 30 - 1 = 32 fit alone; together 31 + 30 - 1 = 60 would not.
      const rows: BatchRow[] = [
        { input: { inputIds: PROMPTS[7] }, options: { maxNewTokens: 9, stopTokenIds: [] } },
        { input: { inputIds: PROMPTS[0] }, options: { maxNewTokens: 30, stopTokenIds: [] } },
        { input: { inputIds: PROMPTS[4] }, options: { maxNewTokens: 20, stopTokenIds: [] } },
      ];
      const batches: number[] = [];
      const got = await generateBatch(m, rows, { onStep: (e) => (e.step === 0 ? batches.push(e.batch) : undefined) });
      for (let i = 0; i < rows.length; i++) expect(got[i].tokenIds).toEqual((await generate(m, rows[i].input, rows[i].options)).tokenIds);
      expect(batches.reduce((a, b) => a + b, 0)).toBe(3);
      expect(batches.length).toBeGreaterThan(1);
      const stop = new AbortController();
      stop.abort();
      const aborted = await generateBatch(m, rows, { signal: stop.signal });
      expect(aborted.map((r) => r.finishReason)).toEqual(['abort', 'abort', 'abort']);
    } finally {
      await m.dispose();
    }
  });

  it('an abort during the first prompt bucket ends every row before the next bucket’s pass', async () => {
    const m = await createLlamaDecoder({ backend: runtimes.node.backend, config: CONFIGS['gqa-h48'], seed: 'abort-buckets' });
    try {
      const stop = new AbortController();
      const { model: counted, record } = recordingModel(m, () => stop.abort());
      const { passes } = record;
      const got = await generateBatch(
        counted,
        PROMPTS.map((ids) => ({ input: { inputIds: ids }, options: { maxNewTokens: 5, stopTokenIds: [] } })),
        { signal: stop.signal },
      );
      // The first of the two buckets ([4, 7], see above) ran; the second did not.
      expect(passes).toEqual([[4, 7]]);
      expect(got.map((r) => [r.finishReason, r.tokenIds.length])).toEqual(PROMPTS.map(() => ['abort', 0]));
    } finally {
      await m.dispose();
    }
  });

  it('bad rows are typed errors naming the row', async () => {
    const m = await createLlamaDecoder({ backend: runtimes.node.backend, config: CONFIGS['gqa-h48'], seed: 'bad' });
    try {
      await expect(generateBatch(m, [{ input: { inputIds: [1] } }, { input: { inputIds: [CHAR_VOCAB] } }])).rejects.toMatchObject({
        code: 'VLIT_INVALID_ARGUMENT',
        details: { field: 'rows[1].inputIds' },
      });
      await expect(generateBatch(m, [{ input: {} }])).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT', details: { field: 'rows[0].input' } });
      expect(await generateBatch(m, [])).toEqual([]);
    } finally {
      await m.dispose();
    }
  });
});
