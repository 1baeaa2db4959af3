/**
 * A decoder-only language model in the layout Hugging Face Optimum exports, run on an injected
 * InferenceBackend: `config.json`, a decoder ONNX model (`decoder_model_merged.onnx`, `model.onnx`
 * or `decoder_with_past_model.onnx`) taking `input_ids` or `inputs_embeds`, `attention_mask`,
 * `position_ids` and `past_key_values.{i}.key/value`, returning `logits` and `present.{i}.key/value`,
 * and optionally `embed_tokens.onnx` (`input_ids` -> `inputs_embeds`).
 */
import {
  FormatError,
  InvalidArgumentError,
  NotFoundError,
  TensorShapeError,
  UnsupportedError,
  createTensor,
  type DType,
  type InferenceBackend,
  type InferenceSession,
  type KvCache,
  type LanguageModel,
  type LanguageModelInput,
  type LanguageModelOutput,
  type SessionOptions,
  type Tensor,
} from '@vlit/core';
import { OPTIMUM_FILES, OPTIMUM_NAMES as N, SLOT_CACHE_NAMES } from './optimum-layout.js';
import type { ModelFileSource } from './sources.js';

/** What the loader reads from config.json (and generation_config.json). */
export interface DecoderFacts {
  hiddenSize: number;
  vocabSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings?: number;
  /** End-of-sequence ids (generation stops on any of them by default). */
  eosTokenIds: number[];
  bosTokenId?: number;
  modelType?: string;
}

/** A LanguageModel over ONNX sessions in the Optimum layout. */
export interface OnnxLanguageModel extends LanguageModel {
  readonly facts: DecoderFacts;
  /** The parsed config.json. */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  /** End-of-sequence ids from the configs. */
  readonly eosTokenIds: readonly number[];
  /** Whether the decoder takes `inputs_embeds` (else only `input_ids`). */
  readonly acceptsEmbeddings: boolean;
  /** The decoder file that was loaded. */
  readonly decoderFile: string;
  /** A cache holding each batch row of `cache` `times` times in a row (b0, b0, ..., b1, b1, ...), to share a prompt across candidates. */
  repeatCache(cache: KvCache, times: number): KvCache;
  /** A new cache holding the given batch rows of `cache`, in that order (rows may repeat); `cache` stays valid. */
  selectCacheRows(cache: KvCache, rows: readonly number[]): KvCache;
  /**
   * One cache holding the rows of every given cache, in order, each right-aligned to the longest one's
   * length: a shorter cache's rows get zero keys and values in front (left padding, which the caller's
   * attention mask must cover). The given caches stay valid. `generateBatch` prefills prompts of very
   * different lengths in separate passes and joins their caches with this. `maxCacheLength` is the
   * length the joined cache is expected to reach (the hint of `LanguageModelInput.maxCacheLength`).
   */
  stackCaches(caches: readonly KvCache[], options?: { maxCacheLength?: number }): KvCache;
  /** Release the sessions. */
  dispose(): Promise<void>;
}

/** Options of loadOptimumDecoder. */
export interface LoadOptimumDecoderOptions {
  backend: InferenceBackend;
  session?: SessionOptions;
  /** Model id (default: the source name). */
  id?: string;
  /** Decoder file name (default: the first of decoder_model_merged.onnx, model.onnx, decoder_with_past_model.onnx present). */
  decoderFile?: string;
  /** Embedding model file name (default embed_tokens.onnx; absent is fine when the decoder takes input_ids). */
  embedFile?: string;
}

const CACHE_OWNER = Symbol('vlit.optimum-cache');

/** The KV cache: the present tensors of the last step, fed back as past_key_values. */
class OptimumKvCache implements KvCache {
  readonly [CACHE_OWNER]: object;
  private entries: Record<string, Tensor> | undefined;
  constructor(
    owner: object,
    readonly length: number,
    readonly batch: number,
    entries: Record<string, Tensor>,
  ) {
    this[CACHE_OWNER] = owner;
    this.entries = entries;
  }
  get tensors(): Record<string, Tensor> {
    if (!this.entries) throw new InvalidArgumentError('this KV cache was disposed', { details: { field: 'cache' } });
    return this.entries;
  }
  dispose(): void {
    this.entries = undefined;
  }
}

/**
 * Slot buffers of the in-place cache protocol (LlamaGraphOptions.cache 'slots'): per layer a key and a value
 * buffer [batch, kvHeads, capacity, headDim]. Caches are views of a store up to their length; a step
 * appends in place when its cache ends where the store's writes end, so an older cache stays valid (its
 * slots are never rewritten) and a second step from the same cache copies instead of overwriting.
 */
interface SlotStore {
  readonly batch: number;
  readonly capacity: number;
  /** The length the cache was expected to reach (`maxCacheLength` of the pass that made the store), for growing it. */
  readonly hint?: number;
  /** Slots written or reserved by some step, from 0. */
  end: number;
  readonly buffers: Float32Array[];
}

/** A cache of the in-place protocol: the first `length` slots of a store. */
class SlotKvCache implements KvCache {
  readonly [CACHE_OWNER]: object;
  private current: SlotStore | undefined;
  constructor(
    owner: object,
    readonly length: number,
    store: SlotStore,
  ) {
    this[CACHE_OWNER] = owner;
    this.current = store;
  }
  get batch(): number {
    return this.store.batch;
  }
  get store(): SlotStore {
    if (!this.current) throw new InvalidArgumentError('this KV cache was disposed', { details: { field: 'cache' } });
    return this.current;
  }
  dispose(): void {
    this.current = undefined;
  }
}

/**
 * Capacity of a new slot store. Without a hint: a multiple of 64, at least twice the old one, so growing is
 * amortised. With the caller's expected length (`hint`, an upper bound: generation may stop early): no more
 * than the hint rounded up to 16, and a fresh store may take up to 64 slots more than doubling would, so
 * a short generation never grows its store while an early stop leaves at most those 64 unused. Never
 * past the model's context when the needed length fits it.
 */
function slotCapacity(needed: number, previous: number, limit: number | undefined, hint?: number): number {
  let capacity = Math.ceil(Math.max(needed, 2 * previous, 64) / 64) * 64;
  if (hint !== undefined && hint >= needed) capacity = Math.min(Math.ceil(hint / 16) * 16, previous === 0 ? capacity + 64 : capacity);
  return limit !== undefined && limit >= needed ? Math.min(capacity, limit) : capacity;
}

/** The `maxCacheLength` hint, checked: a positive integer, or absent. */
function cacheHint(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`maxCacheLength must be a positive integer, got ${value}`, { details: { field: 'maxCacheLength' } });
  }
  return value;
}

function num(json: Record<string, unknown>, key: string): number | undefined {
  const v = json[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function ids(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/** Read the facts a decoder loader needs from a Hugging Face config.json (text_config of VLM configs too). */
export function decoderFactsFromConfig(
  json: Record<string, unknown>,
  generation: Record<string, unknown> = {},
  file: string = OPTIMUM_FILES.config,
): DecoderFacts {
  const c = (
    typeof json.text_config === 'object' && json.text_config !== null ? { ...json, ...(json.text_config as Record<string, unknown>) } : json
  ) as Record<string, unknown>;
  const need = (key: string): number => {
    const v = num(c, key);
    if (v === undefined || !Number.isInteger(v) || v <= 0) {
      throw new FormatError(`config.json needs a positive integer '${key}'`, { details: { file, field: key } });
    }
    return v;
  };
  const hiddenSize = need('hidden_size');
  const numAttentionHeads = need('num_attention_heads');
  const eos = ids(generation.eos_token_id).length ? ids(generation.eos_token_id) : ids(c.eos_token_id);
  return {
    hiddenSize,
    vocabSize: need('vocab_size'),
    numHiddenLayers: need('num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads: num(c, 'num_key_value_heads') ?? numAttentionHeads,
    headDim: num(c, 'head_dim') ?? hiddenSize / numAttentionHeads,
    maxPositionEmbeddings: num(c, 'max_position_embeddings'),
    eosTokenIds: eos,
    bosTokenId: num(generation, 'bos_token_id') ?? num(c, 'bos_token_id'),
    modelType: typeof c.model_type === 'string' ? c.model_type : undefined,
  };
}

async function readJson(source: ModelFileSource, file: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  const bytes = await source.read(file);
  if (!bytes) {
    if (required) throw new NotFoundError(`${source.name} has no ${file}`, { details: { file } });
    return undefined;
  }
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (cause) {
    throw new FormatError(`${file} is not a JSON object`, { cause, details: { file: `${source.name}/${file}` } });
  }
}

/** The slot buffer of a pass with nothing cached (zero slots; never written). */
const NO_SLOTS = new Float32Array(0);

/**
 * The last `keep` positions of logits [batch, seq, vocab]; the tensor itself when it has no more (a graph that
 * kept them, or an export that returns only its last position, as before logitsToKeep existed).
 */
function lastPositions(logits: Tensor, keep: number): Tensor {
  const [batch, seq, vocab] = logits.dims;
  if (seq <= keep) return logits;
  // Any dtype (an export may return float16 logits): the rows are copied as the tensor stores them.
  const out = createTensor(logits.dtype, [batch, keep, vocab]);
  const from = logits.data as Float32Array;
  const to = out.data as Float32Array;
  for (let b = 0; b < batch; b++) to.set(from.subarray((b * seq + seq - keep) * vocab, (b + 1) * seq * vocab), b * keep * vocab);
  return out;
}

/** Positions from the attention mask as Hugging Face derives them: cumsum(mask) - 1, 1 on padding; the last `seq` columns. */
export function positionsFromMask(mask: Tensor<'int64'>, seq: number): Tensor<'int64'> {
  const [batch, total] = mask.dims;
  const out = createTensor('int64', [batch, seq]);
  for (let b = 0; b < batch; b++) {
    let count = 0;
    for (let t = 0; t < total; t++) {
      const m = mask.data[b * total + t] !== 0n;
      if (m) count++;
      if (t >= total - seq) out.data[b * seq + t - (total - seq)] = BigInt(m ? count - 1 : 1);
    }
  }
  return out;
}

class OptimumDecoder implements OnnxLanguageModel {
  readonly id: string;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly maxContext?: number;
  readonly eosTokenIds: readonly number[];
  readonly acceptsEmbeddings: boolean;
  private readonly acceptsIds: boolean;
  private readonly pastDType: DType;
  private readonly kvHeads: number;
  private readonly headDim: number;
  private readonly owner = {};
  /** The decoder speaks the in-place cache protocol (returns appended_key_values.*, not present.*). */
  private readonly slots: boolean;
  /** The decoder takes logits_to_keep and computes only those positions' logits. */
  private readonly keepsLogits: boolean;

  constructor(
    readonly facts: DecoderFacts,
    readonly hfConfig: Readonly<Record<string, unknown>>,
    readonly decoderFile: string,
    private readonly decoder: InferenceSession,
    private readonly embedder: InferenceSession | undefined,
    id: string,
  ) {
    this.id = id;
    this.hiddenSize = facts.hiddenSize;
    this.vocabSize = facts.vocabSize;
    this.maxContext = facts.maxPositionEmbeddings;
    this.eosTokenIds = Object.freeze([...facts.eosTokenIds]);
    const inputs = new Set(decoder.inputNames);
    this.acceptsEmbeddings = inputs.has(N.inputsEmbeds);
    this.acceptsIds = inputs.has(N.inputIds);
    if (!this.acceptsEmbeddings && !this.acceptsIds) {
      throw new FormatError(`decoder ${decoderFile} takes neither ${N.inputIds} nor ${N.inputsEmbeds}`, {
        details: { file: decoderFile, inputs: decoder.inputNames },
      });
    }
    for (let i = 0; i < facts.numHiddenLayers; i++) {
      for (const name of [N.pastKey(i), N.pastValue(i)]) {
        if (!inputs.has(name)) {
          throw new FormatError(
            `decoder ${decoderFile} lacks input ${name} (config.json says ${facts.numHiddenLayers} layers); export it with past key values`,
            {
              details: { file: decoderFile, field: name },
            },
          );
        }
      }
    }
    this.slots = decoder.outputNames.includes(SLOT_CACHE_NAMES.appendedKey(0));
    this.keepsLogits = this.slots && inputs.has(SLOT_CACHE_NAMES.logitsToKeep);
    if (this.slots && !(inputs.has(N.attentionMask) && inputs.has(N.positionIds))) {
      throw new FormatError(`decoder ${decoderFile} returns ${SLOT_CACHE_NAMES.appendedKey(0)} but lacks ${N.attentionMask} or ${N.positionIds}`, {
        details: { file: decoderFile, inputs: decoder.inputNames },
      });
    }
    const meta = decoder.inputMetadata.find((m) => m.name === N.pastKey(0));
    this.pastDType = (meta?.dtype === 'float16' ? 'float16' : 'float32') as DType;
    // Trust the model's own fixed dims over config.json where it declares them.
    const dims = meta?.dims;
    this.kvHeads = typeof dims?.[1] === 'number' ? dims[1] : facts.numKeyValueHeads;
    this.headDim = typeof dims?.[3] === 'number' ? dims[3] : facts.headDim;
  }

  async embed(inputIds: Tensor<'int64'>): Promise<Tensor<'float32'>> {
    if (!this.embedder) {
      throw new UnsupportedError(`language model ${this.id} has no ${OPTIMUM_FILES.embedTokens}; its decoder embeds token ids itself`, {
        details: { field: 'embed' },
      });
    }
    if (inputIds.dtype !== 'int64' || inputIds.dims.length !== 2) {
      throw new TensorShapeError(`embed takes int64 ids [batch, seq], got ${inputIds.dtype} [${inputIds.dims.join(', ')}]`, { details: { field: 'inputIds' } });
    }
    for (const v of inputIds.data) {
      if (v < 0n || v >= BigInt(this.vocabSize)) {
        throw new InvalidArgumentError(`token id ${v} is outside the vocabulary (${this.vocabSize})`, { details: { field: 'inputIds' } });
      }
    }
    const out = await this.embedder.run({ [N.inputIds]: inputIds }, { outputs: [this.embedder.outputNames[0]] });
    return out[this.embedder.outputNames[0]] as Tensor<'float32'>;
  }

  private ownCache(cache: KvCache): OptimumKvCache | SlotKvCache {
    if (!(cache instanceof OptimumKvCache || cache instanceof SlotKvCache) || cache[CACHE_OWNER] !== this.owner) {
      throw new InvalidArgumentError(`the KV cache was not made by language model ${this.id}`, { details: { field: 'cache' } });
    }
    return cache;
  }

  async forward(input: LanguageModelInput): Promise<LanguageModelOutput> {
    if (!input || (input.inputIds === undefined) === (input.inputsEmbeds === undefined)) {
      throw new InvalidArgumentError('forward takes exactly one of inputIds and inputsEmbeds', { details: { field: 'input' } });
    }
    const cache = input.cache ? this.ownCache(input.cache) : undefined;
    const feeds: Record<string, Tensor> = {};
    let batch: number;
    let seq: number;
    if (input.inputsEmbeds) {
      const e = input.inputsEmbeds;
      if (e.dtype !== 'float32' || e.dims.length !== 3 || e.dims[2] !== this.hiddenSize) {
        throw new TensorShapeError(`inputsEmbeds must be float32 [batch, seq, ${this.hiddenSize}], got ${e.dtype} [${e.dims.join(', ')}]`, {
          details: { field: 'inputsEmbeds', left: `inputsEmbeds [${e.dims.join(', ')}]`, right: `${this.id} hiddenSize ${this.hiddenSize}` },
        });
      }
      if (!this.acceptsEmbeddings) {
        throw new UnsupportedError(`the decoder of ${this.id} takes only ${N.inputIds}; export it with ${N.inputsEmbeds}`, {
          details: { field: 'inputsEmbeds' },
        });
      }
      [batch, seq] = e.dims;
      feeds[N.inputsEmbeds] = e;
    } else {
      const ids = input.inputIds as Tensor<'int64'>;
      if (ids.dtype !== 'int64' || ids.dims.length !== 2) {
        throw new TensorShapeError(`inputIds must be int64 [batch, seq], got ${ids.dtype} [${ids.dims.join(', ')}]`, { details: { field: 'inputIds' } });
      }
      [batch, seq] = ids.dims;
      if (this.acceptsIds) feeds[N.inputIds] = ids;
      else feeds[N.inputsEmbeds] = await this.embed(ids);
    }
    if (seq === 0) throw new InvalidArgumentError('forward needs at least one new token', { details: { field: 'input' } });
    const keep = input.logitsToKeep ?? seq;
    if (!Number.isInteger(keep) || keep < 1 || keep > seq) {
      throw new InvalidArgumentError(`logitsToKeep must be an integer from 1 to ${seq} (the new tokens), got ${input.logitsToKeep}`, {
        details: { field: 'logitsToKeep' },
      });
    }
    const pastLength = cache?.length ?? 0;
    if (cache && cache.batch !== batch) {
      throw new TensorShapeError(`the KV cache holds batch ${cache.batch}, the input has ${batch}`, { details: { field: 'cache' } });
    }
    const total = pastLength + seq;
    if (this.maxContext !== undefined && total > this.maxContext) {
      throw new InvalidArgumentError(`${total} tokens exceed the context of ${this.id} (${this.maxContext})`, {
        details: { field: 'input', maxContext: this.maxContext },
      });
    }
    let mask = input.attentionMask;
    if (mask) {
      if (mask.dtype !== 'int64' || mask.dims.length !== 2 || mask.dims[0] !== batch || mask.dims[1] !== total) {
        throw new TensorShapeError(
          `attentionMask must be int64 [${batch}, ${total}] (past ${pastLength} + ${seq} new), got ${mask.dtype} [${mask.dims.join(', ')}]`,
          {
            details: { field: 'attentionMask' },
          },
        );
      }
    } else {
      mask = createTensor('int64', [batch, total], new BigInt64Array(batch * total).fill(1n));
    }
    const positions = input.positionIds ?? positionsFromMask(mask, seq);
    if (positions.dims.length !== 2 || positions.dims[0] !== batch || positions.dims[1] !== seq) {
      throw new TensorShapeError(`positionIds must be [${batch}, ${seq}], got [${positions.dims.join(', ')}]`, { details: { field: 'positionIds' } });
    }
    const hint = cacheHint(input.maxCacheLength);
    if (this.slots) return this.forwardSlots(feeds, mask, positions, cache as SlotKvCache | undefined, batch, seq, keep, hint);
    const inputs = new Set(this.decoder.inputNames);
    if (inputs.has(N.attentionMask)) feeds[N.attentionMask] = mask;
    if (inputs.has(N.positionIds)) feeds[N.positionIds] = positions;
    if (inputs.has(N.useCacheBranch)) feeds[N.useCacheBranch] = createTensor('bool', [1], new Uint8Array([pastLength > 0 ? 1 : 0]));
    const empty = createTensor(this.pastDType, [batch, this.kvHeads, 0, this.headDim]);
    for (let i = 0; i < this.facts.numHiddenLayers; i++) {
      feeds[N.pastKey(i)] = cache ? (cache as OptimumKvCache).tensors[N.presentKey(i)] : empty;
      feeds[N.pastValue(i)] = cache ? (cache as OptimumKvCache).tensors[N.presentValue(i)] : empty;
    }
    const out = await this.decoder.run(feeds);
    const logits = out[N.logits];
    if (!logits) throw new FormatError(`decoder ${this.decoderFile} returned no ${N.logits}`, { details: { file: this.decoderFile } });
    const present: Record<string, Tensor> = {};
    for (let i = 0; i < this.facts.numHiddenLayers; i++) {
      for (const name of [N.presentKey(i), N.presentValue(i)]) {
        const t = out[name];
        if (!t) throw new FormatError(`decoder ${this.decoderFile} returned no ${name}`, { details: { file: this.decoderFile, field: name } });
        present[name] = t;
      }
    }
    return { logits: lastPositions(logits, keep) as Tensor<'float32'>, cache: new OptimumKvCache(this.owner, total, batch, present) };
  }

  /**
   * One step of the in-place protocol: the slots go in as they are (no copy), only this step's keys and
   * values come back, and they are written into the slots after the cache's length.
   */
  private async forwardSlots(
    feeds: Record<string, Tensor>,
    mask: Tensor<'int64'>,
    positions: Tensor<'int64'>,
    cache: SlotKvCache | undefined,
    batch: number,
    seq: number,
    keep: number,
    hint: number | undefined,
  ): Promise<LanguageModelOutput> {
    const past = cache?.length ?? 0;
    const total = past + seq;
    const rows = batch * this.kvHeads;
    let store = cache?.store;
    if (!store || store.end !== past || total > store.capacity) {
      // A fresh store, or a copy: the cache's store is full (grow it), or another step already wrote after
      // this cache (a branch: the same capacity when it fits).
      // A decoding step brings no hint of its own: the store keeps the one its prompt's pass gave.
      const expected = hint ?? store?.hint;
      const capacity = store && total <= store.capacity ? store.capacity : slotCapacity(total, store?.capacity ?? 0, this.maxContext, expected);
      const fresh: SlotStore = { batch, capacity, hint: expected, end: past, buffers: [] };
      for (let i = 0; i < 2 * this.facts.numHiddenLayers; i++) {
        const buffer = new Float32Array(rows * capacity * this.headDim);
        const from = store?.buffers[i];
        if (from && store) {
          for (let r = 0; r < rows; r++) {
            buffer.set(from.subarray(r * store.capacity * this.headDim, (r * store.capacity + past) * this.headDim), r * capacity * this.headDim);
          }
        }
        fresh.buffers.push(buffer);
      }
      store = fresh;
    }
    // Reserve the slots before awaiting, so a concurrent step from the same cache copies instead.
    store.end = total;
    const { capacity, buffers } = store;
    // With nothing cached (a prompt's pass) the graph gets no slots at all: every slot would be masked, and
    // attending over them would cost as much as the prompt itself (softmax and products over capacity + seq keys).
    const fed = past === 0 ? 0 : capacity;
    // The mask as the graph takes it: the slots' columns (the cache's mask, 0 for unused slots), then the new tokens'.
    const slotMask = createTensor('int64', [batch, fed + seq]);
    for (let b = 0; b < batch; b++) {
      const row = mask.data.subarray(b * total, (b + 1) * total);
      slotMask.data.set(row.subarray(0, past), b * (fed + seq));
      slotMask.data.set(row.subarray(past), b * (fed + seq) + fed);
    }
    feeds[N.attentionMask] = slotMask;
    feeds[N.positionIds] = positions;
    if (this.keepsLogits) feeds[SLOT_CACHE_NAMES.logitsToKeep] = createTensor('int64', [1], [BigInt(keep)]);
    const dims = [batch, this.kvHeads, fed, this.headDim];
    for (let i = 0; i < this.facts.numHiddenLayers; i++) {
      feeds[N.pastKey(i)] = createTensor('float32', dims, fed ? buffers[2 * i] : NO_SLOTS);
      feeds[N.pastValue(i)] = createTensor('float32', dims, fed ? buffers[2 * i + 1] : NO_SLOTS);
    }
    const out = await this.decoder.run(feeds);
    const logits = out[N.logits];
    if (!logits) throw new FormatError(`decoder ${this.decoderFile} returned no ${N.logits}`, { details: { file: this.decoderFile } });
    const width = seq * this.headDim;
    for (let i = 0; i < this.facts.numHiddenLayers; i++) {
      for (const [j, name] of [SLOT_CACHE_NAMES.appendedKey(i), SLOT_CACHE_NAMES.appendedValue(i)].entries()) {
        const t = out[name];
        if (!t || t.data.length !== rows * width) {
          throw new FormatError(`decoder ${this.decoderFile} returned no ${name} [${batch}, ${this.kvHeads}, ${seq}, ${this.headDim}]`, {
            details: { file: this.decoderFile, field: name },
          });
        }
        const data = t.data as Float32Array;
        const target = buffers[2 * i + j];
        for (let r = 0; r < rows; r++) target.set(data.subarray(r * width, (r + 1) * width), (r * capacity + past) * this.headDim);
      }
    }
    return { logits: lastPositions(logits, keep) as Tensor<'float32'>, cache: new SlotKvCache(this.owner, total, store) };
  }

  repeatCache(cache: KvCache, times: number): KvCache {
    const own = this.ownCache(cache);
    if (!Number.isInteger(times) || times <= 0) throw new InvalidArgumentError('times must be a positive integer', { details: { field: 'times' } });
    return this.selectCacheRows(
      own,
      Array.from({ length: own.batch * times }, (_, k) => Math.floor(k / times)),
    );
  }

  selectCacheRows(cache: KvCache, rows: readonly number[]): KvCache {
    const own = this.ownCache(cache);
    const bad = rows.findIndex((r) => !Number.isInteger(r) || r < 0 || r >= own.batch);
    if (rows.length === 0 || bad >= 0) {
      throw new InvalidArgumentError(
        rows.length === 0 ? 'selectCacheRows needs at least one row' : `row ${rows[bad]} is not a row of a cache of batch ${own.batch}`,
        { details: { field: 'rows' } },
      );
    }
    // Copies whole rows: for slots the capacity is kept, so the new cache appends in place as the old one did.
    const pick = <A extends Float32Array | Uint16Array>(from: A, per: number): A => {
      // The same array type as the source (a float16 cache stays float16).
      const out = new (from.constructor as new (n: number) => A)(per * rows.length);
      rows.forEach((r, k) => out.set(from.subarray(r * per, (r + 1) * per), k * per));
      return out;
    };
    if (own instanceof SlotKvCache) {
      const { store } = own;
      const per = this.kvHeads * store.capacity * this.headDim;
      const selected: SlotStore = {
        batch: rows.length,
        capacity: store.capacity,
        hint: store.hint,
        end: own.length,
        buffers: store.buffers.map((b) => pick(b, per)),
      };
      return new SlotKvCache(this.owner, own.length, selected);
    }
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(own.tensors)) {
      const [b, ...rest] = t.dims;
      out[name] = createTensor(t.dtype, [rows.length, ...rest], pick(t.data as Float32Array | Uint16Array, t.data.length / b) as never);
    }
    return new OptimumKvCache(this.owner, own.length, rows.length, out);
  }

  stackCaches(caches: readonly KvCache[], options: { maxCacheLength?: number } = {}): KvCache {
    const hint = cacheHint(options.maxCacheLength);
    if (!Array.isArray(caches) || caches.length === 0) {
      throw new InvalidArgumentError('stackCaches needs at least one cache', { details: { field: 'caches' } });
    }
    const own = caches.map((c) => this.ownCache(c));
    const length = Math.max(...own.map((c) => c.length));
    const batch = own.reduce((n, c) => n + c.batch, 0);
    /**
     * Copies `runs` runs (one per row and kv head) of `width` positions of `dim` values from `from`, whose
     * runs are `fromStride` positions apart, to the right end of runs `first`.. of `to` (`toStride` apart).
     */
    const place = (
      to: Float32Array | Uint16Array,
      toStride: number,
      first: number,
      from: Float32Array | Uint16Array,
      fromStride: number,
      runs: number,
      width: number,
      dim: number,
    ): void => {
      for (let r = 0; r < runs; r++)
        to.set(from.subarray(r * fromStride * dim, (r * fromStride + width) * dim), ((first + r) * toStride + length - width) * dim);
    };
    // A model's caches all follow its one protocol (ownCache checked they are this model's).
    if (this.slots) {
      const capacity = slotCapacity(length, 0, this.maxContext, hint);
      const buffers = Array.from({ length: 2 * this.facts.numHiddenLayers }, (_, i) => {
        const out = new Float32Array(batch * this.kvHeads * capacity * this.headDim);
        let first = 0;
        for (const c of own as SlotKvCache[]) {
          const { store } = c;
          place(out, capacity, first, store.buffers[i], store.capacity, c.batch * this.kvHeads, c.length, this.headDim);
          first += c.batch * this.kvHeads;
        }
        return out;
      });
      return new SlotKvCache(this.owner, length, { batch, capacity, hint, end: length, buffers });
    }
    const tensors: Record<string, Tensor> = {};
    for (const name of Object.keys((own[0] as OptimumKvCache).tensors)) {
      const parts = (own as OptimumKvCache[]).map((c) => c.tensors[name]);
      const [, heads, , dim] = parts[0].dims;
      // The same array type as the parts (a float16 cache stays float16; zero bits are +0 in both).
      const from0 = parts[0].data as Float32Array | Uint16Array;
      const out = new (from0.constructor as new (n: number) => Float32Array | Uint16Array)(batch * heads * length * dim);
      let first = 0;
      parts.forEach((t, k) => {
        if (t.dims[1] !== heads || t.dims[3] !== dim || t.dims[2] !== own[k].length) {
          throw new TensorShapeError(
            `stackCaches: ${name} of cache ${k} is [${t.dims.join(', ')}], expected [${t.dims[0]}, ${heads}, ${own[k].length}, ${dim}]`,
            {
              details: { field: 'caches' },
            },
          );
        }
        place(out, length, first, t.data as Float32Array | Uint16Array, own[k].length, t.dims[0] * heads, own[k].length, dim);
        first += t.dims[0] * heads;
      });
      tensors[name] = createTensor(parts[0].dtype, [batch, heads, length, dim], out as never);
    }
    return new OptimumKvCache(this.owner, length, batch, tensors);
  }

  async dispose(): Promise<void> {
    await this.decoder.release();
    await this.embedder?.release();
  }
}

/** Load a decoder in the Optimum layout from a file source (memory, fetch, or a directory via `@vlit/models/node`). */
export async function loadOptimumDecoder(source: ModelFileSource, options: LoadOptimumDecoderOptions): Promise<OnnxLanguageModel> {
  if (!options || typeof options.backend?.createSession !== 'function') {
    throw new InvalidArgumentError('loadOptimumDecoder needs an InferenceBackend (options.backend)', { details: { field: 'backend' } });
  }
  const config = (await readJson(source, OPTIMUM_FILES.config, true)) as Record<string, unknown>;
  const generation = (await readJson(source, OPTIMUM_FILES.generationConfig, false)) ?? {};
  const facts = decoderFactsFromConfig(config, generation, `${source.name}/${OPTIMUM_FILES.config}`);
  const candidates = options.decoderFile ? [options.decoderFile] : [...OPTIMUM_FILES.decoderCandidates];
  let decoderFile: string | undefined;
  let decoderInput: Uint8Array | string | undefined;
  for (const file of candidates) {
    decoderInput = await source.sessionInput(file);
    if (decoderInput !== undefined) {
      decoderFile = file;
      break;
    }
  }
  if (decoderInput === undefined || decoderFile === undefined) {
    throw new NotFoundError(`${source.name} has no decoder model (looked for ${candidates.join(', ')})`, { details: { file: source.name, candidates } });
  }
  const embedFile = options.embedFile ?? OPTIMUM_FILES.embedTokens;
  let embedInput = await source.sessionInput(embedFile);
  // A web backend reads string models as URLs: hand it the bytes of a local file instead.
  if (options.backend.platform === 'web') {
    if (typeof decoderInput === 'string') decoderInput = await source.read(decoderFile);
    if (typeof embedInput === 'string') embedInput = await source.read(embedFile);
  }
  if (decoderInput === undefined) throw new NotFoundError(`${source.name} has no ${decoderFile}`, { details: { file: decoderFile } });
  const decoder = await options.backend.createSession(decoderInput, options.session);
  let embedder: InferenceSession | undefined;
  try {
    embedder = embedInput === undefined ? undefined : await options.backend.createSession(embedInput, options.session);
    return new OptimumDecoder(facts, Object.freeze({ ...config }), decoderFile, decoder, embedder, options.id ?? source.name);
  } catch (err) {
    await decoder.release();
    await embedder?.release();
    throw err;
  }
}
