/**
 * Autoregressive generation over any core LanguageModel, with or without the KV cache, and batched
 * log-likelihood scoring of candidate continuations.
 */
import {
  InvalidArgumentError,
  TensorShapeError,
  createRng,
  createTensor,
  type CandidateScore,
  type GenerationOptions,
  type GenerationResult,
  type KvCache,
  type LanguageModel,
  type LanguageModelOutput,
  type Tensor,
  type Tokenizer,
} from '@vlit/core';
import { checkSamplingOptions, logSoftmax, selectNextToken, type SamplingOptions } from './sampling.js';
import { StopText } from './stop-text.js';

/** A prompt: token ids, or embeddings [1, seq, hidden] (e.g. text with image features spliced in). */
export interface GenerateInput {
  /** Prompt ids. With `inputsEmbeds` too, they only feed the repetition penalty. */
  inputIds?: readonly number[];
  /** Prompt embeddings [1, seq, hiddenSize]; used instead of the ids when given. */
  inputsEmbeds?: Tensor<'float32'>;
}

/** One generated token, for streaming. */
export interface TokenEvent {
  id: number;
  /** Position among the generated tokens. */
  index: number;
}

/** Generation settings: core's GenerationOptions plus token-level controls. */
export interface GenerateOptions extends Omit<GenerationOptions, 'providerOptions'>, SamplingOptions {
  /** Stop when one of these ids is produced (default: the model's `eosTokenIds`, when it has them). */
  stopTokenIds?: readonly number[];
  /** Turns ids into text for `text`, `onToken` and `stop` strings. */
  tokenizer?: Tokenizer;
  /** Called with each generated token id (before stop handling). */
  onTokenId?: (event: TokenEvent) => void;
  /** Use the KV cache (default true); false re-runs the whole sequence every step. */
  useCache?: boolean;
}

/** What generate returns: core's GenerationResult (text is '' without a tokenizer). */
export interface GenerateResult extends GenerationResult {
  /** What ended generation with finishReason 'stop'. */
  stoppedBy?: { tokenId: number } | { text: string };
}

function row(logits: Tensor<'float32'>, batchIndex: number, position: number): Float32Array {
  const [, seq, vocab] = logits.dims;
  const start = (batchIndex * seq + position) * vocab;
  return logits.data.subarray(start, start + vocab);
}

function idsTensor(rows: readonly (readonly number[])[], width: number, pad = 0): Tensor<'int64'> {
  const t = createTensor('int64', [rows.length, width]);
  rows.forEach((r, b) => {
    for (let j = 0; j < width; j++) t.data[b * width + j] = BigInt(j < r.length ? r[j] : pad);
  });
  return t;
}

function checkIds(ids: readonly number[], vocab: number, field: string): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new InvalidArgumentError(`token id ${id} is outside the vocabulary (${vocab})`, { details: { field } });
    }
  }
}

function concatSeq(a: Tensor<'float32'>, b: Tensor<'float32'>): Tensor<'float32'> {
  const [, sa, h] = a.dims;
  const sb = b.dims[1];
  const out = createTensor('float32', [1, sa + sb, h]);
  out.data.set(a.data.subarray(0, sa * h), 0);
  out.data.set(b.data.subarray(0, sb * h), sa * h);
  return out;
}

/**
 * Generate a continuation of one prompt. Greedy unless `temperature` > 0; sampling is seeded
 * (`seed`, default 0), so the same options give the same tokens. Stop ids end generation without
 * entering the result; a stop string ends it and is cut from `text`.
 */
export async function generate(model: LanguageModel, input: GenerateInput, options: GenerateOptions = {}): Promise<GenerateResult> {
  checkSamplingOptions(options);
  const maxNewTokens = options.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new InvalidArgumentError(`maxNewTokens must be a non-negative integer, got ${maxNewTokens}`, { details: { field: 'maxNewTokens' } });
  }
  const stops = (options.stop ?? []).filter((s) => s.length > 0);
  const tokenizer = options.tokenizer;
  if ((stops.length || options.onToken) && !tokenizer) {
    throw new InvalidArgumentError('stop strings and onToken need a tokenizer (options.tokenizer)', { details: { field: 'tokenizer' } });
  }
  const promptIds = input.inputIds ? [...input.inputIds] : [];
  const embeds = input.inputsEmbeds;
  if (!embeds && promptIds.length === 0) throw new InvalidArgumentError('generate needs inputIds or inputsEmbeds', { details: { field: 'input' } });
  if (embeds && (embeds.dims.length !== 3 || embeds.dims[0] !== 1 || embeds.dims[2] !== model.hiddenSize)) {
    throw new TensorShapeError(`inputsEmbeds must be [1, seq, ${model.hiddenSize}], got [${embeds.dims.join(', ')}]`, { details: { field: 'inputsEmbeds' } });
  }
  checkIds(promptIds, model.vocabSize, 'inputIds');
  const defaultStops = (model as { eosTokenIds?: readonly number[] }).eosTokenIds ?? [];
  const stopIds = new Set(options.stopTokenIds ?? defaultStops);
  const useCache = options.useCache ?? true;
  const rng = createRng(options.seed ?? 0);
  const promptTokens = embeds ? embeds.dims[1] : promptIds.length;
  const penalised = options.repetitionPenalty !== undefined && options.repetitionPenalty !== 1;

  const generated: number[] = [];
  let completionTokens = 0;
  let finishReason: GenerationResult['finishReason'] = 'length';
  let stoppedBy: GenerateResult['stoppedBy'];
  const stopText = tokenizer ? new StopText(tokenizer, stops, (t) => options.onToken?.(t)) : undefined;
  let cache: KvCache | undefined;

  // With the cache, the prompt's pass says how long the cache will get (the last token is never fed back).
  const maxCacheLength = useCache ? promptTokens + maxNewTokens - 1 : undefined;
  const runFull = async (): Promise<Float32Array> => {
    let out: LanguageModelOutput;
    if (embeds) {
      const all = generated.length ? concatSeq(embeds, await model.embed(idsTensor([generated], generated.length))) : embeds;
      out = await model.forward({ inputsEmbeds: all, logitsToKeep: 1, maxCacheLength });
    } else {
      const all = [...promptIds, ...generated];
      out = await model.forward({ inputIds: idsTensor([all], all.length), logitsToKeep: 1, maxCacheLength });
    }
    if (useCache) {
      cache = out.cache;
    } else {
      out.cache?.dispose();
    }
    return row(out.logits, 0, out.logits.dims[1] - 1);
  };

  try {
    if (maxNewTokens === 0) return { text: '', tokenIds: [], finishReason: 'length', usage: { promptTokens, completionTokens: 0 } };
    let logits = await runFull();
    for (;;) {
      if (options.signal?.aborted) {
        finishReason = 'abort';
        break;
      }
      // The history only matters to the repetition penalty; skip building it otherwise.
      const next = selectNextToken(logits, penalised ? promptIds.concat(generated) : [], options, rng);
      completionTokens++;
      options.onTokenId?.({ id: next, index: completionTokens - 1 });
      if (stopIds.has(next)) {
        finishReason = 'stop';
        stoppedBy = { tokenId: next };
        break;
      }
      generated.push(next);
      const stop = stopText?.update(generated);
      if (stop !== undefined) {
        finishReason = 'stop';
        stoppedBy = { text: stop };
        break;
      }
      if (generated.length >= maxNewTokens) break;
      if (useCache) {
        const out = await model.forward({ inputIds: idsTensor([[next]], 1), cache });
        cache?.dispose();
        cache = out.cache;
        logits = row(out.logits, 0, 0);
      } else {
        logits = await runFull();
      }
    }
  } finally {
    cache?.dispose();
  }
  stopText?.flush();
  return { text: stopText?.text ?? '', tokenIds: generated, finishReason, usage: { promptTokens, completionTokens }, ...(stoppedBy ? { stoppedBy } : {}) };
}

/** Options of scoreContinuations. */
export interface ScoreOptions {
  /** Candidates per forward pass (default 8). */
  batchSize?: number;
  /**
   * Run the prompt once and share its KV cache across the candidates (default true when the model
   * can repeat a cache, as OnnxLanguageModel can); false runs prompt + candidate for every candidate.
   */
  reusePrompt?: boolean;
}

/** A model that can repeat a cache along the batch (OnnxLanguageModel). */
interface CacheRepeater {
  repeatCache(cache: KvCache, times: number): KvCache;
}

function canRepeat(model: LanguageModel): model is LanguageModel & CacheRepeater {
  return typeof (model as Partial<CacheRepeater>).repeatCache === 'function';
}

/**
 * Log-likelihood of each candidate continuation of one prompt: the sum over the candidate's tokens
 * of log p(token | prompt, earlier candidate tokens), and the token count (for length
 * normalisation). Candidates run in right-padded batches with an attention mask; the prompt must be
 * non-empty.
 */
export async function scoreContinuations(
  model: LanguageModel,
  prompt: GenerateInput,
  candidates: readonly (readonly number[])[],
  options: ScoreOptions = {},
): Promise<CandidateScore[]> {
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new InvalidArgumentError('batchSize must be a positive integer', { details: { field: 'batchSize' } });
  const embeds = prompt.inputsEmbeds;
  const promptIds = prompt.inputIds ?? [];
  const p = embeds ? embeds.dims[1] : promptIds.length;
  if (p === 0) throw new InvalidArgumentError('scoring needs a non-empty prompt to condition the first candidate token', { details: { field: 'prompt' } });
  if (embeds && (embeds.dims.length !== 3 || embeds.dims[0] !== 1 || embeds.dims[2] !== model.hiddenSize)) {
    throw new TensorShapeError(`inputsEmbeds must be [1, seq, ${model.hiddenSize}], got [${embeds.dims.join(', ')}]`, { details: { field: 'inputsEmbeds' } });
  }
  if (!embeds) checkIds(promptIds, model.vocabSize, 'inputIds');
  candidates.forEach((c, i) => checkIds(c, model.vocabSize, `candidates[${i}]`));
  const results: CandidateScore[] = candidates.map((c) => ({ logLikelihood: 0, tokens: c.length }));
  const work = candidates.map((c, i) => i).filter((i) => candidates[i].length > 0);
  if (work.length === 0) return results;
  const reuse = (options.reusePrompt ?? true) && canRepeat(model);
  let promptCache: KvCache | undefined;
  let firstRow: Float64Array | undefined;
  if (reuse) {
    const out = embeds
      ? await model.forward({ inputsEmbeds: embeds, logitsToKeep: 1 })
      : await model.forward({ inputIds: idsTensor([promptIds], p), logitsToKeep: 1 });
    promptCache = out.cache;
    firstRow = logSoftmax(row(out.logits, 0, out.logits.dims[1] - 1));
  }
  try {
    for (let start = 0; start < work.length; start += batchSize) {
      const chunk = work.slice(start, start + batchSize).map((i) => candidates[i]);
      const width = Math.max(...chunk.map((c) => c.length));
      const n = chunk.length;
      if (reuse && promptCache && firstRow) {
        // Candidates continue the shared prompt: mask [n, p + width], positions p.. .
        const mask = createTensor('int64', [n, p + width]);
        const positions = createTensor('int64', [n, width]);
        chunk.forEach((c, b) => {
          for (let t = 0; t < p + width; t++) mask.data[b * (p + width) + t] = t < p + c.length ? 1n : 0n;
          for (let t = 0; t < width; t++) positions.data[b * width + t] = BigInt(p + t);
        });
        const cache = (model as LanguageModel & CacheRepeater).repeatCache(promptCache, n);
        const out = await model.forward({ inputIds: idsTensor(chunk, width), attentionMask: mask, positionIds: positions, cache });
        cache.dispose();
        out.cache?.dispose();
        chunk.forEach((c, b) => {
          let sum = firstRow![c[0]];
          for (let j = 1; j < c.length; j++) sum += logSoftmax(row(out.logits, b, j - 1))[c[j]];
          results[work[start + b]].logLikelihood = sum;
        });
        continue;
      }
      const total = p + width;
      const mask = createTensor('int64', [n, total]);
      const positions = createTensor('int64', [n, total]);
      chunk.forEach((c, b) => {
        for (let t = 0; t < total; t++) {
          mask.data[b * total + t] = t < p + c.length ? 1n : 0n;
          positions.data[b * total + t] = BigInt(t);
        }
      });
      // Logits from the prompt's last position on: the ones that score the candidates' tokens.
      const logitsToKeep = width + 1;
      let out: LanguageModelOutput;
      if (embeds) {
        const h = model.hiddenSize;
        const cand = await model.embed(idsTensor(chunk, width));
        const all = createTensor('float32', [n, total, h]);
        for (let b = 0; b < n; b++) {
          all.data.set(embeds.data.subarray(0, p * h), b * total * h);
          all.data.set(cand.data.subarray(b * width * h, (b + 1) * width * h), (b * total + p) * h);
        }
        out = await model.forward({ inputsEmbeds: all, attentionMask: mask, positionIds: positions, logitsToKeep });
      } else {
        out = await model.forward({
          inputIds: idsTensor(
            chunk.map((c) => [...promptIds, ...c]),
            total,
          ),
          attentionMask: mask,
          positionIds: positions,
          logitsToKeep,
        });
      }
      out.cache?.dispose();
      const first = out.logits.dims[1] - logitsToKeep;
      chunk.forEach((c, b) => {
        let sum = 0;
        for (let j = 0; j < c.length; j++) sum += logSoftmax(row(out.logits, b, first + j))[c[j]];
        results[work[start + b]].logLikelihood = sum;
      });
    }
  } finally {
    promptCache?.dispose();
  }
  return results;
}
