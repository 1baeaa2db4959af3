// The in-place KV cache protocol (LlamaGraphOptions.cache 'slots'), which createLlamaDecoder and the
// Hugging Face loaders run: checked against the float64 reference decoder over long decodes that grow the
// slot buffers, steps taken twice from one cache (in turn and at once), padding and repeated caches, and
// against the Optimum protocol's graph of the same weights.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensor, isVlitError, type KvCache, type Tensor } from '@vlit/core';
import { createGraph, encodeModel, listInputs, listOutputs } from '@vlit/graph';
import { maxAbsDiff } from '@vlit/test-kit';
import { RUNTIME_PLATFORMS, createRuntimePair } from '@vlit/test-kit/node';
import { CONFIGS, recordingModel } from '../decoder/testing/fixtures.js';
import { embedReference, llamaReference } from '../decoder/testing/llama-reference.js';
import {
  buildLlamaDecoderModel,
  buildLlamaOnnx,
  createLlamaDecoder,
  createMemorySource,
  generate,
  initLlamaWeights,
  llamaOnnxFiles,
  llamaSessionCache,
  loadOptimumDecoder,
  tinyLlamaConfig,
  type OnnxLanguageModel,
} from '../index.js';

const runtimes = createRuntimePair();
const config = CONFIGS['gqa-h48'];
const weights = initLlamaWeights(config, 'slot-cache');
const V = config.vocabSize;
const models: Partial<Record<keyof typeof runtimes, OnnxLanguageModel>> = {};
const toRelease: OnnxLanguageModel[] = [];
afterAll(async () => {
  for (const m of toRelease) await m.dispose();
});
beforeAll(async () => {
  for (const p of RUNTIME_PLATFORMS) {
    models[p] = await createLlamaDecoder({ backend: runtimes[p].backend, config, weights });
    toRelease.push(models[p]!);
  }
});

const ids = (values: readonly number[]): Tensor<'int64'> => createTensor('int64', [1, values.length], values.map(BigInt));
/** A deterministic token stream over the character vocabulary (1..95). */
const stream = (n: number, salt: number): number[] => Array.from({ length: n }, (_, i) => 1 + ((i * 37 + salt * 11) % (V - 1)));
/** The float64 reference's logits of the last position of `tokens`. */
function lastLogits(tokens: readonly number[]): Float64Array {
  const all = llamaReference(config, weights, embedReference(weights, tokens, config.hiddenSize), tokens.length);
  return all.subarray((tokens.length - 1) * V);
}

describe('the in-place cache protocol', () => {
  it('the session graph takes slot buffers and returns only the step’s keys and values; the files keep Optimum’s protocol', () => {
    const slots = buildLlamaDecoderModel(config, weights, { cache: 'slots' });
    expect(listInputs(slots).find((v) => v.name === 'past_key_values.0.key')?.dims).toEqual(['batch_size', 2, 'cache_capacity', 12]);
    expect(
      listOutputs(slots)
        .map((v) => v.name)
        .sort(),
    ).toEqual(['appended_key_values.0.key', 'appended_key_values.0.value', 'appended_key_values.1.key', 'appended_key_values.1.value', 'logits']);
    expect(llamaSessionCache(config)).toBe('slots');
    const sliding = tinyLlamaConfig({ hiddenSize: 48, vocabSize: V, numAttentionHeads: 4, numKeyValueHeads: 2, slidingWindow: 4 });
    expect(llamaSessionCache(sliding)).toBe('returned');
    let err: unknown;
    try {
      buildLlamaDecoderModel(sliding, initLlamaWeights(sliding, 1), { cache: 'slots' });
    } catch (e) {
      err = e;
    }
    expect(isVlitError(err) && err.code).toBe('VLIT_COMPATIBILITY');
  });

  it.for(RUNTIME_PLATFORMS)(
    '%s: 150 steps one token at a time (slots grow 64 -> 128 -> 256) match the float64 reference at every step',
    async (p, { annotate }) => {
      const m = models[p]!;
      const tokens = stream(155, 1);
      let out = await m.forward({ inputIds: ids(tokens.slice(0, 5)) });
      let worst = maxAbsDiff(out.logits.data.subarray(4 * V), lastLogits(tokens.slice(0, 5)));
      // The reference at every step would be quadratic in float64: check every 10th step and the last.
      for (let t = 5; t < tokens.length; t++) {
        out = await m.forward({ inputIds: ids([tokens[t]]), cache: out.cache });
        expect(out.cache?.length).toBe(t + 1);
        if (t % 10 === 0 || t === tokens.length - 1) worst = Math.max(worst, maxAbsDiff(out.logits.data, lastLogits(tokens.slice(0, t + 1))));
      }
      await annotate(`max |logit - float64 reference| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(1e-4);
    },
  );

  it('maxCacheLength caps the slots at the expected length (64 past doubling at most on a fresh cache); growth remembers it; a bad hint is a typed error', async () => {
    const m = models.node!;
    // The slot store's capacity, read from the cache (white box: it is what the hint changes).
    const capacity = (c: KvCache | undefined): number => (c as unknown as { store: { capacity: number } }).store.capacity;
    const tokens = stream(210, 8);
    const walk = async (prompt: number, hint: number, to: number): Promise<Map<number, number>> => {
      // Capacity after each length, and the logits checked against the float64 reference on the way.
      const seen = new Map<number, number>();
      let out = await m.forward({ inputIds: ids(tokens.slice(0, prompt)), maxCacheLength: hint });
      seen.set(prompt, capacity(out.cache));
      let worst = maxAbsDiff(out.logits.data.subarray((prompt - 1) * V), lastLogits(tokens.slice(0, prompt)));
      for (let t = prompt; t < to; t++) {
        out = await m.forward({ inputIds: ids([tokens[t]]), cache: out.cache });
        seen.set(t + 1, capacity(out.cache));
        if (t % 20 === 0 || t === to - 1) worst = Math.max(worst, maxAbsDiff(out.logits.data, lastLogits(tokens.slice(0, t + 1))));
      }
      expect(worst).toBeLessThanOrEqual(1e-4);
      return seen;
    };
    // Expected 70 for a 5-token prompt: slots for 80 (70 rounded up to 16) instead of 64, then 128; past the
    // hint the store grows by doubling (160, rounded to 192).
    const a = await walk(5, 70, 100);
    expect([a.get(5), a.get(80), a.get(81), a.get(100)]).toEqual([80, 80, 192, 192]);
    // A generous hint that generation may not reach (4,000) gives a fresh store 64 slots past doubling, not 4,000.
    const b = await walk(5, 4000, 6);
    expect(b.get(5)).toBe(128);
    // A 100-token prompt expecting 300: 192 (128 + 64), then growth stops at the hint (304, not 384).
    const c = await walk(100, 300, 200);
    expect([c.get(100), c.get(192), c.get(193), c.get(200)]).toEqual([192, 192, 304, 304]);
    // A hint shorter than the prompt is no hint: the slots fit the prompt.
    expect((await walk(9, 3, 10)).get(9)).toBe(64);
    // generate passes prompt + maxNewTokens - 1 on the prompt's pass only.
    const { model: recording, record } = recordingModel(m);
    await generate(recording, { inputIds: tokens.slice(0, 5) }, { maxNewTokens: 10, stopTokenIds: [] });
    expect(record.hints).toEqual([14, ...Array(9).fill(undefined)]);
    for (const bad of [0, -4, 2.5, Number.NaN]) {
      const err = await m.forward({ inputIds: ids([1, 2]), maxCacheLength: bad }).catch((e: unknown) => e);
      expect(isVlitError(err) && [err.code, err.details.field], String(bad)).toEqual(['VLIT_INVALID_ARGUMENT', 'maxCacheLength']);
    }
  });

  it('a cache stays valid after a step from it: a second step from it, in turn or at the same time, never overwrites the first', async () => {
    const m = models.node!;
    const prompt = stream(9, 2);
    const base = await m.forward({ inputIds: ids(prompt) });
    const a = await m.forward({ inputIds: ids([7]), cache: base.cache });
    // The same cache again: its slots after 9 are taken by the step above, so this one must not write there.
    const b = await m.forward({ inputIds: ids([8]), cache: base.cache });
    const a2 = await m.forward({ inputIds: ids([9]), cache: a.cache });
    const b2 = await m.forward({ inputIds: ids([10]), cache: b.cache });
    expect(maxAbsDiff(a.logits.data, lastLogits([...prompt, 7]))).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(b.logits.data, lastLogits([...prompt, 8]))).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(a2.logits.data, lastLogits([...prompt, 7, 9]))).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(b2.logits.data, lastLogits([...prompt, 8, 10]))).toBeLessThanOrEqual(1e-4);
    // And two steps at once from one cache, then both continued.
    const [c, d] = await Promise.all([m.forward({ inputIds: ids([11]), cache: a.cache }), m.forward({ inputIds: ids([12]), cache: a.cache })]);
    const [c2, d2] = await Promise.all([m.forward({ inputIds: ids([3, 4]), cache: c.cache }), m.forward({ inputIds: ids([5, 6]), cache: d.cache })]);
    expect(maxAbsDiff(c2.logits.data.subarray(V), lastLogits([...prompt, 7, 11, 3, 4]))).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(d2.logits.data.subarray(V), lastLogits([...prompt, 7, 12, 5, 6]))).toBeLessThanOrEqual(1e-4);
  });

  it('left padding, a repeated cache and a disposed cache', async () => {
    const m = models.node!;
    const long = stream(12, 3);
    const short = stream(5, 4);
    const pad = long.length - short.length;
    const mask = [...Array(pad).fill(0), ...Array(short.length).fill(1), ...Array(long.length).fill(1)];
    const out = await m.forward({
      inputIds: createTensor('int64', [2, long.length], [...Array(pad).fill(0), ...short, ...long].map(BigInt)),
      attentionMask: createTensor('int64', [2, long.length], mask.map(BigInt)),
    });
    // Each row continues with its own token for 70 steps (past the first capacity of 64), padding kept in the mask.
    let cache = out.cache as KvCache;
    const rows = [[...short], [...long]];
    let rowMask = [mask.slice(0, long.length), mask.slice(long.length)];
    let step = out;
    for (let t = 0; t < 70; t++) {
      const next = [1 + ((t * 5) % (V - 1)), 1 + ((t * 13 + 2) % (V - 1))];
      rowMask = rowMask.map((r) => [...r, 1]);
      step = await m.forward({
        inputIds: createTensor('int64', [2, 1], next.map(BigInt)),
        attentionMask: createTensor('int64', [2, rowMask[0].length], [...rowMask[0], ...rowMask[1]].map(BigInt)),
        cache,
      });
      cache = step.cache as KvCache;
      rows[0].push(next[0]);
      rows[1].push(next[1]);
    }
    expect(maxAbsDiff(step.logits.data.subarray(0, V), lastLogits(rows[0]))).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(step.logits.data.subarray(V), lastLogits(rows[1]))).toBeLessThanOrEqual(1e-4);

    const repeater = m as OnnxLanguageModel & { repeatCache(c: KvCache, n: number): KvCache };
    const single = await m.forward({ inputIds: ids(long) });
    const three = repeater.repeatCache(single.cache as KvCache, 3);
    const fanned = await m.forward({ inputIds: createTensor('int64', [3, 1], [20n, 21n, 22n]), cache: three });
    for (const [i, tok] of [20, 21, 22].entries()) {
      expect(maxAbsDiff(fanned.logits.data.subarray(i * V, (i + 1) * V), lastLogits([...long, tok]))).toBeLessThanOrEqual(1e-4);
    }
    (single.cache as KvCache).dispose();
    const err = await m.forward({ inputIds: ids([1]), cache: single.cache }).catch((e: unknown) => e);
    expect(isVlitError(err) && err.code).toBe('VLIT_INVALID_ARGUMENT');
  });

  it('selectCacheRows keeps chosen rows, in order, on both protocols; the source cache stays usable', async () => {
    const files = llamaOnnxFiles(buildLlamaOnnx(config, weights));
    const optimum = await loadOptimumDecoder(createMemorySource(files, 'optimum-select'), { backend: runtimes.node.backend });
    toRelease.push(optimum);
    const prompts = [stream(9, 1), stream(9, 2), stream(9, 3)];
    for (const m of [models.node!, optimum]) {
      const first = await m.forward({ inputIds: createTensor('int64', [3, 9], prompts.flat().map(BigInt)) });
      const full = first.cache as KvCache;
      // Rows 2 and 0 (reordered), and row 1 twice: each continues as that prompt alone would.
      for (const keep of [
        [2, 0],
        [1, 1],
      ]) {
        const picked = m.selectCacheRows(full, keep);
        expect(picked.length).toBe(9);
        const next = keep.map((r) => 30 + r);
        let out = await m.forward({ inputIds: createTensor('int64', [keep.length, 1], next.map(BigInt)), cache: picked });
        // A second step appends to the selected cache.
        out = await m.forward({
          inputIds: createTensor(
            'int64',
            [keep.length, 1],
            keep.map(() => 7n),
          ),
          cache: out.cache,
        });
        keep.forEach((r, k) => {
          expect(maxAbsDiff(out.logits.data.subarray(k * V, (k + 1) * V), lastLogits([...prompts[r], 30 + r, 7])), `${m.id} rows ${keep}`).toBeLessThanOrEqual(
            1e-4,
          );
        });
      }
      const still = await m.forward({ inputIds: createTensor('int64', [3, 1], [40n, 41n, 42n]), cache: full });
      prompts.forEach((p, r) => expect(maxAbsDiff(still.logits.data.subarray(r * V, (r + 1) * V), lastLogits([...p, 40 + r]))).toBeLessThanOrEqual(1e-4));
      const err = (() => {
        try {
          m.selectCacheRows(full, [3]);
        } catch (e) {
          return e;
        }
      })();
      expect(isVlitError(err) && err.code).toBe('VLIT_INVALID_ARGUMENT');
    }
  });

  it('stackCaches joins caches of different lengths on both protocols, each right-aligned under left padding; the parts stay usable', async () => {
    const files = llamaOnnxFiles(buildLlamaOnnx(config, weights));
    const optimum = await loadOptimumDecoder(createMemorySource(files, 'optimum-stack'), { backend: runtimes.node.backend });
    toRelease.push(optimum);
    const short = [stream(3, 5), stream(6, 6)];
    // Longer than the first slot capacity (64): the parts' slot stores have capacities 64 and 128.
    const long = stream(70, 7);
    for (const m of [models.node!, optimum]) {
      // Part one: two prompts left-padded to 6 in one pass; part two: one prompt of 70.
      const a = await m.forward({
        inputIds: createTensor('int64', [2, 6], [0, 0, 0, ...short[0], ...short[1]].map(BigInt)),
        attentionMask: createTensor('int64', [2, 6], [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1].map(BigInt)),
      });
      const b = await m.forward({ inputIds: ids(long) });
      const stacked = m.stackCaches([a.cache as KvCache, b.cache as KvCache]);
      expect(stacked.length).toBe(70);
      // Two steps of the joined batch, every row left-padded to 70: each row continues as its prompt alone.
      const rows = [[...short[0]], [...short[1]], [...long]];
      let mask = rows.map((r) => [...Array(70 - r.length).fill(0), ...r.map(() => 1)]);
      let cache: KvCache = stacked;
      let out = a;
      for (const next of [
        [20, 21, 22],
        [30, 31, 32],
      ]) {
        mask = mask.map((r) => [...r, 1]);
        out = await m.forward({
          inputIds: createTensor('int64', [3, 1], next.map(BigInt)),
          attentionMask: createTensor('int64', [3, mask[0].length], mask.flat().map(BigInt)),
          cache,
        });
        cache = out.cache as KvCache;
        rows.forEach((r, k) => r.push(next[k]));
      }
      rows.forEach((r, k) => expect(maxAbsDiff(out.logits.data.subarray(k * V, (k + 1) * V), lastLogits(r)), `${m.id} row ${k}`).toBeLessThanOrEqual(1e-4));
      // The parts were copied, not taken: part two still continues on its own.
      const alone = await m.forward({ inputIds: ids([40]), cache: b.cache });
      expect(maxAbsDiff(alone.logits.data, lastLogits([...long, 40]))).toBeLessThanOrEqual(1e-4);
      const errors = [
        () => m.stackCaches([]),
        // A cache this model did not make.
        () => m.stackCaches([a.cache as KvCache, { length: 1, dispose() {} }]),
      ].map((f) => {
        try {
          f();
        } catch (e) {
          return isVlitError(e) && e.code;
        }
      });
      expect(errors).toEqual(['VLIT_INVALID_ARGUMENT', 'VLIT_INVALID_ARGUMENT']);
    }
  });

  it('stackCaches keeps a float16 cache float16: the joined cache has the bits of one pass over the left-padded batch', async () => {
    // A real onnxruntime session in Optimum's layout with float16 past/present: each new key/value is the token id
    // times a per-(head, channel) constant, so the padding id 0 gives the zero keys stackCaches puts in front.
    const heads = 2;
    const dim = 3;
    const g = createGraph({ name: 'f16-cache', opset: 20 });
    const inputIds = g.input('input_ids', 'int64', ['batch', 'seq']);
    g.input('attention_mask', 'int64', ['batch', 'total']);
    g.input('position_ids', 'int64', ['batch', 'seq']);
    const scale = g.initializer('scale', createTensor('float16', [1, heads, 1, dim], new Uint16Array([0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600])));
    const fresh = g.mul(g.cast(g.unsqueeze(inputIds, [1, 3]), 'float16'), scale, { name: 'fresh' });
    for (const kind of ['key', 'value']) {
      const past = g.input(`past_key_values.0.${kind}`, 'float16', ['batch', heads, 'past', dim]);
      g.output(g.concat([past, fresh], 2, { name: `concat_${kind}` }), `present.0.${kind}`);
    }
    g.output(g.add(g.cast(g.unsqueeze(inputIds, [2]), 'float32'), g.initializer('vocab', createTensor('float32', [1, 1, 4])), { name: 'logits_of' }), 'logits');
    const hf = { hidden_size: heads * dim, vocab_size: 4, num_hidden_layers: 1, num_attention_heads: heads, num_key_value_heads: heads, head_dim: dim };
    const m = await loadOptimumDecoder(createMemorySource({ 'config.json': JSON.stringify(hf), 'model.onnx': encodeModel(g.toModel()) }, 'f16'), {
      backend: runtimes.node.backend,
    });
    toRelease.push(m);
    const first = await m.forward({ inputIds: createTensor('int64', [2, 2], [1n, 2n, 3n, 1n]) });
    const second = await m.forward({ inputIds: createTensor('int64', [1, 4], [2n, 3n, 1n, 2n]) });
    const stacked = m.stackCaches([first.cache as KvCache, second.cache as KvCache]);
    const padded = await m.forward({
      inputIds: createTensor('int64', [3, 4], [0n, 0n, 1n, 2n, 0n, 0n, 3n, 1n, 2n, 3n, 1n, 2n]),
      attentionMask: createTensor('int64', [3, 4], [0n, 0n, 1n, 1n, 0n, 0n, 1n, 1n, 1n, 1n, 1n, 1n]),
    });
    // The stacked cache, stepped once, returns present tensors whose first 4 positions are the joined cache.
    const step = await m.forward({ inputIds: createTensor('int64', [3, 1], [0n, 0n, 0n]), cache: stacked });
    const stepped = await m.forward({ inputIds: createTensor('int64', [3, 1], [0n, 0n, 0n]), cache: padded.cache });
    const bits = (c: KvCache | undefined): unknown => (c as unknown as { tensors: Record<string, Tensor> }).tensors['present.0.key'];
    const joined = bits(step.cache) as Tensor;
    expect(joined.dtype).toBe('float16');
    expect(joined.data).toBeInstanceOf(Uint16Array);
    expect(joined.dims).toEqual([3, heads, 5, dim]);
    expect(Array.from(joined.data as Uint16Array)).toEqual(Array.from((bits(stepped.cache) as Tensor).data as Uint16Array));
    expect(new Set(joined.data as Uint16Array).size).toBeGreaterThan(4);
  });

  it('logitsToKeep returns the last positions’ logits on both protocols (the session graph computes only those), and the cache is the same', async () => {
    expect(listInputs(buildLlamaDecoderModel(config, weights, { cache: 'slots' })).find((v) => v.name === 'logits_to_keep')?.dims).toEqual([1]);
    const files = llamaOnnxFiles(buildLlamaOnnx(config, weights));
    const optimum = await loadOptimumDecoder(createMemorySource(files, 'optimum-keep'), { backend: runtimes.node.backend });
    toRelease.push(optimum);
    const long = stream(9, 6);
    const short = stream(6, 7);
    // Two rows, the short one left-padded: logits of the last 3 positions of each.
    const input = {
      inputIds: createTensor('int64', [2, 9], [0, 0, 0, ...short, ...long].map(BigInt)),
      attentionMask: createTensor('int64', [2, 9], [0, 0, 0, 1, 1, 1, 1, 1, 1, ...Array(9).fill(1)].map(BigInt)),
    };
    for (const m of [models.node!, optimum]) {
      const all = await m.forward(input);
      const kept = await m.forward({ ...input, logitsToKeep: 3 });
      expect(kept.logits.dims, m.id).toEqual([2, 3, V]);
      for (let b = 0; b < 2; b++) {
        const tokens = b === 0 ? short : long;
        for (let j = 0; j < 3; j++) {
          const got = kept.logits.data.subarray((b * 3 + j) * V, (b * 3 + j + 1) * V);
          expect(maxAbsDiff(got, all.logits.data.subarray((b * 9 + 6 + j) * V, (b * 9 + 7 + j) * V)), `${m.id} row ${b} position ${6 + j}`).toBeLessThanOrEqual(
            1e-6,
          );
          expect(maxAbsDiff(got, lastLogits(tokens.slice(0, tokens.length - 2 + j)))).toBeLessThanOrEqual(1e-4);
        }
      }
      // The cache of the pass that kept fewer logits continues exactly as the full pass's does.
      const step = {
        inputIds: createTensor('int64', [2, 1], [5n, 6n]),
        attentionMask: createTensor('int64', [2, 10], [0, 0, 0, ...Array(7).fill(1), ...Array(10).fill(1)].map(BigInt)),
      };
      const fromAll = await m.forward({ ...step, cache: all.cache });
      const fromKept = await m.forward({ ...step, cache: kept.cache });
      expect(maxAbsDiff(fromAll.logits.data, fromKept.logits.data)).toBe(0);
      for (const bad of [0, 10, 1.5]) {
        const err = await m.forward({ ...input, logitsToKeep: bad }).catch((e: unknown) => e);
        expect(isVlitError(err) && err.code, `logitsToKeep ${bad}`).toBe('VLIT_INVALID_ARGUMENT');
        expect(isVlitError(err) && err.details.field).toBe('logitsToKeep');
      }
    }
  });

  it('the same weights through the Optimum protocol give the same logits and tokens over a long decode', async () => {
    // The files Vlit writes (Optimum's protocol), loaded as any Optimum export is.
    const files = llamaOnnxFiles(buildLlamaOnnx(config, weights));
    const optimum = await loadOptimumDecoder(createMemorySource(files, 'optimum'), { backend: runtimes.node.backend });
    toRelease.push(optimum);
    const slots = models.node!;
    let a = await optimum.forward({ inputIds: ids(stream(20, 5)) });
    let b = await slots.forward({ inputIds: ids(stream(20, 5)) });
    let worst = maxAbsDiff(a.logits.data, b.logits.data);
    const argmax = (x: Float32Array): number => x.indexOf(Math.max(...x.subarray(x.length - V)), x.length - V) - (x.length - V);
    for (let t = 0; t < 100; t++) {
      const next = argmax(a.logits.data);
      expect(argmax(b.logits.data)).toBe(next);
      a = await optimum.forward({ inputIds: ids([next]), cache: a.cache });
      b = await slots.forward({ inputIds: ids([next]), cache: b.cache });
      worst = Math.max(worst, maxAbsDiff(a.logits.data, b.logits.data));
    }
    expect(worst).toBeLessThanOrEqual(1e-5);
  });
});
