/**
 * Test fixture: a tiny LLaVA-architecture model (MLP projector with GELU, Llama decoder with
 * grouped-query attention) with deterministic weights, built by @vlit/connectors and @vlit/models, and
 * hand-made encoded samples whose image spans hold the connector's tokens.
 */
import { createRng, createTensor, type Tensor } from '@vlit/core';
import { buildConnectorModel, initConnectorWeights, type ConnectorConfig } from '@vlit/connectors';
import { buildEmbedTokensModel, buildLlamaDecoderModel, initLlamaWeights, tinyLlamaConfig, toHfLlamaConfig, type LlamaConfig } from '@vlit/models';
import type { TrainingSample } from '../data/order.js';
import { llavaTensorNaming } from './naming.js';
import type { TrainingModelParts } from './training-graph.js';

/** The tiny model's widths. */
export const TINY = { vocab: 48, hidden: 16, featureDim: 8, imageTokens: 3, imageTokenId: 47 } as const;

/** Parts, configs and every weight under its transformers LLaVA name. */
export interface TinyLlava {
  parts: TrainingModelParts;
  llama: LlamaConfig;
  connector: ConnectorConfig;
  /** HF names -> tensors (projector and language model). */
  weights: Record<string, Tensor<'float32'>>;
  /** transformers' text_config as JSON. */
  hfTextConfig: Record<string, unknown>;
}

/** Build the tiny model from a seed. */
export function createTinyLlava(seed = 1, options: { layers?: number } = {}): TinyLlava {
  const llama = tinyLlamaConfig({
    hiddenSize: TINY.hidden,
    vocabSize: TINY.vocab,
    intermediateSize: 32,
    numHiddenLayers: options.layers ?? 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 128,
  });
  const lw = initLlamaWeights(llama, seed);
  const connector: ConnectorConfig = { kind: 'mlp', inputDim: TINY.featureDim, hiddenDim: TINY.hidden, outputDim: TINY.hidden };
  const cw = initConnectorWeights(connector, seed + 1);
  const weights: Record<string, Tensor<'float32'>> = {};
  for (const [k, v] of Object.entries(cw)) weights[llavaTensorNaming('connector', k) as string] = v;
  for (const [k, v] of Object.entries(lw)) weights[llavaTensorNaming('decoder', k) as string] = v;
  return {
    parts: {
      connector: buildConnectorModel(connector, cw),
      embedTokens: buildEmbedTokensModel(llama, lw['model.embed_tokens.weight']),
      decoder: buildLlamaDecoderModel(llama, lw),
    },
    llama,
    connector,
    weights,
    hfTextConfig: toHfLlamaConfig(llama),
  };
}

/**
 * A sample: bos, then `images` image spans of TINY.imageTokens tokens (id TINY.imageTokenId), the
 * prompt ids, then the answer ids (trained) and eos (trained).
 */
export function makeSample(id: string, prompt: number[], answer: number[], images = 1): TrainingSample {
  const inputIds = [1];
  const labels = [-100];
  const imageSpans: TrainingSample['imageSpans'] = [];
  for (let k = 0; k < images; k++) {
    imageSpans.push({ imageIndex: k, start: inputIds.length, end: inputIds.length + TINY.imageTokens });
    for (let t = 0; t < TINY.imageTokens; t++) {
      inputIds.push(TINY.imageTokenId);
      labels.push(-100);
    }
  }
  for (const p of prompt) {
    inputIds.push(p);
    labels.push(-100);
  }
  for (const a of [...answer, 2]) {
    inputIds.push(a);
    labels.push(a);
  }
  return { id, inputIds, labels, imageSpans };
}

/** Seeded random features [TINY.imageTokens, TINY.featureDim]. */
export function randomFeatures(seed: string | number): Tensor<'float32'> {
  const t = createTensor('float32', [TINY.imageTokens, TINY.featureDim]);
  createRng(seed).fillNormal(t.data, 1);
  return t;
}
