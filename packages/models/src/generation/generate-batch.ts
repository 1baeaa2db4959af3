/**
 * Batched autoregressive generation with the KV cache: several prompts of different lengths run as
 * one left-padded batch (attention mask over the padding, position ids counted per row), with
 * per-row stopping (stop ids, stop strings, max tokens, abort signal) and per-row seeded sampling.
 * Each row gets the tokens `generate` gives it alone.
 */
import {
  InvalidArgumentError,
  TensorShapeError,
  UnsupportedError,
  createRng,
  createTensor,
  type KvCache,
  type LanguageModel,
  type LanguageModelOutput,
  type Rng,
  type Tensor,
} from '@vlit/core';
import type { GenerateInput, GenerateOptions, GenerateResult } from './generate.js';
import { checkSamplingOptions, selectNextToken } from './sampling.js';
import { StopText } from './stop-text.js';

/** One row of a batch: a prompt and its own settings (`useCache` is ignored: batches always use the cache). */
export interface BatchRow {
  input: GenerateInput;
  options?: GenerateOptions;
}

/** Settings of the whole batch. */
export interface GenerateBatchOptions {
  /** Aborts every row (each row's own `options.signal` aborts that row only). */
  signal?: AbortSignal;
  /** Id fed in padding positions (default 0); masked out, so it never changes a result. */
  padTokenId?: number;
  /**
   * Called once per generated position with the number of rows still generating: after the prompt's
   * pass (`step` 0, however many prompt buckets it took) and after every decoding pass.
   */
  onStep?: (event: { step: number; active: number; batch: number }) => void;
}

/** The per-row state machine: the same token, stop and streaming rules as `generate`. */
class RowState {
  readonly promptIds: number[];
  readonly embeds: Tensor<'float32'> | undefined;
  readonly promptTokens: number;
  readonly maxNewTokens: number;
  readonly generated: number[] = [];
  completionTokens = 0;
  finishReason: GenerateResult['finishReason'] = 'length';
  stoppedBy: GenerateResult['stoppedBy'];
  done = false;
  private readonly stopText: StopText | undefined;
  private readonly stopIds: Set<number>;
  private readonly rng: Rng;

  constructor(
    model: LanguageModel,
    row: BatchRow,
    readonly index: number,
  ) {
    const o = row.options ?? {};
    const field = `rows[${index}]`;
    checkSamplingOptions(o);
    this.maxNewTokens = o.maxNewTokens ?? 64;
    if (!Number.isInteger(this.maxNewTokens) || this.maxNewTokens < 0) {
      throw new InvalidArgumentError(`maxNewTokens must be a non-negative integer, got ${this.maxNewTokens}`, { details: { field: `${field}.maxNewTokens` } });
    }
    const stops = (o.stop ?? []).filter((s) => s.length > 0);
    if ((stops.length || o.onToken) && !o.tokenizer) {
      throw new InvalidArgumentError('stop strings and onToken need a tokenizer (options.tokenizer)', { details: { field: `${field}.tokenizer` } });
    }
    this.promptIds = row.input?.inputIds ? [...row.input.inputIds] : [];
    this.embeds = row.input?.inputsEmbeds;
    if (!this.embeds && this.promptIds.length === 0)
      throw new InvalidArgumentError('generate needs inputIds or inputsEmbeds', { details: { field: `${field}.input` } });
    const e = this.embeds;
    if (e && (e.dims.length !== 3 || e.dims[0] !== 1 || e.dims[2] !== model.hiddenSize || e.dims[1] === 0)) {
      throw new TensorShapeError(`inputsEmbeds must be [1, seq > 0, ${model.hiddenSize}], got [${e.dims.join(', ')}]`, {
        details: { field: `${field}.inputsEmbeds` },
      });
    }
    for (const id of this.promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
        throw new InvalidArgumentError(`token id ${id} is outside the vocabulary (${model.vocabSize})`, { details: { field: `${field}.inputIds` } });
      }
    }
    const defaultStops = (model as { eosTokenIds?: readonly number[] }).eosTokenIds ?? [];
    this.stopIds = new Set(o.stopTokenIds ?? defaultStops);
    this.rng = createRng(o.seed ?? 0);
    this.promptTokens = e ? e.dims[1] : this.promptIds.length;
    this.options = o;
    this.stopText = o.tokenizer ? new StopText(o.tokenizer, stops, (t) => o.onToken?.(t)) : undefined;
    if (this.maxNewTokens === 0) this.done = true;
  }

  readonly options: GenerateOptions;

  /** Take the next token from this row's logits; returns false once the row has finished. */
  step(logits: Float32Array): boolean {
    const o = this.options;
    if (o.signal?.aborted) return this.finish('abort');
    // The history only matters to the repetition penalty; skip building it otherwise.
    const penalised = o.repetitionPenalty !== undefined && o.repetitionPenalty !== 1;
    const next = selectNextToken(logits, penalised ? this.promptIds.concat(this.generated) : [], o, this.rng);
    this.completionTokens++;
    o.onTokenId?.({ id: next, index: this.completionTokens - 1 });
    if (this.stopIds.has(next)) {
      this.stoppedBy = { tokenId: next };
      return this.finish('stop');
    }
    this.generated.push(next);
    const stop = this.stopText?.update(this.generated);
    if (stop !== undefined) {
      this.stoppedBy = { text: stop };
      return this.finish('stop');
    }
    if (this.generated.length >= this.maxNewTokens) return this.finish('length');
    return true;
  }

  finish(reason: GenerateResult['finishReason']): false {
    this.finishReason = reason;
    this.done = true;
    return false;
  }

  result(): GenerateResult {
    this.stopText?.flush();
    return {
      text: this.stopText?.text ?? '',
      tokenIds: this.generated,
      finishReason: this.finishReason,
      usage: { promptTokens: this.promptTokens, completionTokens: this.completionTokens },
      ...(this.stoppedBy ? { stoppedBy: this.stoppedBy } : {}),
    };
  }
}

function vocabRow(logits: Tensor<'float32'>, b: number, position: number): Float32Array {
  const [, seq, vocab] = logits.dims;
  const start = (b * seq + position) * vocab;
  return logits.data.subarray(start, start + vocab);
}

/**
 * Split rows into groups whose padded length (longest prompt + most new tokens) stays within the
 * model's context, so that padding never makes a batch fail where each row alone would not.
 */
function contextGroups(rows: RowState[], maxContext: number | undefined): RowState[][] {
  if (maxContext === undefined) return rows.length ? [rows] : [];
  const sorted = [...rows].sort((a, b) => a.promptTokens - b.promptTokens || a.index - b.index);
  const groups: RowState[][] = [];
  let current: RowState[] = [];
  let longest = 0;
  let most = 0;
  for (const r of sorted) {
    const l = Math.max(longest, r.promptTokens);
    const m = Math.max(most, r.maxNewTokens);
    if (current.length && l + m - 1 > maxContext) {
      groups.push(current);
      current = [];
      longest = r.promptTokens;
      most = r.maxNewTokens;
    } else {
      longest = l;
      most = m;
    }
    current.push(r);
  }
  if (current.length) groups.push(current);
  return groups;
}

/** A model that can copy chosen batch rows of a cache (OnnxLanguageModel). */
interface CacheRowSelector {
  selectCacheRows(cache: KvCache, rows: readonly number[]): KvCache;
}

function canSelectRows(model: LanguageModel): model is LanguageModel & CacheRowSelector {
  return typeof (model as Partial<CacheRowSelector>).selectCacheRows === 'function';
}

/** Rows `keep` of a [batch, width] tensor. */
function selectRows(t: Tensor<'int64'>, keep: readonly number[]): Tensor<'int64'> {
  const width = t.dims[1];
  const out = createTensor('int64', [keep.length, width]);
  keep.forEach((b, k) => out.data.set(t.data.subarray(b * width, (b + 1) * width), k * width));
  return out;
}

/** A model that can join caches of different lengths (OnnxLanguageModel). */
interface CacheStacker {
  stackCaches(caches: readonly KvCache[], options?: { maxCacheLength?: number }): KvCache;
}

function canStack(model: LanguageModel): model is LanguageModel & CacheStacker {
  return typeof (model as Partial<CacheStacker>).stackCaches === 'function';
}

/**
 * What one more prompt pass costs, in padded prompt positions: the fixed cost of a session run (about 0.1 ms
 * on a laptop CPU) against a position's share of a prompt pass of the tiny decoders (a few microseconds).
 * Larger models spend more per position, so for them this errs towards fewer passes.
 */
const PROMPT_PASS_COST_POSITIONS = 32;

/**
 * Split rows into prompt buckets of similar lengths, each prefilled in its own pass padded to its own
 * longest prompt: the consecutive runs of the rows sorted by prompt length that minimise
 * sum(PROMPT_PASS_COST_POSITIONS + rows * longest prompt) (dynamic programming over the split points).
 */
function promptBuckets(rows: readonly RowState[]): RowState[][] {
  const sorted = [...rows].sort((a, b) => a.promptTokens - b.promptTokens || a.index - b.index);
  const n = sorted.length;
  const best = new Float64Array(n + 1).fill(Number.POSITIVE_INFINITY);
  const start = new Int32Array(n + 1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    for (let i = 0; i < j; i++) {
      const cost = best[i] + PROMPT_PASS_COST_POSITIONS + (j - i) * sorted[j - 1].promptTokens;
      if (cost < best[j]) {
        best[j] = cost;
        start[j] = i;
      }
    }
  }
  const buckets: RowState[][] = [];
  for (let j = n; j > 0; j = start[j]) buckets.unshift(sorted.slice(start[j], j));
  return buckets;
}

/** The attention mask [rows, width] of left-padded prompts: 0 over each row's padding. */
function promptMask(rows: readonly RowState[], width: number): Tensor<'int64'> {
  const mask = createTensor('int64', [rows.length, width]);
  rows.forEach((r, b) => mask.data.fill(1n, b * width + width - r.promptTokens, (b + 1) * width));
  return mask;
}

/**
 * The prompt pass of some rows, left-padded to their longest prompt; logits of the last position only.
 * `maxCacheLength`: the length the cache will reach (passed to the model as its hint).
 */
async function prefill(model: LanguageModel, rows: readonly RowState[], pad: number, maxCacheLength?: number): Promise<LanguageModelOutput> {
  const n = rows.length;
  const width = Math.max(...rows.map((r) => r.promptTokens));
  const mask = promptMask(rows, width);
  const positions = createTensor('int64', [n, width]);
  rows.forEach((r, b) => {
    const offset = width - r.promptTokens;
    // Padding gets position 1, as Hugging Face derives positions from the mask (never attended to).
    for (let t = 0; t < width; t++) positions.data[b * width + t] = BigInt(t >= offset ? t - offset : 1);
  });
  if (rows.some((r) => r.embeds !== undefined)) {
    const h = model.hiddenSize;
    const all = createTensor('float32', [n, width, h]);
    for (let b = 0; b < n; b++) {
      const r = rows[b];
      const e = r.embeds ?? (await model.embed(createTensor('int64', [1, r.promptIds.length], r.promptIds.map(BigInt))));
      all.data.set(e.data.subarray(0, r.promptTokens * h), (b * width + width - r.promptTokens) * h);
    }
    return model.forward({ inputsEmbeds: all, attentionMask: mask, positionIds: positions, logitsToKeep: 1, maxCacheLength });
  }
  const ids = createTensor('int64', [n, width]);
  rows.forEach((r, b) => {
    const offset = width - r.promptTokens;
    for (let t = 0; t < width; t++) ids.data[b * width + t] = BigInt(t >= offset ? r.promptIds[t - offset] : pad);
  });
  return model.forward({ inputIds: ids, attentionMask: mask, positionIds: positions, logitsToKeep: 1, maxCacheLength });
}

async function runGroup(model: LanguageModel, group: RowState[], options: GenerateBatchOptions): Promise<void> {
  const pad = options.padTokenId ?? 0;
  // Prompts of very different lengths are prefilled in buckets (less padding), when the model can join
  // the buckets' caches; every later pass runs the whole batch, left-padded to the longest prompt.
  const buckets = group.length > 1 && canStack(model) ? promptBuckets(group) : [group];
  let rows = buckets.flat();
  let n = rows.length;
  const width = Math.max(...rows.map((r) => r.promptTokens));
  // The longest the batch's cache gets: the longest prompt, then one position per step but the last.
  const maxCacheLength = width + Math.max(...rows.map((r) => r.maxNewTokens)) - 1;
  // The attention mask [n, total]: 0 over each row's left padding; one column more per step.
  let mask = promptMask(rows, width);
  const grow = (live: readonly boolean[]): Tensor<'int64'> => {
    const total = mask.dims[1];
    const next = createTensor('int64', [n, total + 1]);
    for (let b = 0; b < n; b++) {
      next.data.set(mask.data.subarray(b * total, (b + 1) * total), b * (total + 1));
      next.data[b * (total + 1) + total] = live[b] ? 1n : 0n;
    }
    return next;
  };
  // The prompt passes' last-position logits, one row each, in `rows` order.
  const first: Float32Array[] = [];
  let cache: KvCache | undefined;
  const parts: KvCache[] = [];
  try {
    for (const bucket of buckets) {
      // An abort between prompt passes ends every row without running the rest.
      if (options.signal?.aborted) {
        for (const r of rows) r.finish('abort');
        return;
      }
      // One bucket's cache is the batch's; several are joined into a new cache, which gets the hint instead.
      const out = await prefill(model, bucket, pad, buckets.length === 1 ? maxCacheLength : undefined);
      if (out.cache) parts.push(out.cache);
      else if (buckets.length > 1) {
        throw new UnsupportedError(`language model ${model.id} returned no KV cache from a prompt pass, so its prompt buckets cannot be joined`, {
          details: { field: 'cache' },
        });
      }
      // The prompt's pass asked for its last position's logits only; a model that returned more has them last.
      const position = out.logits.dims[1] - 1;
      bucket.forEach((_, b) => first.push(vocabRow(out.logits, b, position)));
    }
    cache = buckets.length === 1 ? parts[0] : (model as LanguageModel & CacheStacker).stackCaches(parts, { maxCacheLength });
  } finally {
    // The buckets' caches were copied into the joined one (or a pass failed): they are not needed any more.
    if (buckets.length > 1) for (const part of parts) part.dispose();
  }
  try {
    let logitsOf = (b: number): Float32Array => first[b];
    for (let step = 0; ; step++) {
      for (let b = 0; b < n; b++) {
        const r = rows[b];
        if (r.done) continue;
        if (options.signal?.aborted) r.finish('abort');
        else r.step(logitsOf(b));
      }
      const active = rows.filter((r) => !r.done).length;
      options.onStep?.({ step, active, batch: n });
      if (active === 0) break;
      // Once at most half the rows still generate, drop the finished ones from the batch (their cache
      // rows and mask rows too), so they stop costing compute; results do not change.
      if (cache && active <= n / 2 && canSelectRows(model)) {
        const keep = rows.flatMap((r, b) => (r.done ? [] : [b]));
        const selected = model.selectCacheRows(cache, keep);
        cache.dispose();
        cache = selected;
        mask = selectRows(mask, keep);
        rows = keep.map((b) => rows[b]);
        n = rows.length;
      }
      // Finished rows ride along with a masked pad token; their outputs are ignored.
      const ids = createTensor('int64', [n, 1]);
      const pos = createTensor('int64', [n, 1]);
      const live = rows.map((r) => !r.done);
      rows.forEach((r, b) => {
        ids.data[b] = BigInt(live[b] ? r.generated[r.generated.length - 1] : pad);
        pos.data[b] = BigInt(live[b] ? r.promptTokens + r.generated.length - 1 : 1);
      });
      mask = grow(live);
      const next = await model.forward({ inputIds: ids, attentionMask: mask, positionIds: pos, cache });
      cache?.dispose();
      cache = next.cache;
      const logits = next.logits;
      logitsOf = (b) => vocabRow(logits, b, 0);
    }
  } finally {
    cache?.dispose();
  }
}

/**
 * Generate continuations of several prompts as one left-padded batch with a shared KV cache. Each
 * row has its own settings (max tokens, stop ids and strings, sampling and seed, streaming
 * callbacks, abort signal) and gets the same result as `generate` on that row alone; rows that have
 * finished stop producing output. Rows are grouped so that padding never exceeds the model's
 * context. Results come back in row order.
 */
export async function generateBatch(model: LanguageModel, rows: readonly BatchRow[], options: GenerateBatchOptions = {}): Promise<GenerateResult[]> {
  const states = rows.map((r, i) => new RowState(model, r, i));
  if (options.padTokenId !== undefined && !(Number.isInteger(options.padTokenId) && options.padTokenId >= 0 && options.padTokenId < model.vocabSize)) {
    throw new InvalidArgumentError(`padTokenId ${options.padTokenId} is outside the vocabulary (${model.vocabSize})`, { details: { field: 'padTokenId' } });
  }
  const live = states.filter((s) => !s.done);
  for (const group of contextGroups(live, model.maxContext)) {
    if (options.signal?.aborted) {
      for (const r of group) r.finish('abort');
      continue;
    }
    await runGroup(model, group, options);
  }
  return states.map((s) => s.result());
}
