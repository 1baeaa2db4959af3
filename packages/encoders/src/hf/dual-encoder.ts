/**
 * CLIPModel / SiglipModel as a Vlit TextEmbedder + VisionEncoder pair sharing one embedding space,
 * so the data-quality report's image–text relevance runs on a real CLIP-style model. Text goes in
 * through a caller's Tokenizer (encoders may not depend on @vlit/templates); embeddings are
 * L2-normalised as transformers' `CLIPOutput.text_embeds` / `image_embeds` are.
 */
import {
  InvalidArgumentError,
  canonicalJson,
  createTensor,
  toFloat32,
  type InferenceBackend,
  type SessionOptions,
  type Tensor,
  type TextEmbedder,
  type Tokenizer,
  type VisionEncoder,
} from '@vlit/core';
import { createGraph, encodeModel, type OnnxModel } from '@vlit/graph';
import type { ImageProcessorSettings, PreprocessorConfig } from '../preprocess/config.js';
import { contentHash } from '../encoders/hash.js';
import { encodeFixedSize, runPixelBatches } from '../encoders/pixel-batches.js';
import type { HfDualEncoderSpec } from './config.js';
import { addHfImageEmbedding, addHfTextTower, addHfVisionTower, addL2Normalize } from './graph.js';
import { HF_PIXEL_INPUT, towerProcessorSettings } from './vision-encoder.js';
import { checkHfWeights, dualEncoderWeightShapes, type HfWeights } from './weights.js';

/** Input name of the text graph. */
export const HF_TEXT_INPUT = 'input_ids';

function subWeights(weights: HfWeights, prefix: string): HfWeights {
  const out = new Map<string, Tensor<'float32'>>();
  for (const [k, v] of weights) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

/** The image side as an ONNX model: `pixel_values` -> `image_embeds` (normalised) and `image_features` (projected, raw). */
export function buildHfImageEmbeddingModel(spec: HfDualEncoderSpec, weights: HfWeights): OnnxModel {
  checkHfWeights(weights, dualEncoderWeightShapes(spec));
  const v = spec.vision;
  const g = createGraph({ name: `vlit-hf-${spec.family}-image-embeds`, opset: 20, producerName: 'vlit' });
  const pixels = g.input(HF_PIXEL_INPUT, 'float32', ['batch', v.numChannels, v.imageSize, v.imageSize]);
  const tower = subWeights(weights, 'vision_model.');
  const { hiddenStates } = addHfVisionTower(g, pixels, v, tower, { namePrefix: 'vision_model.' });
  const projection = spec.family === 'clip' ? { name: 'visual_projection.weight', tensor: weights.get('visual_projection.weight')! } : undefined;
  const features = addHfImageEmbedding(g, hiddenStates[hiddenStates.length - 1], v, tower, { namePrefix: 'vision_model.', projection });
  g.output(g.identity(features), 'image_features');
  g.output(addL2Normalize(g, features, 'normalize'), 'image_embeds');
  return g.toModel();
}

/** The text side as an ONNX model: `input_ids` [batch, seq] -> `text_embeds` (normalised) and `text_features` (projected, raw). */
export function buildHfTextEmbeddingModel(spec: HfDualEncoderSpec, weights: HfWeights): OnnxModel {
  checkHfWeights(weights, dualEncoderWeightShapes(spec));
  const g = createGraph({ name: `vlit-hf-${spec.family}-text-embeds`, opset: 20, producerName: 'vlit' });
  const ids = g.input(HF_TEXT_INPUT, 'int64', ['batch', 'sequence']);
  const { pooled } = addHfTextTower(g, ids, spec.text, subWeights(weights, 'text_model.'), { namePrefix: 'text_model.' });
  const features =
    spec.family === 'clip' ? g.matMul(pooled, g.transpose(g.initializer('text_projection.weight', weights.get('text_projection.weight')!), [1, 0])) : pooled;
  g.output(g.identity(features), 'text_features');
  g.output(addL2Normalize(g, features, 'normalize'), 'text_embeds');
  return g.toModel();
}

/** A TextEmbedder over a dual encoder's text tower; `embedIds` takes token ids directly. */
export interface HfTextEmbedder extends TextEmbedder {
  /** Embed already-tokenised sequences (each with the model's special tokens); normalised vectors. */
  embedIds(ids: readonly (readonly number[])[]): Promise<Float32Array[]>;
  /** The ids `embed` feeds the model for a text (tokenised, truncated, padded as the model's processor does). */
  tokenize(texts: readonly string[]): number[][];
}

/** The image side: one normalised embedding per image (`tokensPerImage` 1). */
export interface HfImageEmbedder extends VisionEncoder {
  readonly settings: ImageProcessorSettings;
  readonly preprocessingKey: string;
  /** Embed preprocessed pixels [N, C, S, S]; [N, 1, dim], normalised. */
  encodePixels(pixels: Tensor<'float32'>): Promise<Tensor<'float32'>>;
}

/** A CLIPModel / SiglipModel loaded into Vlit. */
export interface HfDualEncoder {
  readonly spec: HfDualEncoderSpec;
  readonly text: HfTextEmbedder;
  readonly image: HfImageEmbedder;
  /** exp(logit_scale). */
  readonly logitScale: number;
  /** SigLIP's logit bias (0 for CLIP). */
  readonly logitBias: number;
  /** transformers' `logits_per_image` [images][texts] from normalised embeddings. */
  logitsPerImage(imageEmbeds: readonly Float32Array[], textEmbeds: readonly Float32Array[]): number[][];
  release(): Promise<void>;
}

/** Options of createHfDualEncoder. */
export interface HfDualEncoderOptions {
  backend: InferenceBackend;
  spec: HfDualEncoderSpec;
  /** Every tensor of the model under its checkpoint name (`vision_model.…`, `text_model.…`, projections, logit_scale). */
  weights: HfWeights;
  /** Needed by `text.embed` (strings); `text.embedIds` works without one. */
  tokenizer?: Tokenizer;
  /** A parsed `preprocessor_config.json` or settings; default the family's processor at the tower's size. */
  preprocessor?: PreprocessorConfig | ImageProcessorSettings;
  /** Largest batch per session run (default 16). */
  maxBatch?: number;
  session?: SessionOptions;
  /** Id prefix; default `hf:<family>:<hash of the weights' graphs>`. */
  id?: string;
}

function scalar(weights: HfWeights, name: string): number {
  const t = weights.get(name);
  return t ? t.data[0] : 0;
}

/** Build both towers' graphs, start two sessions and return the pair. */
export async function createHfDualEncoder(options: HfDualEncoderOptions): Promise<HfDualEncoder> {
  const { spec, weights, backend } = options;
  const v = spec.vision;
  const t = spec.text;
  const settings = towerProcessorSettings(v, options.preprocessor);
  const imageModel = encodeModel(buildHfImageEmbeddingModel(spec, weights));
  const textModel = encodeModel(buildHfTextEmbeddingModel(spec, weights));
  const base = options.id ?? `hf:${spec.family}:${contentHash(imageModel).slice(0, 8)}${contentHash(textModel).slice(0, 8)}`;
  const dim = spec.family === 'clip' ? spec.projectionDim : t.projectionSize;
  const maxBatch = Math.max(1, options.maxBatch ?? 16);
  const imageSession = await backend.createSession(imageModel, options.session);
  const textSession = await backend.createSession(textModel, options.session).catch(async (err: unknown) => {
    await imageSession.release();
    throw err;
  });
  const S = v.imageSize;
  const C = v.numChannels;

  const run = {
    session: imageSession,
    input: HF_PIXEL_INPUT,
    output: 'image_embeds',
    imageDims: [C, S, S],
    features: [1, dim],
    maxBatch,
    what: 'tower',
  } as const;
  const encodePixels = (pixels: Tensor<'float32'>): Promise<Tensor<'float32'>> => runPixelBatches(pixels, run);

  const image: HfImageEmbedder = {
    id: `${base}:image`,
    outputDim: dim,
    settings,
    preprocessingKey: canonicalJson({ settings, output: 'image_embeds' }),
    tokensPerImage: () => 1,
    encodePixels,
    encode: encodeFixedSize(settings, [C, S, S], 'tower', encodePixels),
  };

  const checkIds = (seqs: readonly (readonly number[])[]) => {
    seqs.forEach((ids, i) => {
      if (ids.length === 0) throw new InvalidArgumentError(`sequence ${i} is empty`, { details: { record: i, field: 'ids' } });
      if (ids.length > t.maxPositions) {
        throw new InvalidArgumentError(`sequence ${i} has ${ids.length} tokens; the text tower takes at most ${t.maxPositions}`, {
          details: { record: i, field: 'ids' },
        });
      }
      const bad = ids.find((x) => !Number.isInteger(x) || x < 0 || x >= t.vocabSize);
      if (bad !== undefined)
        throw new InvalidArgumentError(`sequence ${i} holds token id ${bad}, outside the vocabulary of ${t.vocabSize}`, {
          details: { record: i, field: 'ids' },
        });
      // Without its EOS token CLIP would pool position 0 silently; say so instead.
      if (spec.family === 'clip' && t.eosTokenId !== 2 && !ids.includes(t.eosTokenId)) {
        throw new InvalidArgumentError(`sequence ${i} has no EOS token (id ${t.eosTokenId}), which CLIP pools; tokenize with special tokens`, {
          details: { record: i, field: 'ids' },
        });
      }
    });
  };

  const embedIds = async (seqs: readonly (readonly number[])[]): Promise<Float32Array[]> => {
    checkIds(seqs);
    const out: Float32Array[] = [];
    for (let start = 0; start < seqs.length; start += maxBatch) {
      const chunk = seqs.slice(start, start + maxBatch);
      // CLIP is causal and pools at EOS, so right padding cannot change the result; all rows share one length.
      const len = Math.max(...chunk.map((s) => s.length));
      const ids = createTensor('int64', [chunk.length, len]);
      chunk.forEach((s, i) => {
        for (let k = 0; k < len; k++) ids.data[i * len + k] = BigInt(k < s.length ? s[k] : t.padTokenId);
      });
      const res = await textSession.run({ [HF_TEXT_INPUT]: ids }, { outputs: ['text_embeds'] });
      const data = toFloat32(res.text_embeds);
      for (let i = 0; i < chunk.length; i++) out.push(data.slice(i * dim, (i + 1) * dim));
    }
    return out;
  };

  const tokenize = (texts: readonly string[]): number[][] => {
    const tok = options.tokenizer;
    if (!tok)
      throw new InvalidArgumentError('embedding strings needs a tokenizer (pass options.tokenizer), or use embedIds', { details: { field: 'tokenizer' } });
    const eos = tok.specialTokens.eos !== undefined ? tok.tokenToId(tok.specialTokens.eos) : undefined;
    const pad = tok.specialTokens.pad !== undefined ? (tok.tokenToId(tok.specialTokens.pad) ?? t.padTokenId) : t.padTokenId;
    return texts.map((text) => {
      let ids = tok.encode(text, { addSpecialTokens: true }).ids;
      if (ids.length > t.maxPositions) {
        // Truncation keeps the closing EOS, as the Hugging Face tokenizers do with truncation on.
        const endsWithEos = eos !== undefined && ids[ids.length - 1] === eos;
        ids = endsWithEos ? [...ids.slice(0, t.maxPositions - 1), eos] : ids.slice(0, t.maxPositions);
      }
      // SigLIP was trained on max_length padding and pools the last position, so pad to it.
      if (spec.family === 'siglip') while (ids.length < t.maxPositions) ids.push(pad);
      return ids;
    });
  };

  const text: HfTextEmbedder = {
    id: `${base}:text${options.tokenizer ? `:${options.tokenizer.id}` : ''}`,
    dim,
    embedIds,
    tokenize,
    embed: async (texts) => embedIds(tokenize(texts)),
  };

  const logitScale = Math.exp(scalar(weights, 'logit_scale'));
  const logitBias = spec.family === 'siglip' ? scalar(weights, 'logit_bias') : 0;
  return {
    spec,
    text,
    image,
    logitScale,
    logitBias,
    logitsPerImage: (imgs, txts) =>
      imgs.map((a) =>
        txts.map((b) => {
          let s = 0;
          for (let k = 0; k < a.length; k++) s += a[k] * b[k];
          return s * logitScale + logitBias;
        }),
      ),
    async release() {
      await imageSession.release();
      await textSession.release();
    },
  };
}
