/**
 * Helpers of the CLI's tests (not exported, not built): `vlit` run in-process with buffered streams, the
 * one-line failure check, and a tiny LLaVA checkpoint folder (Vlit's ViT in CLIP layout + MLP projector +
 * Llama decoder with seeded weights, a word-level tokenizer and a USER/ASSISTANT chat template).
 */
import { expect } from 'vitest';
import { createMlpConnector } from '@vlit/connectors';
import { createHfVisionEncoder, createVitWeights, resolveVitConfig } from '@vlit/encoders';
import { composeVisionLanguageModel, createLlamaDecoder, tinyLlamaConfig } from '@vlit/models';
import { saveLlavaCheckpoint, vitAsHfVisionTower } from '@vlit/models/node';
import { createNodeRuntime } from '@vlit/runtime/node';
import { buildWordLevelTokenizer, createJinjaChatTemplate } from '@vlit/templates';
import { runCli } from '../main.js';

/** What a `vlit` run gave. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `vlit argv…` in this process (runCli with buffered streams): a spawn per call costs seconds of module loading on a busy machine. */
export async function vlit(...argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

/** A failure as promised: the exit code and one error line naming the needles (usage errors, exit 2, add the --help pointer). */
export function expectOneLine(run: Run, code: number, ...needles: string[]): void {
  expect(run.code, run.stderr).toBe(code);
  const lines = run.stderr.trim().split('\n');
  expect(lines.length, run.stderr).toBe(code === 2 ? 2 : 1);
  for (const n of needles) expect(lines[0]).toContain(n);
}

/** The tiny folders' chat template (Vicuna-style USER/ASSISTANT turns). */
export const TINY_CHAT_TEMPLATE =
  "<s>{% for message in messages %}{% if message['role'] == 'user' %}USER: {{ message['content'] }} {% else %}ASSISTANT: {{ message['content'] }}</s>{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}";

/** Sizes of a tiny LLaVA folder. */
export interface TinyLlavaOptions {
  /** Seed prefix of every weight. */
  seed: string;
  imageSize: number;
  towerHidden: number;
  lmHidden: number;
  /** Decoder layers (default: tinyLlamaConfig's). */
  lmLayers?: number;
  maxPositions: number;
}

/** Write a tiny LLaVA checkpoint folder at `out` whose word-level vocabulary covers `corpus`. */
export async function writeTinyLlavaFolder(out: string, corpus: string[], o: TinyLlavaOptions): Promise<void> {
  const runtime = createNodeRuntime();
  const tokenizer = buildWordLevelTokenizer({ corpus, specialTokens: ['<pad>', '<s>', '</s>', '<image>'], roles: { bos: '<s>', eos: '</s>', pad: '<pad>' } });
  const vit = resolveVitConfig({
    imageSize: o.imageSize,
    patchSize: 8,
    hiddenSize: o.towerHidden,
    numLayers: 2,
    numHeads: o.towerHidden >= 32 ? 4 : 2,
    intermediateSize: 2 * o.towerHidden,
    hiddenAct: 'quick_gelu',
  });
  const { spec, weights } = vitAsHfVisionTower(vit, createVitWeights(vit, `${o.seed}-vit`));
  const tower = await createHfVisionEncoder({ backend: runtime.backend, spec, weights, featureLayer: -2, selectStrategy: 'default' });
  const connector = createMlpConnector({ inputDim: o.towerHidden, outputDim: o.lmHidden }, { backend: runtime.backend, seed: `${o.seed}-mlp` });
  const languageModel = await createLlamaDecoder({
    config: tinyLlamaConfig({
      hiddenSize: o.lmHidden,
      vocabSize: tokenizer.vocabSize,
      intermediateSize: 2 * o.lmHidden,
      ...(o.lmLayers !== undefined ? { numHiddenLayers: o.lmLayers, numAttentionHeads: 2, numKeyValueHeads: 1 } : {}),
      bosTokenId: tokenizer.tokenToId('<s>'),
      eosTokenId: tokenizer.tokenToId('</s>'),
      maxPositionEmbeddings: o.maxPositions,
    }),
    seed: `${o.seed}-llama`,
    backend: runtime.backend,
  });
  const template = createJinjaChatTemplate({ source: TINY_CHAT_TEMPLATE, name: `${o.seed}-test`, imageToken: '<image>', contentFormat: 'string' });
  const model = composeVisionLanguageModel({ encoder: tower, connector, languageModel, template, tokenizer });
  const tokenizerConfig = {
    bos_token: '<s>',
    eos_token: '</s>',
    pad_token: '<pad>',
    unk_token: '<unk>',
    model_max_length: o.maxPositions,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  await saveLlavaCheckpoint(out, model, {
    imageTokenId: tokenizer.tokenToId('<image>') as number,
    imageToken: '<image>',
    chatTemplate: TINY_CHAT_TEMPLATE,
    files: { 'tokenizer.json': JSON.stringify(tokenizer.toJson()), 'tokenizer_config.json': JSON.stringify(tokenizerConfig) },
  });
  await tower.release();
  await connector.dispose();
  await languageModel.dispose();
}
