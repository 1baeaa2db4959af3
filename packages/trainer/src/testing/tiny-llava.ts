/**
 * Test fixture: a tiny LLaVA-architecture model (MLP projector with GELU, Llama decoder with
 * grouped-query attention) with deterministic weights, built by @vlit/connectors and @vlit/models, and
 * hand-made encoded samples whose image spans hold the connector's tokens; and the batch and runner the
 * torch references in py/ share.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createRng, createTensor, parseSafetensors, serializeSafetensors, type SafetensorsInput, type Tensor } from '@vlit/core';
import { buildConnectorModel, initConnectorWeights, type ConnectorConfig } from '@vlit/connectors';
import { buildEmbedTokensModel, buildLlamaDecoderModel, initLlamaWeights, tinyLlamaConfig, toHfLlamaConfig, type LlamaConfig } from '@vlit/models';
import { runReferencePython } from '@vlit/test-kit/node';
import { collateBatch } from '../data/collate.js';
import type { TrainingSample } from '../data/order.js';
import { llavaTensorNaming } from '../training/naming.js';
import type { TrainingModelParts } from '../training/training-graph.js';

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

/**
 * What the torch references in py/ read: every weight as `weight.<HF name>` and the right-padded batch
 * as `batch.*` (input ids, attention mask, labels, image-token mask, the image features stacked).
 */
export function referenceTensors(tiny: TinyLlava, samples: TrainingSample[], features: Tensor<'float32'>[][]): Map<string, SafetensorsInput> {
  const c = collateBatch(samples, { padTokenId: 0 });
  const [B, S] = c.inputIds.dims;
  const imageMask = new Uint8Array(B * S);
  c.imageSpans.forEach((spans, b) => spans.forEach((sp) => imageMask.fill(1, b * S + sp.start, b * S + sp.end)));
  const tensors = new Map<string, SafetensorsInput>();
  for (const [k, v] of Object.entries(tiny.weights)) tensors.set(`weight.${k}`, v);
  tensors.set('batch.input_ids', c.inputIds);
  tensors.set('batch.attention_mask', c.attentionMask);
  tensors.set('batch.labels', c.labels);
  tensors.set('batch.image_mask', createTensor('uint8', [B, S], imageMask));
  const flat = features.flat();
  const feat = createTensor('float32', [flat.length, TINY.imageTokens, TINY.featureDim]);
  flat.forEach((f, i) => feat.data.set(f.data, i * f.data.length));
  tensors.set('batch.features', feat);
  return tensors;
}

/**
 * Run the torch reference `py/<script>` as `<script> config.json in.safetensors ...args out.safetensors`
 * (files in `dir`; the config is the tiny model's plus `config`) and return a reader of its outputs.
 */
export function runTorchReference(
  script: string,
  options: { dir: string; tiny: TinyLlava; tensors: Map<string, SafetensorsInput>; config?: Record<string, unknown>; args?: string[] },
): (name: string) => Float32Array {
  const cfgFile = path.join(options.dir, 'config.json');
  const inFile = path.join(options.dir, 'in.safetensors');
  const outFile = path.join(options.dir, 'out.safetensors');
  writeFileSync(inFile, serializeSafetensors(options.tensors));
  const config = { text_config: options.tiny.hfTextConfig, feature_dim: TINY.featureDim, image_token_id: TINY.imageTokenId, ...options.config };
  writeFileSync(cfgFile, JSON.stringify(config));
  runReferencePython(new URL(`../training/py/${script}`, import.meta.url).pathname, [cfgFile, inFile, ...(options.args ?? []), outFile]);
  const out = parseSafetensors(new Uint8Array(readFileSync(outFile)));
  return (name) => {
    const entry = out.tensors.get(name);
    if (!entry) throw new Error(`${script} did not write ${name}`);
    return Float32Array.from(entry.toFloat32());
  };
}

/** max |a - b| / max |b|: the error relative to the reference tensor's scale. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}
