// Generate-mode units go to a model's generateBatch in batches: the same per-item results as one
// call per unit, with a real batched decoder (a tiny Llama-style ONNX decoder from @vlit/models).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchGenerationItem, GenerationOptions, GenerationResult, Tokenizer, VisionLanguageModel, VisionLanguageRequest } from '@vlit/core';
import { createLlamaDecoder, generate, generateBatch, tinyLlamaConfig, type LlamaDecoder } from '@vlit/models';
import { createNodeRuntime } from '@vlit/runtime/node';
import { makeImage, promptText } from '../testing.js';
import { createVqaBenchmark, type VqaItem } from './benchmarks.js';
import { evaluate } from './evaluate.js';

const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
let lm: LlamaDecoder;
beforeAll(async () => {
  lm = await createLlamaDecoder({
    backend: runtime.backend,
    config: tinyLlamaConfig({ hiddenSize: 48, vocabSize: 96, intermediateSize: 96, eosTokenId: 0 }),
    seed: 'eval-batch',
  });
});
afterAll(async () => {
  await lm.dispose();
});

/** Printable ASCII as ids 1..95, 0 as end of sequence. */
const tokenizer: Tokenizer = {
  id: 'ascii',
  vocabSize: 96,
  specialTokens: { eos: '</s>' },
  encode: (text) => {
    const ids = [...text].map((c) => c.charCodeAt(0) - 31).filter((id) => id > 0 && id < 96);
    return { ids, offsets: ids.map((_, i) => [i, i + 1] as [number, number]) };
  },
  decode: (ids) => ids.map((id) => (id > 0 && id < 96 ? String.fromCharCode(id + 31) : '')).join(''),
  tokenToId: (t) => (t === '</s>' ? 0 : t.length === 1 ? t.charCodeAt(0) - 31 : undefined),
  idToToken: (id) => (id === 0 ? '</s>' : String.fromCharCode(id + 31)),
};

/** A text-only model over the decoder, with and without the batched method. */
function decoderModel(batched: boolean): VisionLanguageModel & { calls: number; batches: number[] } {
  const settings = (o: GenerationOptions | undefined) => ({ ...o, maxNewTokens: o?.maxNewTokens ?? 12, tokenizer, stopTokenIds: [0] });
  const input = (r: VisionLanguageRequest) => ({ inputIds: tokenizer.encode(promptText(r.messages)).ids });
  const strip = ({ stoppedBy: _s, ...r }: GenerationResult & { stoppedBy?: unknown }): GenerationResult => r;
  const m: VisionLanguageModel & { calls: number; batches: number[] } = {
    id: 'tiny-decoder',
    calls: 0,
    batches: [],
    async generate(request, options) {
      m.calls++;
      return strip(await generate(lm, input(request), settings(options)));
    },
    async score() {
      return [];
    },
  };
  if (batched) {
    m.generateBatch = async (items: readonly BatchGenerationItem[]) => {
      m.batches.push(items.length);
      const results = await generateBatch(
        lm,
        items.map((it) => ({ input: input(it.request), options: settings(it.options) })),
      );
      return results.map((value) => ({ status: 'fulfilled' as const, value: strip(value) }));
    };
  }
  return m;
}

const items: VqaItem[] = Array.from({ length: 20 }, (_, i) => ({
  id: `q${i}`,
  question: `${'Why is item '.slice(0, 4 + (i % 9))} ${i}?`,
  images: i === 13 ? ['broken.png'] : [],
  answers: Array(10).fill(i % 4 === 0 ? 'no' : String(i)),
}));
const loadImage = async (ref: unknown) => {
  if (ref === 'broken.png') throw new Error('unreadable image');
  return makeImage(String(ref));
};

describe('evaluate with a model that generates batches', () => {
  it('batchSize 8 sends generate units as batches (8, 7 + one unit whose image fails alone, 4) and gives the same per-item results as batchSize 1 and as a model without generateBatch', async () => {
    const run = async (model: VisionLanguageModel, batchSize: number) =>
      evaluate({ model, benchmarks: [createVqaBenchmark({ id: 'vqa', items })], loadImage, batchSize, onModelError: 'record', decoding: { maxNewTokens: 12 } });
    const batchedModel = decoderModel(true);
    const batched = await run(batchedModel, 8);
    // The unit with the unreadable image fails alone; its batch still runs the other 7.
    expect(batchedModel.batches).toEqual([8, 7, 4]);
    expect(batchedModel.calls).toBe(0);
    const oneAtATime = decoderModel(true);
    const single = await run(oneAtATime, 1);
    expect(oneAtATime.batches).toEqual([]);
    expect(oneAtATime.calls).toBe(19);
    const plainModel = decoderModel(false);
    const plain = await run(plainModel, 8);
    expect(plainModel.calls).toBe(19);
    expect(batched.benchmarks[0].items).toEqual(single.benchmarks[0].items);
    expect(batched.benchmarks[0].items).toEqual(plain.benchmarks[0].items);
    expect(batched.benchmarks[0].metrics).toEqual(single.benchmarks[0].metrics);
    expect(batched.stats).toMatchObject({ units: 20, computed: 19, failed: 1 });
    expect(batched.warnings.map((w) => w.details?.record)).toEqual(['q13']);
    // The predictions are real generations that differ between items.
    const texts = new Set(batched.benchmarks[0].items.map((it) => JSON.stringify(it)));
    expect(texts.size).toBe(20);
  });
});
