/**
 * The composed VisionLanguageModel: vision encoder -> connector -> language model, behind core's
 * contract. Images are encoded and projected once per call, their features spliced into the text
 * embeddings at the image spans, and the language model runs on the embeddings.
 */
import {
  CompatibilityError,
  InvalidArgumentError,
  createTensor,
  isVlitError,
  type BatchGenerationItem,
  type CandidateScore,
  type ChatTemplate,
  type Connector,
  type GenerationOptions,
  type GenerationResult,
  type LanguageModel,
  type RawImage,
  type RenderOptions,
  type Tensor,
  type Tokenizer,
  type VisionEncoder,
  type VisionLanguageModel,
  type VisionLanguageRequest,
} from '@vlit/core';
import { generate, scoreContinuations } from '../generation/generate.js';
import { generateBatch, type BatchRow } from '../generation/generate-batch.js';
import { checkComponentsFit, expansionAt, mismatch, visualTokenCount, type FitReport, type ImageTokenExpansion } from './fit.js';
import type { ImageSize } from '@vlit/core';
import { encodeGenerationPrompt, encodeScoringSequence, SCORE_IGNORE_INDEX, type EncodedSequence, type PromptEncoding } from './prompt.js';
import { spliceImageFeatures } from './splice.js';

/** Options of composeVisionLanguageModel. */
export interface ComposeOptions {
  encoder: VisionEncoder;
  connector: Connector;
  languageModel: LanguageModel;
  template: ChatTemplate;
  tokenizer: Tokenizer;
  /** Id of the composed model (default `encoder.id+connector.id+languageModel.id`). */
  id?: string;
  /**
   * The image-token expansion the template and data were prepared with (what `encodeBatch` was given as
   * `imageTokens`). Checked against `connector.outputTokens(encoder.tokensPerImage(size))` at compose time
   * (at `imageSize`) and for every image of every request. Absent: the count is taken from encoder + connector.
   */
  imageTokens?: ImageTokenExpansion;
  /** Image size of the compose-time token-count check (default: the encoder's input size when it states one, else 336 x 336). */
  imageSize?: ImageSize;
  /** Token ids that end a reply. Default: the template's end-of-turn token and the tokenizer's EOS. */
  stopTokenIds?: readonly number[];
  /** Passed to every template render (e.g. `variables: { enable_thinking: false }`). */
  renderOptions?: Omit<RenderOptions, 'addGenerationPrompt'>;
  /** Generation settings used where a call leaves them out (maxNewTokens defaults to 128). */
  defaults?: GenerationOptions;
  /** Candidates run through the language model together when scoring (default 8). */
  scoreBatchSize?: number;
}

/** A composed model: core's VisionLanguageModel plus its parts and the steps it is made of. */
export interface ComposedVisionLanguageModel extends VisionLanguageModel {
  readonly encoder: VisionEncoder;
  readonly connector: Connector;
  readonly languageModel: LanguageModel;
  readonly template: ChatTemplate;
  readonly tokenizer: Tokenizer;
  /** What the compose-time fit check established. */
  readonly fit: FitReport;
  /** Ids that end a reply. */
  readonly stopTokenIds: readonly number[];
  /** Visual tokens the language model sees for an image of this size (checked against `imageTokens`). */
  imageTokenCount(size: ImageSize): number;
  /** Encode and project images: one [tokens, hiddenSize] tensor per image. */
  encodeImages(images: readonly RawImage[], signal?: AbortSignal): Promise<Tensor<'float32'>[]>;
  /** The generation prompt of a request: ids with image spans and the spliced input embeddings [1, n, hiddenSize]. */
  prepareGeneration(request: VisionLanguageRequest): Promise<EncodedSequence & { embeds: Tensor<'float32'> }>;
  /**
   * Generate for several requests as one left-padded batch on the language model (images of all
   * requests encoded together). Each item settles on its own with what `generate` gives it alone; a
   * request that cannot be prepared (bad images, prompt over the context) fails alone.
   */
  generateBatch(items: readonly BatchGenerationItem[]): Promise<PromiseSettledResult<GenerationResult>[]>;
}

function int64(dims: number[], values: ArrayLike<number>): Tensor<'int64'> {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return createTensor('int64', dims, data);
}

function isSize(v: unknown): v is ImageSize {
  const s = v as ImageSize | undefined;
  return typeof s === 'object' && s !== null && Number.isInteger(s.width) && Number.isInteger(s.height) && s.width > 0 && s.height > 0;
}

/** The input size an encoder states beyond the contract (`inputSize`, or `info.inputSize` of ONNX encoders), if any. */
function statedInputSize(encoder: VisionEncoder): ImageSize | undefined {
  const e = encoder as { inputSize?: unknown; info?: { inputSize?: unknown } };
  if (isSize(e.inputSize)) return e.inputSize;
  if (isSize(e.info?.inputSize)) return e.info.inputSize;
  return undefined;
}

/**
 * The template's end-of-turn token, found by rendering a one-turn conversation with segments: the text
 * after the answer in its trainable segment is what the model emits to end a turn (`<|im_end|>`, `</s>`, ...).
 */
export function deriveStopTokenIds(template: ChatTemplate, tokenizer: Tokenizer): number[] {
  const ids = new Set<number>();
  const eos = tokenizer.specialTokens.eos !== undefined ? tokenizer.tokenToId(tokenizer.specialTokens.eos) : undefined;
  if (eos !== undefined) ids.add(eos);
  if (template.renderSegments) {
    const marker = 'zq';
    try {
      const segs = template.renderSegments([
        { role: 'user', content: 'x' },
        { role: 'assistant', content: marker },
      ]);
      const answer = [...segs].reverse().find((s) => s.trainable && s.text.includes(marker));
      if (answer) {
        const close = answer.text.slice(answer.text.lastIndexOf(marker) + marker.length);
        const closeIds = tokenizer.encode(close, { addSpecialTokens: false }).ids;
        const last = closeIds[closeIds.length - 1];
        if (last !== undefined) ids.add(last);
      }
    } catch (err) {
      // A template that refuses this probe conversation just has no derived end-of-turn token.
      if (!isVlitError(err)) throw err;
    }
  }
  return [...ids];
}

/** Check that vision encoder, connector, language model, chat template and tokenizer fit, and compose them into a VisionLanguageModel. */
export function composeVisionLanguageModel(options: ComposeOptions): ComposedVisionLanguageModel {
  const { encoder, connector, languageModel, template, tokenizer } = options;
  const fit = checkComponentsFit(options, options.imageSize ?? statedInputSize(encoder) ?? { width: 336, height: 336 });
  const modelEos = (languageModel as { eosTokenIds?: readonly number[] }).eosTokenIds ?? [];
  const stopTokenIds = options.stopTokenIds ?? [...new Set([...deriveStopTokenIds(template, tokenizer), ...modelEos])];
  const scoreBatchSize = options.scoreBatchSize ?? 8;
  if (!Number.isInteger(scoreBatchSize) || scoreBatchSize < 1) {
    throw new InvalidArgumentError(`scoreBatchSize must be a positive integer, got ${scoreBatchSize}`, { details: { field: 'scoreBatchSize' } });
  }
  const id = options.id ?? `${encoder.id}+${connector.id}+${languageModel.id}`;
  const hidden = languageModel.hiddenSize;

  const imageTokenCount = (size: ImageSize): number => {
    const produced = visualTokenCount(encoder, connector, size);
    if (options.imageTokens !== undefined) {
      const expected = expansionAt(options.imageTokens, size);
      if (expected !== produced) {
        throw mismatch(
          { component: 'imageTokens', id: template.name, field: `expansion at ${size.width}x${size.height}`, value: expected },
          {
            component: 'connector',
            id: `${encoder.id} -> ${connector.id}`,
            field: `outputTokens(tokensPerImage(${size.width}x${size.height}))`,
            value: produced,
          },
          'each image placeholder must expand to exactly the number of visual tokens the encoder and connector produce',
        );
      }
    }
    return produced;
  };

  const encoding: PromptEncoding = {
    template,
    tokenizer,
    imageTokenId: fit.imageTokenId,
    imageTokens: (size) => imageTokenCount(size),
    ...(options.renderOptions ? { renderOptions: options.renderOptions } : {}),
  };

  async function encodeImages(images: readonly RawImage[], signal?: AbortSignal): Promise<Tensor<'float32'>[]> {
    const out: Tensor<'float32'>[] = new Array(images.length);
    // Images with the same encoder token count can share one encoder and connector call.
    const groups = new Map<number, number[]>();
    images.forEach((img, i) => {
      const n = encoder.tokensPerImage({ width: img.width, height: img.height });
      groups.set(n, [...(groups.get(n) ?? []), i]);
    });
    for (const [encoderTokens, members] of groups) {
      const features = await encoder.encode(
        members.map((i) => images[i]),
        signal ? { signal } : undefined,
      );
      const [n, t, d] = features.dims;
      if (features.dims.length !== 3 || n !== members.length || t !== encoderTokens || d !== encoder.outputDim) {
        throw new CompatibilityError(
          `encoder ${encoder.id} returned features [${features.dims.join(', ')}] where [${members.length}, ${encoderTokens}, ${encoder.outputDim}] was promised by tokensPerImage and outputDim`,
          {
            details: {
              field: 'encoder.encode',
              left: { component: 'encoder', id: encoder.id, field: 'encode().dims', value: features.dims },
              right: { component: 'encoder', id: encoder.id, field: 'tokensPerImage/outputDim', value: [members.length, encoderTokens, encoder.outputDim] },
            },
          },
        );
      }
      const projected = await connector.project(features);
      const expected = connector.outputTokens(encoderTokens);
      if (projected.dims.length !== 3 || projected.dims[0] !== n || projected.dims[1] !== expected || projected.dims[2] !== hidden) {
        throw new CompatibilityError(
          `connector ${connector.id} returned [${projected.dims.join(', ')}] where [${n}, ${expected}, ${hidden}] was promised by outputTokens and outputDim`,
          {
            details: {
              field: 'connector.project',
              left: { component: 'connector', id: connector.id, field: 'project().dims', value: projected.dims },
              right: { component: 'languageModel', id: languageModel.id, field: 'hiddenSize', value: hidden },
            },
          },
        );
      }
      const per = expected * hidden;
      members.forEach((imageIndex, k) => {
        out[imageIndex] = createTensor('float32', [expected, hidden], projected.data.slice(k * per, (k + 1) * per));
      });
    }
    return out;
  }

  async function embedSequence(
    ids: readonly number[],
    spans: EncodedSequence['imageSpans'],
    features: readonly Tensor<'float32'>[],
  ): Promise<Tensor<'float32'>> {
    const text = await languageModel.embed(int64([1, ids.length], ids));
    return spans.length ? spliceImageFeatures(text, spans, features) : text;
  }

  const sizesOf = (images: readonly RawImage[] | undefined): ImageSize[] => (images ?? []).map((i) => ({ width: i.width, height: i.height }));

  async function prepareGeneration(request: VisionLanguageRequest): Promise<EncodedSequence & { embeds: Tensor<'float32'> }> {
    const images = request.images ?? [];
    const prompt = encodeGenerationPrompt(request.messages, sizesOf(images), encoding);
    if (languageModel.maxContext !== undefined && prompt.ids.length > languageModel.maxContext) {
      throw new InvalidArgumentError(`the prompt has ${prompt.ids.length} tokens, more than the model's context of ${languageModel.maxContext}`, {
        details: { field: 'messages', left: prompt.ids.length, right: languageModel.maxContext },
      });
    }
    const features = images.length ? await encodeImages(images) : [];
    return { ...prompt, embeds: await embedSequence(prompt.ids, prompt.imageSpans, features) };
  }

  return {
    id,
    encoder,
    connector,
    languageModel,
    template,
    tokenizer,
    fit,
    stopTokenIds,
    imageTokenCount,
    encodeImages,
    prepareGeneration,

    async generate(request: VisionLanguageRequest, callOptions: GenerationOptions = {}): Promise<GenerationResult> {
      const merged: GenerationOptions = { maxNewTokens: 128, ...options.defaults, ...callOptions };
      const prepared = await prepareGeneration(request);
      const { stoppedBy: _stoppedBy, ...result } = await generate(
        languageModel,
        { inputsEmbeds: prepared.embeds, inputIds: prepared.ids },
        { ...merged, tokenizer, stopTokenIds },
      );
      return result;
    },

    async generateBatch(items: readonly BatchGenerationItem[]): Promise<PromiseSettledResult<GenerationResult>[]> {
      const settled: PromiseSettledResult<GenerationResult>[] = new Array(items.length);
      const prompts: Array<{ item: number; prompt: EncodedSequence; images: readonly RawImage[] }> = [];
      items.forEach((it, i) => {
        try {
          const images = it.request.images ?? [];
          const prompt = encodeGenerationPrompt(it.request.messages, sizesOf(images), encoding);
          if (languageModel.maxContext !== undefined && prompt.ids.length > languageModel.maxContext) {
            throw new InvalidArgumentError(`the prompt has ${prompt.ids.length} tokens, more than the model's context of ${languageModel.maxContext}`, {
              details: { field: 'messages', record: `items[${i}]`, left: prompt.ids.length, right: languageModel.maxContext },
            });
          }
          prompts.push({ item: i, prompt, images });
        } catch (reason) {
          settled[i] = { status: 'rejected', reason };
        }
      });
      // One encoder + connector pass over the images of every request; if it fails, each request's own images are encoded alone so the failure stays with its request.
      const features = new Map<number, Tensor<'float32'>[]>();
      try {
        const all = await encodeImages(prompts.flatMap((p) => [...p.images]));
        let k = 0;
        for (const p of prompts) {
          features.set(p.item, all.slice(k, k + p.images.length));
          k += p.images.length;
        }
      } catch {
        for (const p of prompts) {
          try {
            features.set(p.item, p.images.length ? await encodeImages(p.images) : []);
          } catch (reason) {
            settled[p.item] = { status: 'rejected', reason };
          }
        }
      }
      const ready: Array<{ item: number; row: BatchRow }> = [];
      for (const p of prompts) {
        if (settled[p.item]) continue;
        try {
          const embeds = await embedSequence(p.prompt.ids, p.prompt.imageSpans, features.get(p.item) ?? []);
          const merged: GenerationOptions = { maxNewTokens: 128, ...options.defaults, ...items[p.item].options };
          ready.push({ item: p.item, row: { input: { inputsEmbeds: embeds, inputIds: p.prompt.ids }, options: { ...merged, tokenizer, stopTokenIds } } });
        } catch (reason) {
          settled[p.item] = { status: 'rejected', reason };
        }
      }
      try {
        const results = await generateBatch(
          languageModel,
          ready.map((r) => r.row),
        );
        ready.forEach((r, k) => {
          const { stoppedBy: _stoppedBy, ...value } = results[k];
          settled[r.item] = { status: 'fulfilled', value };
        });
      } catch (reason) {
        for (const r of ready) settled[r.item] = { status: 'rejected', reason };
      }
      return settled;
    },

    async score(request: VisionLanguageRequest, candidates: readonly string[]): Promise<CandidateScore[]> {
      const images = request.images ?? [];
      const sizes = sizesOf(images);
      const sequences = candidates.map((c, i) => {
        const s = encodeScoringSequence(request.messages, c, sizes, encoding);
        // The candidate's tokens are one trainable segment (answer + end-of-turn marker), so they are contiguous.
        const first = s.labels.findIndex((l) => l !== SCORE_IGNORE_INDEX);
        let last = s.labels.length - 1;
        while (last >= 0 && s.labels[last] === SCORE_IGNORE_INDEX) last--;
        if (first < 1) {
          throw new InvalidArgumentError(`candidate ${i} has no tokens to score after the prompt`, { details: { field: `candidates.${i}` } });
        }
        return { prefix: s.ids.slice(0, first), spans: s.imageSpans.filter((sp) => sp.end <= first), tokens: s.ids.slice(first, last + 1) };
      });
      const features = images.length ? await encodeImages(images) : [];
      // Candidates share the prompt (the template renders history the same whatever the reply); group by it anyway.
      const groups = new Map<string, number[]>();
      sequences.forEach((s, i) => {
        const key = s.prefix.join(',');
        groups.set(key, [...(groups.get(key) ?? []), i]);
      });
      const scores: CandidateScore[] = new Array(candidates.length);
      for (const members of groups.values()) {
        const { prefix, spans } = sequences[members[0]];
        const embeds = await embedSequence(prefix, spans, features);
        const got = await scoreContinuations(
          languageModel,
          { inputsEmbeds: embeds, inputIds: prefix },
          members.map((i) => sequences[i].tokens),
          { batchSize: scoreBatchSize },
        );
        members.forEach((i, k) => (scores[i] = got[k]));
      }
      return scores;
    },
  };
}
