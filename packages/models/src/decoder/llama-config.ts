/**
 * Configuration of the Llama-style decoder (also Qwen2 and Mistral, which differ only in biases, RoPE
 * scaling and sliding-window attention), and its Hugging Face `config.json` form, so exported files load
 * in any Optimum-layout loader and saved checkpoints in transformers.
 */
import { FormatError, InvalidArgumentError, UnsupportedError, isVlitError } from '@vlit/core';

/** Widths and constants of a Llama-style decoder. */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  /** SwiGLU inner width. */
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Grouped-query attention: key/value heads (divides numAttentionHeads; equal = multi-head attention). */
  numKeyValueHeads: number;
  /** Per-head width (default hiddenSize / numAttentionHeads). */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  /** lm_head shares model.embed_tokens.weight. */
  tieWordEmbeddings: boolean;
  bosTokenId?: number;
  eosTokenId?: number | number[];
  /** Which Hugging Face architecture the weights and config.json follow (default 'llama'). */
  modelType?: LlamaFamily;
  /** Biases on q_proj, k_proj and v_proj (Qwen2; Llama's attention_bias). */
  qkvBias?: boolean;
  /** Bias on o_proj (Llama's attention_bias). */
  oProjBias?: boolean;
  /** Biases on gate_proj, up_proj and down_proj (Llama's mlp_bias). */
  mlpBias?: boolean;
  /** RoPE frequency scaling (absent: plain RoPE with ropeTheta). */
  ropeScaling?: RopeScaling;
  /** Sliding-window attention: a query sees at most this many keys, itself included (Mistral; Qwen2 with use_sliding_window). */
  slidingWindow?: number;
  /** Per layer, whether the sliding window applies (default: every layer when slidingWindow is set). */
  slidingLayers?: boolean[];
}

/** The Hugging Face decoder architectures this graph implements. */
export type LlamaFamily = 'llama' | 'qwen2' | 'mistral';

/** RoPE scaling variants, as transformers' rope_parameters `rope_type` names them. */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

/**
 * RoPE inverse frequencies theta^(-2j/headDim), j < headDim/2, scaled as transformers' modeling_rope_utils
 * scales them (linear divides all by factor; llama3 divides low frequencies, keeps high ones, blends between).
 */
export function ropeInverseFrequencies(config: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float64Array {
  const hd = config.headDim;
  const out = new Float64Array(hd / 2);
  for (let j = 0; j < hd / 2; j++) out[j] = 1 / config.ropeTheta ** ((2 * j) / hd);
  const s = config.ropeScaling;
  if (s?.type === 'linear') for (let j = 0; j < out.length; j++) out[j] /= s.factor;
  if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let j = 0; j < out.length; j++) {
      const wavelen = (2 * Math.PI) / out[j];
      if (wavelen > lowWavelen) out[j] /= s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        out[j] = ((1 - smooth) * out[j]) / s.factor + smooth * out[j];
      }
    }
  }
  return out;
}

/** Fields one may leave out of a LlamaConfig. */
export type LlamaConfigInput = Pick<LlamaConfig, 'vocabSize' | 'hiddenSize' | 'numHiddenLayers' | 'numAttentionHeads'> & Partial<LlamaConfig>;

function positiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`decoder ${field} must be a positive integer, got ${String(value)}`, { details: { field } });
  }
  return value;
}

/** Fill defaults and check consistency; throws InvalidArgumentError naming the field. */
export function normalizeLlamaConfig(input: LlamaConfigInput): LlamaConfig {
  const hiddenSize = positiveInt(input.hiddenSize, 'hiddenSize');
  const numAttentionHeads = positiveInt(input.numAttentionHeads, 'numAttentionHeads');
  const numKeyValueHeads = positiveInt(input.numKeyValueHeads ?? numAttentionHeads, 'numKeyValueHeads');
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new InvalidArgumentError(`numAttentionHeads ${numAttentionHeads} is not a multiple of numKeyValueHeads ${numKeyValueHeads}`, {
      details: { field: 'numKeyValueHeads' },
    });
  }
  if (input.headDim === undefined && hiddenSize % numAttentionHeads !== 0) {
    throw new InvalidArgumentError(`hiddenSize ${hiddenSize} is not divisible by numAttentionHeads ${numAttentionHeads}; give headDim`, {
      details: { field: 'headDim' },
    });
  }
  const headDim = positiveInt(input.headDim ?? hiddenSize / numAttentionHeads, 'headDim');
  if (headDim % 2 !== 0) throw new InvalidArgumentError(`headDim ${headDim} must be even for rotary embeddings`, { details: { field: 'headDim' } });
  const rmsNormEps = input.rmsNormEps ?? 1e-6;
  const ropeTheta = input.ropeTheta ?? 10000;
  if (!(rmsNormEps > 0)) throw new InvalidArgumentError('rmsNormEps must be > 0', { details: { field: 'rmsNormEps' } });
  if (!(ropeTheta > 0)) throw new InvalidArgumentError('ropeTheta must be > 0', { details: { field: 'ropeTheta' } });
  const numHiddenLayers = positiveInt(input.numHiddenLayers, 'numHiddenLayers');
  const s = input.ropeScaling;
  if (s !== undefined) {
    if (!(s.factor > 0)) throw new InvalidArgumentError('ropeScaling.factor must be > 0', { details: { field: 'ropeScaling.factor' } });
    if (s.type === 'llama3' && !(s.highFreqFactor > s.lowFreqFactor && s.lowFreqFactor > 0 && s.originalMaxPositionEmbeddings > 0)) {
      throw new InvalidArgumentError('llama3 RoPE needs 0 < lowFreqFactor < highFreqFactor and originalMaxPositionEmbeddings > 0', {
        details: { field: 'ropeScaling' },
      });
    }
  }
  if (input.slidingWindow !== undefined) positiveInt(input.slidingWindow, 'slidingWindow');
  if (input.slidingLayers !== undefined && input.slidingLayers.length !== numHiddenLayers) {
    throw new InvalidArgumentError(`slidingLayers has ${input.slidingLayers.length} entries for ${numHiddenLayers} layers`, {
      details: { field: 'slidingLayers' },
    });
  }
  return {
    vocabSize: positiveInt(input.vocabSize, 'vocabSize'),
    hiddenSize,
    intermediateSize: positiveInt(input.intermediateSize ?? 2 * hiddenSize, 'intermediateSize'),
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rmsNormEps,
    ropeTheta,
    maxPositionEmbeddings: positiveInt(input.maxPositionEmbeddings ?? 2048, 'maxPositionEmbeddings'),
    tieWordEmbeddings: input.tieWordEmbeddings ?? false,
    ...(input.bosTokenId !== undefined ? { bosTokenId: input.bosTokenId } : {}),
    ...(input.eosTokenId !== undefined ? { eosTokenId: input.eosTokenId } : {}),
    ...(input.modelType !== undefined && input.modelType !== 'llama' ? { modelType: input.modelType } : {}),
    ...(input.qkvBias ? { qkvBias: true } : {}),
    ...(input.oProjBias ? { oProjBias: true } : {}),
    ...(input.mlpBias ? { mlpBias: true } : {}),
    ...(s !== undefined ? { ropeScaling: { ...s } } : {}),
    ...(input.slidingWindow !== undefined ? { slidingWindow: input.slidingWindow } : {}),
    ...(input.slidingLayers !== undefined ? { slidingLayers: [...input.slidingLayers] } : {}),
  };
}

function hfRopeParameters(config: LlamaConfig): Record<string, unknown> {
  const s = config.ropeScaling;
  if (!s) return { rope_type: 'default', rope_theta: config.ropeTheta };
  if (s.type === 'linear') return { rope_type: 'linear', rope_theta: config.ropeTheta, factor: s.factor };
  return {
    rope_type: 'llama3',
    rope_theta: config.ropeTheta,
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
  };
}

/**
 * The Hugging Face `config.json` object of this configuration: LlamaForCausalLM, Qwen2ForCausalLM or
 * MistralForCausalLM per `modelType`. RoPE goes both as transformers 5's `rope_parameters` and as the
 * older `rope_theta` (+ `rope_scaling`), so either major version reads it. Throws when the configuration
 * needs something the architecture cannot express (e.g. an o_proj bias on Qwen2).
 */
export function toHfLlamaConfig(config: LlamaConfig): Record<string, unknown> {
  const family = config.modelType ?? 'llama';
  const unexpressible = (what: string): never => {
    throw new InvalidArgumentError(`a ${family} config.json cannot express ${what}`, { details: { field: 'modelType' } });
  };
  const rope = hfRopeParameters(config);
  const arch: Record<string, unknown> = {};
  if (family === 'llama') {
    if (config.qkvBias !== config.oProjBias && (config.qkvBias || config.oProjBias)) unexpressible('q/k/v biases without an o_proj bias (or the reverse)');
    if (config.slidingWindow !== undefined) unexpressible('sliding-window attention');
    Object.assign(arch, { attention_bias: config.qkvBias === true, mlp_bias: config.mlpBias === true });
  } else if (family === 'qwen2') {
    if (!config.qkvBias || config.oProjBias || config.mlpBias) unexpressible('anything but q/k/v biases (Qwen2 always has exactly those)');
    const layers = config.slidingLayers ?? new Array<boolean>(config.numHiddenLayers).fill(config.slidingWindow !== undefined);
    Object.assign(arch, {
      use_sliding_window: config.slidingWindow !== undefined,
      sliding_window: config.slidingWindow ?? null,
      max_window_layers: layers.indexOf(true) < 0 ? config.numHiddenLayers : layers.indexOf(true),
      layer_types: layers.map((sl) => (sl ? 'sliding_attention' : 'full_attention')),
    });
  } else {
    if (config.qkvBias || config.oProjBias || config.mlpBias) unexpressible('biases');
    if (config.slidingLayers && config.slidingLayers.some((sl) => !sl)) unexpressible('a sliding window on some layers only');
    Object.assign(arch, { sliding_window: config.slidingWindow ?? null });
  }
  return {
    architectures: [family === 'llama' ? 'LlamaForCausalLM' : family === 'qwen2' ? 'Qwen2ForCausalLM' : 'MistralForCausalLM'],
    model_type: family,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    ...(config.ropeScaling ? { rope_scaling: rope } : {}),
    rope_parameters: rope,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    ...arch,
    torch_dtype: 'float32',
    use_cache: true,
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
  };
}

/** The `model_type` values fromHfLlamaConfig reads. */
export const SUPPORTED_LLAMA_FAMILIES: readonly LlamaFamily[] = ['llama', 'qwen2', 'mistral'];

function ropeFromHf(json: Record<string, unknown>, where: string): { ropeTheta?: number; ropeScaling?: RopeScaling } {
  // transformers 5 writes rope_parameters; 4.x wrote rope_theta and rope_scaling (with `type` or `rope_type`).
  const params = [json.rope_parameters, json.rope_scaling].find((v) => typeof v === 'object' && v !== null && !Array.isArray(v)) as
    | Record<string, unknown>
    | undefined;
  const theta = typeof params?.rope_theta === 'number' ? params.rope_theta : typeof json.rope_theta === 'number' ? json.rope_theta : undefined;
  const type = params ? String(params.rope_type ?? params.type ?? 'default') : 'default';
  const partial = params?.partial_rotary_factor ?? json.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) {
    throw new UnsupportedError(`${where}: partial_rotary_factor ${String(partial)} is not supported (only 1)`, {
      details: { file: where, field: 'partial_rotary_factor' },
    });
  }
  const field = (key: string): number => {
    const v = params?.[key];
    if (typeof v !== 'number') {
      throw new FormatError(`${where}: ${type} RoPE needs a number '${key}' in rope_parameters`, { details: { file: where, field: `rope_parameters.${key}` } });
    }
    return v;
  };
  const out: { ropeTheta?: number; ropeScaling?: RopeScaling } = theta !== undefined ? { ropeTheta: theta } : {};
  if (type === 'default') return out;
  if (type === 'linear') return { ...out, ropeScaling: { type: 'linear', factor: field('factor') } };
  if (type === 'llama3') {
    const originalMaxPositionEmbeddings =
      typeof params?.original_max_position_embeddings === 'number'
        ? params.original_max_position_embeddings
        : (json.original_max_position_embeddings as number | undefined);
    if (typeof originalMaxPositionEmbeddings !== 'number') field('original_max_position_embeddings');
    return {
      ...out,
      ropeScaling: {
        type: 'llama3',
        factor: field('factor'),
        lowFreqFactor: field('low_freq_factor'),
        highFreqFactor: field('high_freq_factor'),
        originalMaxPositionEmbeddings: originalMaxPositionEmbeddings as number,
      },
    };
  }
  throw new UnsupportedError(`${where}: RoPE type '${type}' is not supported (supported: default, linear, llama3)`, {
    details: { file: where, field: 'rope_parameters.rope_type', ropeType: type, supported: ['default', 'linear', 'llama3'] },
  });
}

/**
 * A LlamaConfig from a Hugging Face `config.json` object of a LlamaForCausalLM, Qwen2ForCausalLM or
 * MistralForCausalLM (a missing `model_type` reads as llama). An unsupported `model_type`, RoPE type or
 * activation is an UnsupportedError naming it and what is supported; a missing required field is a
 * FormatError naming the field.
 */
export function fromHfLlamaConfig(json: Record<string, unknown>, file?: string): LlamaConfig {
  const where = file ?? 'config.json';
  const modelType = json.model_type === undefined ? 'llama' : json.model_type;
  if (!SUPPORTED_LLAMA_FAMILIES.includes(modelType as LlamaFamily)) {
    throw new UnsupportedError(`${where}: model_type '${String(modelType)}' is not supported; supported: ${SUPPORTED_LLAMA_FAMILIES.join(', ')}`, {
      details: { file, field: 'model_type', modelType, supported: [...SUPPORTED_LLAMA_FAMILIES] },
    });
  }
  const family = modelType as LlamaFamily;
  const num = (key: string): number | undefined => (typeof json[key] === 'number' ? (json[key] as number) : undefined);
  const need = (key: string): number => {
    const v = num(key);
    if (v === undefined) throw new FormatError(`${where} lacks the required number '${key}'`, { details: { file, field: key } });
    return v;
  };
  const act = json.hidden_act ?? 'silu';
  if (act !== 'silu') {
    throw new UnsupportedError(`${where}: hidden_act '${String(act)}' is not supported (supported: silu)`, { details: { file, field: 'hidden_act' } });
  }
  const rope = ropeFromHf(json, where);
  let slidingWindow: number | undefined;
  let slidingLayers: boolean[] | undefined;
  const layers = need('num_hidden_layers');
  if (family === 'mistral' && typeof json.sliding_window === 'number') slidingWindow = json.sliding_window;
  if (family === 'qwen2' && json.use_sliding_window === true && typeof json.sliding_window === 'number') {
    slidingWindow = json.sliding_window;
    const maxWindowLayers = num('max_window_layers') ?? 28;
    slidingLayers = Array.isArray(json.layer_types)
      ? (json.layer_types as unknown[]).map((t) => t === 'sliding_attention')
      : Array.from({ length: layers }, (_, i) => i >= maxWindowLayers);
  }
  const attentionBias = family === 'llama' && json.attention_bias === true;
  try {
    return normalizeLlamaConfig({
      vocabSize: need('vocab_size'),
      hiddenSize: need('hidden_size'),
      intermediateSize: need('intermediate_size'),
      numHiddenLayers: layers,
      numAttentionHeads: need('num_attention_heads'),
      numKeyValueHeads: num('num_key_value_heads'),
      headDim: num('head_dim'),
      rmsNormEps: num('rms_norm_eps'),
      ...rope,
      maxPositionEmbeddings: num('max_position_embeddings'),
      tieWordEmbeddings: json.tie_word_embeddings === true,
      bosTokenId: num('bos_token_id'),
      eosTokenId: Array.isArray(json.eos_token_id) ? (json.eos_token_id as number[]) : num('eos_token_id'),
      modelType: family,
      qkvBias: family === 'qwen2' || attentionBias,
      oProjBias: attentionBias,
      mlpBias: family === 'llama' && json.mlp_bias === true,
      slidingWindow,
      slidingLayers,
    });
  } catch (err) {
    if (file && isVlitError(err, 'VLIT_INVALID_ARGUMENT')) err.addDetails({ file });
    throw err;
  }
}

/**
 * A tiny Llama-style configuration for tests and demos: 2 layers, 4 attention heads, 2 key/value
 * heads (grouped-query attention), SwiGLU width 2 x hidden, RoPE theta 10000.
 */
export function tinyLlamaConfig(options: Partial<LlamaConfig> & { hiddenSize: number; vocabSize: number }): LlamaConfig {
  return normalizeLlamaConfig({ numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 512, ...options });
}
