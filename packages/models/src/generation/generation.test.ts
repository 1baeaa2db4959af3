import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng, createTensor } from '@vlit/core';
import { RUNTIME_PLATFORMS, createRuntimePair } from '@vlit/test-kit/node';
import {
  applyRepetitionPenalty,
  argmax,
  createLlamaDecoder,
  generate,
  initLlamaWeights,
  samplingDistribution,
  scoreContinuations,
  selectNextToken,
  type LlamaDecoder,
} from '../index.js';
import { CONFIGS, charTokenizer, EOS } from '../decoder/testing/fixtures.js';
import { embedReference, llamaReference } from '../decoder/testing/llama-reference.js';

const runtimes = createRuntimePair();
const platforms = RUNTIME_PLATFORMS;
const tokenizer = charTokenizer();
const PROMPT = tokenizer.encode('The cat sat on').ids;

function close(a: ArrayLike<number>, b: ArrayLike<number>, digits = 12): void {
  expect(Array.from(a).map((v) => +v.toFixed(digits))).toEqual(Array.from(b).map((v) => +v.toFixed(digits)));
}

describe('sampling (hand-worked)', () => {
  const logits = [1, 2, 3, 4].map(Math.log);

  it('argmax takes the lowest index on ties; the repetition penalty divides positive and multiplies negative logits', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    close(applyRepetitionPenalty([2, -2, 1], [0, 1, 1], 2), [1, -4, 1]);
  });

  it('temperature, top-k and top-p distributions', () => {
    close(samplingDistribution(logits, [], { temperature: 1 }), [0.1, 0.2, 0.3, 0.4]);
    close(samplingDistribution(logits, [], { temperature: 0.5 }), [1 / 30, 4 / 30, 9 / 30, 16 / 30]);
    close(samplingDistribution(logits, [], { temperature: 1, topK: 2 }), [0, 0, 3 / 7, 4 / 7]);
    // top-p keeps the smallest most-likely set reaching p: 0.4 -> {3}; 0.5 -> {3, 2}; 0.75 -> {3, 2, 1}.
    close(samplingDistribution(logits, [], { temperature: 1, topP: 0.4 }), [0, 0, 0, 1]);
    close(samplingDistribution(logits, [], { temperature: 1, topP: 0.5 }), [0, 0, 3 / 7, 4 / 7]);
    close(samplingDistribution(logits, [], { temperature: 1, topP: 0.75 }), [0, 2 / 9, 3 / 9, 4 / 9]);
    // Penalty 2 on token 3: logit ln4/2 = ln2, so weights 1, 2, 3, 2.
    close(samplingDistribution(logits, [3], { temperature: 1, repetitionPenalty: 2 }), [1 / 8, 2 / 8, 3 / 8, 2 / 8]);
  });

  it('seeded draws follow the distribution', () => {
    const rng = createRng(7);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[selectNextToken(logits, [], { temperature: 1 }, rng)]++;
    counts.forEach((c, i) => expect(Math.abs(c / n - (i + 1) / 10)).toBeLessThan(0.015));
  });

  it('bad settings are InvalidArgumentError', async () => {
    for (const bad of [{ temperature: -1 }, { topK: 1.5 }, { topP: 0 }, { topP: 1.5 }, { repetitionPenalty: 0 }]) {
      await expect(generate({} as never, { inputIds: [1] }, bad), JSON.stringify(bad)).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    }
  });
});

describe.each(Object.keys(CONFIGS))('generation with decoder %s', (name) => {
  const config = CONFIGS[name];
  const weights = initLlamaWeights(config, `gen-${name}`);
  const models: Partial<Record<keyof typeof runtimes, LlamaDecoder>> = {};
  const candidates = [
    tokenizer.encode(' the mat').ids,
    tokenizer.encode(' a hat').ids,
    tokenizer.encode(' x').ids,
    [],
    tokenizer.encode(' the moon and the stars').ids,
  ];
  // Greedy generation and batched scores per runtime, computed once and shared, so each test can run on its own.
  type Runtime = keyof typeof runtimes;
  const greedyRuns: Partial<Record<Runtime, ReturnType<typeof generate>>> = {};
  const scoreRuns: Partial<Record<Runtime, ReturnType<typeof scoreContinuations>>> = {};
  const greedyRun = (p: Runtime): ReturnType<typeof generate> =>
    (greedyRuns[p] ??= generate(models[p]!, { inputIds: PROMPT }, { maxNewTokens: 24, stopTokenIds: [] }));
  const scoreRun = (p: Runtime): ReturnType<typeof scoreContinuations> =>
    (scoreRuns[p] ??= scoreContinuations(models[p]!, { inputIds: PROMPT }, candidates, { batchSize: 2 }));
  const greedy = async (p: Runtime): Promise<number[]> => (await greedyRun(p)).tokenIds;
  const scores = async (p: Runtime): Promise<number[]> => (await scoreRun(p)).map((s) => s.logLikelihood);
  beforeAll(async () => {
    for (const p of platforms) models[p] = await createLlamaDecoder({ backend: runtimes[p].backend, config, weights });
  });
  afterAll(async () => {
    for (const p of platforms) await models[p]?.dispose();
  });

  it.for(platforms)('%s: KV cache — generation with the cache produces exactly the tokens of generation without it', async (p, { annotate }) => {
    const m = models[p]!;
    const settings = [
      { label: 'greedy', options: {} },
      { label: 'sampled', options: { temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.3, seed: 11 } },
    ];
    for (const { label, options } of settings) {
      const withCache = await (label === 'greedy' ? greedyRun(p) : generate(m, { inputIds: PROMPT }, { ...options, maxNewTokens: 24, stopTokenIds: [] }));
      const without = await generate(m, { inputIds: PROMPT }, { ...options, maxNewTokens: 24, stopTokenIds: [], useCache: false });
      expect(withCache.tokenIds.length, label).toBe(24);
      expect(without.tokenIds, label).toEqual(withCache.tokenIds);
      // The same from an embeddings prompt (the composer's path).
      const embeds = await m.embed(createTensor('int64', [1, PROMPT.length], PROMPT.map(BigInt)));
      const e1 = await generate(m, { inputsEmbeds: embeds, inputIds: PROMPT }, { ...options, maxNewTokens: 24, stopTokenIds: [] });
      const e2 = await generate(m, { inputsEmbeds: embeds, inputIds: PROMPT }, { ...options, maxNewTokens: 24, stopTokenIds: [], useCache: false });
      expect(e1.tokenIds, `${label} embeds`).toEqual(withCache.tokenIds);
      expect(e2.tokenIds, `${label} embeds, no cache`).toEqual(withCache.tokenIds);
      await annotate(`${label}: ${withCache.tokenIds.length} identical tokens with and without the cache (ids and embeddings prompts)`);
    }
  });

  it('greedy tokens are the argmax of the float64 reference at every step', async () => {
    const seq = [...PROMPT];
    for (const next of (await greedy('node')).slice(0, 10)) {
      const ref = llamaReference(config, weights, embedReference(weights, seq, config.hiddenSize), seq.length);
      expect(next).toBe(argmax(ref.subarray((seq.length - 1) * config.vocabSize)));
      seq.push(next);
    }
  });

  it.for(platforms)('%s: batched scores equal the float64 reference log-likelihoods within 1e-4', async (p) => {
    const m = models[p]!;
    const got = await scoreRun(p);
    expect(got.map((s) => s.tokens)).toEqual(candidates.map((c) => c.length));
    candidates.forEach((c, i) => {
      if (c.length === 0) return expect(got[i].logLikelihood).toBe(0);
      const seq = [...PROMPT, ...c];
      const ref = llamaReference(config, weights, embedReference(weights, seq, config.hiddenSize), seq.length);
      let sum = 0;
      for (let j = 0; j < c.length; j++) {
        const row = ref.subarray((PROMPT.length - 1 + j) * config.vocabSize, (PROMPT.length + j) * config.vocabSize);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
        sum += row[c[j]] - lse;
      }
      expect(Math.abs(got[i].logLikelihood - sum), `candidate ${i}`).toBeLessThanOrEqual(1e-4);
    });
    // One batch or many, ids or embeddings, shared prompt cache or not: the same numbers.
    const embeds = await m.embed(createTensor('int64', [1, PROMPT.length], PROMPT.map(BigInt)));
    const variants = [
      await scoreContinuations(m, { inputIds: PROMPT }, candidates, { batchSize: 8 }),
      await scoreContinuations(m, { inputsEmbeds: embeds }, candidates),
      await scoreContinuations(m, { inputIds: PROMPT }, candidates, { reusePrompt: false, batchSize: 3 }),
      await scoreContinuations(m, { inputsEmbeds: embeds }, candidates, { reusePrompt: false }),
    ];
    for (const v of variants) got.forEach((s, i) => expect(Math.abs(v[i].logLikelihood - s.logLikelihood)).toBeLessThanOrEqual(1e-4));
  });

  it('node and web: the same greedy tokens and scores within 1e-4', async ({ annotate }) => {
    // One after another: a decoder's session is not run concurrently.
    const greedyNode = await greedy('node');
    const greedyWeb = await greedy('web');
    const scoresNode = await scores('node');
    const scoresWeb = await scores('web');
    expect(greedyWeb).toEqual(greedyNode);
    const diffs = scoresNode.map((s, i) => Math.abs(s - scoresWeb[i]));
    await annotate(`greedy tokens identical (${greedyNode.length}); max |score node - web| = ${Math.max(...diffs).toExponential(2)}`);
    for (const d of diffs) expect(d).toBeLessThanOrEqual(1e-4);
  });
});

describe('generation controls', () => {
  const config = CONFIGS['gqa-h48'];
  let m: LlamaDecoder;
  let reference: number[];
  beforeAll(async () => {
    m = await createLlamaDecoder({ backend: runtimes.node.backend, config, seed: 'controls' });
    reference = (await generate(m, { inputIds: PROMPT }, { maxNewTokens: 20, stopTokenIds: [] })).tokenIds;
  });
  afterAll(async () => m.dispose());

  it('stops on a stop id (the eos from config.json by default), which stays out of the result', async () => {
    const stopAt = reference.findIndex((t, i) => i >= 3 && reference.indexOf(t) === i);
    const r = await generate(m, { inputIds: PROMPT }, { maxNewTokens: 20, stopTokenIds: [reference[stopAt]] });
    expect(r).toMatchObject({ finishReason: 'stop', tokenIds: reference.slice(0, stopAt), stoppedBy: { tokenId: reference[stopAt] } });
    expect(r.usage).toEqual({ promptTokens: PROMPT.length, completionTokens: stopAt + 1 });
    expect(m.eosTokenIds).toEqual([EOS]);
  });

  it('streams text that adds up to the result, and stops on a stop string cut from the text', async () => {
    const pieces: string[] = [];
    const ids: number[] = [];
    const full = await generate(
      m,
      { inputIds: PROMPT },
      { maxNewTokens: 20, stopTokenIds: [], tokenizer, onToken: (t) => pieces.push(t), onTokenId: (e) => ids.push(e.id) },
    );
    expect(full.finishReason).toBe('length');
    expect(full.text).toBe(tokenizer.decode(reference));
    expect(pieces.join('')).toBe(full.text);
    expect(ids).toEqual(reference);
    const stop = full.text.slice(6, 8);
    const at = full.text.indexOf(stop);
    const streamed: string[] = [];
    const r = await generate(m, { inputIds: PROMPT }, { maxNewTokens: 20, stopTokenIds: [], tokenizer, stop: [stop], onToken: (t) => streamed.push(t) });
    expect(r).toMatchObject({ finishReason: 'stop', text: full.text.slice(0, at), stoppedBy: { text: stop } });
    expect(streamed.join('')).toBe(r.text);
  });

  it('seeded sampling repeats with the same seed and differs with another', async () => {
    const opts = { maxNewTokens: 16, stopTokenIds: [], temperature: 1.5 };
    const a = await generate(m, { inputIds: PROMPT }, { ...opts, seed: 1 });
    const b = await generate(m, { inputIds: PROMPT }, { ...opts, seed: 1 });
    const c = await generate(m, { inputIds: PROMPT }, { ...opts, seed: 2 });
    expect(b.tokenIds).toEqual(a.tokenIds);
    expect(c.tokenIds).not.toEqual(a.tokenIds);
    // top-k 1 is greedy whatever the temperature.
    expect((await generate(m, { inputIds: PROMPT }, { ...opts, topK: 1, maxNewTokens: 20 })).tokenIds).toEqual(reference);
  });

  it('an abort signal ends generation with finishReason abort', async () => {
    const controller = new AbortController();
    const r = await generate(
      m,
      { inputIds: PROMPT },
      {
        maxNewTokens: 20,
        stopTokenIds: [],
        signal: controller.signal,
        onTokenId: (e) => e.index === 2 && controller.abort(),
      },
    );
    expect(r.finishReason).toBe('abort');
    expect(r.tokenIds).toEqual(reference.slice(0, 3));
  });

  it('bad input is a typed error', async () => {
    await expect(generate(m, { inputIds: [96] })).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    await expect(generate(m, { inputIds: PROMPT }, { stop: ['x'] })).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    await expect(generate(m, { inputsEmbeds: createTensor('float32', [1, 2, 8]) })).rejects.toMatchObject({ code: 'VLIT_TENSOR_SHAPE' });
    await expect(scoreContinuations(m, { inputIds: [] }, [[1]])).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
  });
});
