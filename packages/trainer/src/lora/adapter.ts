/**
 * PEFT LoRA adapters as peft 0.21 saves them: `adapter_config.json` (every field peft writes) and
 * `adapter_model.safetensors` whose keys drop the adapter name
 * (`base_model.model.<module>.lora_A.weight`, `...lora_B.weight`). Merging follows peft's
 * `get_delta_weight`: W' = W + scale · B @ A with scale = alpha / r (rsLoRA: alpha / sqrt(r)),
 * transposed for fan_in_fan_out layers.
 */
import {
  FormatError,
  InvalidArgumentError,
  NotFoundError,
  TensorShapeError,
  UnsupportedError,
  ValidationError,
  createTensor,
  parseSafetensors,
  serializeSafetensors,
  type Rng,
  type SafetensorsFile,
  type SafetensorsInput,
  type Tensor,
} from '@vlit/core';
import { z } from 'zod';
import { peftPatternKey } from './targets.js';

/** The prefix peft puts before module paths in saved adapter keys. */
export const PEFT_KEY_PREFIX = 'base_model.model.';

/** adapter_config.json of a LoRA adapter; fields Vlit does not interpret are kept as they are. */
export const peftLoraConfigSchema = z.looseObject({
  peft_type: z.literal('LORA'),
  r: z.number().int().positive(),
  lora_alpha: z.number(),
  lora_dropout: z.number().min(0).max(1).default(0),
  target_modules: z.union([z.array(z.string()), z.string(), z.null()]).default(null),
  bias: z.enum(['none', 'all', 'lora_only']).default('none'),
  task_type: z.string().nullable().default(null),
  base_model_name_or_path: z.string().nullable().default(null),
  fan_in_fan_out: z.boolean().default(false),
  use_rslora: z.boolean().default(false),
  use_dora: z.boolean().default(false),
  modules_to_save: z.array(z.string()).nullable().default(null),
  rank_pattern: z.record(z.string(), z.number().int().positive()).default({}),
  alpha_pattern: z.record(z.string(), z.number()).default({}),
});
/** A parsed LoRA adapter config. */
export type PeftLoraConfig = z.infer<typeof peftLoraConfigSchema>;

/** The fields Vlit lets a caller set when it makes a config; the rest take peft 0.21's defaults. */
export interface PeftLoraConfigOptions {
  r: number;
  loraAlpha: number;
  targetModules: readonly string[] | string;
  loraDropout?: number;
  useRslora?: boolean;
  bias?: 'none' | 'all' | 'lora_only';
  taskType?: string | null;
  baseModelNameOrPath?: string | null;
  fanInFanOut?: boolean;
  modulesToSave?: readonly string[] | null;
  rankPattern?: Record<string, number>;
  alphaPattern?: Record<string, number>;
}

/** One adapted module: A is [r, in], B is [out, r] (torch Linear layout, as peft stores them). */
export interface LoraModuleWeights {
  /** The module path inside the model (e.g. `model.layers.0.self_attn.q_proj`). */
  readonly module: string;
  readonly a: Tensor<'float32'>;
  readonly b: Tensor<'float32'>;
}

/** A LoRA adapter in memory. */
export interface LoraAdapter {
  readonly config: PeftLoraConfig;
  /** Adapted modules by module path. */
  readonly modules: ReadonlyMap<string, LoraModuleWeights>;
  /** Other saved tensors (modules_to_save copies, LoRA biases) under their module-path names. */
  readonly extra: ReadonlyMap<string, Tensor>;
}

/** A full adapter_config.json object with every field peft 0.21 writes, from the fields Vlit sets. */
export function createPeftLoraConfig(options: PeftLoraConfigOptions): PeftLoraConfig {
  const raw = {
    alora_invocation_tokens: null,
    alpha_pattern: options.alphaPattern ?? {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: options.baseModelNameOrPath ?? null,
    bias: options.bias ?? 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: options.fanInFanOut ?? false,
    inference_mode: true,
    init_lora_weights: true,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: options.loraAlpha,
    lora_bias: false,
    lora_dropout: options.loraDropout ?? 0,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: options.modulesToSave ? [...options.modulesToSave] : null,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: '0.21.0',
    qalora_group_size: 16,
    r: options.r,
    rank_pattern: options.rankPattern ?? {},
    revision: null,
    target_modules: typeof options.targetModules === 'string' ? options.targetModules : [...options.targetModules],
    target_parameters: null,
    task_type: options.taskType === undefined ? 'CAUSAL_LM' : options.taskType,
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: options.useRslora ?? false,
    velora_config: null,
  };
  return parsePeftLoraConfig(raw);
}

/** Validate an adapter_config.json object; anything but a plain LoRA config is a typed error naming the field. */
export function parsePeftLoraConfig(value: unknown, file?: string): PeftLoraConfig {
  const parsed = peftLoraConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(`not a PEFT LoRA adapter config: ${issue.message}`, {
      details: { file, field: issue.path.join('.'), issues: parsed.error.issues },
    });
  }
  if (parsed.data.use_dora) {
    throw new UnsupportedError('DoRA adapters (use_dora) are not supported', { details: { file, field: 'use_dora' } });
  }
  return parsed.data;
}

/** The rank and alpha peft uses for a module (rank_pattern / alpha_pattern applied). */
export function loraRankAndAlpha(config: PeftLoraConfig, module: string): { r: number; alpha: number } {
  const rKey = peftPatternKey(Object.keys(config.rank_pattern), module);
  const aKey = peftPatternKey(Object.keys(config.alpha_pattern), module);
  return {
    r: rKey !== undefined ? config.rank_pattern[rKey] : config.r,
    alpha: aKey !== undefined ? config.alpha_pattern[aKey] : config.lora_alpha,
  };
}

/** The factor peft multiplies B @ A by for a module: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScale(config: PeftLoraConfig, module: string): number {
  const { r, alpha } = loraRankAndAlpha(config, module);
  return config.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
}

function asFloat32Tensor(entry: { shape: readonly number[]; toFloat32(): Float32Array }): Tensor<'float32'> {
  return createTensor('float32', entry.shape, Float32Array.from(entry.toFloat32()));
}

/** Build an adapter from its config and saved tensors; checks that every module has A and B of matching rank. */
export function parsePeftAdapter(configJson: unknown, weights: SafetensorsFile | Uint8Array, file?: string): LoraAdapter {
  const config = parsePeftLoraConfig(configJson, file);
  const st = weights instanceof Uint8Array ? parseSafetensors(weights, file !== undefined ? { file } : {}) : weights;
  const parts = new Map<string, { a?: Tensor<'float32'>; b?: Tensor<'float32'> }>();
  const extra = new Map<string, Tensor>();
  for (const [key, entry] of st.tensors) {
    if (!key.startsWith(PEFT_KEY_PREFIX)) {
      throw new FormatError(`adapter tensor '${key}' does not start with '${PEFT_KEY_PREFIX}'`, { details: { file, field: key } });
    }
    const rest = key.slice(PEFT_KEY_PREFIX.length);
    const m = /^(.*)\.lora_([AB])\.weight$/.exec(rest) ?? /^(.*)\.lora_embedding_([AB])$/.exec(rest);
    if (!m) {
      extra.set(rest, entry.toTensor());
      continue;
    }
    if (/\.lora_embedding_/.test(rest)) {
      throw new UnsupportedError(`LoRA on embeddings ('${key}') is not supported yet`, { details: { file, field: key } });
    }
    const slot = parts.get(m[1]) ?? {};
    const t = asFloat32Tensor(entry);
    if (t.dims.length !== 2) throw new TensorShapeError(`adapter tensor '${key}' must be 2-D, got [${t.dims.join(', ')}]`, { details: { file, field: key } });
    if (m[2] === 'A') slot.a = t;
    else slot.b = t;
    parts.set(m[1], slot);
  }
  const modules = new Map<string, LoraModuleWeights>();
  for (const [module, { a, b }] of parts) {
    if (!a || !b) {
      throw new FormatError(`adapter module '${module}' has lora_${a ? 'B' : 'A'} missing`, { details: { file, field: `${PEFT_KEY_PREFIX}${module}` } });
    }
    const { r } = loraRankAndAlpha(config, module);
    if (a.dims[0] !== r || b.dims[1] !== r) {
      throw new TensorShapeError(`adapter module '${module}': A is [${a.dims.join(', ')}], B is [${b.dims.join(', ')}], rank should be ${r}`, {
        details: { file, field: `${PEFT_KEY_PREFIX}${module}`, r },
      });
    }
    modules.set(module, { module, a, b });
  }
  return { config, modules, extra };
}

/** Make an adapter from a config and module weights (shapes checked as parsePeftAdapter does). */
export function createLoraAdapter(config: PeftLoraConfig, modules: Iterable<LoraModuleWeights>, extra: ReadonlyMap<string, Tensor> = new Map()): LoraAdapter {
  const map = new Map<string, LoraModuleWeights>();
  for (const m of modules) {
    const { r } = loraRankAndAlpha(config, m.module);
    if (m.a.dims.length !== 2 || m.b.dims.length !== 2 || m.a.dims[0] !== r || m.b.dims[1] !== r) {
      throw new TensorShapeError(`LoRA module '${m.module}': A [${m.a.dims.join(', ')}] and B [${m.b.dims.join(', ')}] do not have rank ${r}`, {
        details: { field: m.module, r },
      });
    }
    if (map.has(m.module)) throw new InvalidArgumentError(`LoRA module '${m.module}' is given twice`, { details: { field: m.module } });
    map.set(m.module, m);
  }
  return { config: parsePeftLoraConfig(config), modules: map, extra };
}

/**
 * Fresh LoRA weights as peft initialises them (init_lora_weights=True): A ~ U(-1/sqrt(in), 1/sqrt(in))
 * (kaiming_uniform with a = sqrt(5)), B = 0, so the adapted model starts equal to the base.
 */
export function initLoraModule(module: string, inFeatures: number, outFeatures: number, r: number, rng: Rng): LoraModuleWeights {
  const bound = 1 / Math.sqrt(inFeatures);
  const a = new Float32Array(r * inFeatures);
  for (let i = 0; i < a.length; i++) a[i] = -bound + 2 * bound * rng.float();
  return { module, a: createTensor('float32', [r, inFeatures], a), b: createTensor('float32', [outFeatures, r], new Float32Array(outFeatures * r)) };
}

/** JSON text of adapter_config.json as peft writes it (keys sorted, two-space indent). */
export function serializePeftLoraConfig(config: PeftLoraConfig): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as object)
          .sort()
          .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sorted(config), null, 2);
}

/** The two files of a PEFT adapter folder: config text and safetensors bytes (metadata `format: pt`, as torch writes). */
export function serializePeftAdapter(adapter: LoraAdapter): { config: string; weights: Uint8Array } {
  const tensors = new Map<string, SafetensorsInput>();
  for (const m of adapter.modules.values()) {
    tensors.set(`${PEFT_KEY_PREFIX}${m.module}.lora_A.weight`, m.a);
    tensors.set(`${PEFT_KEY_PREFIX}${m.module}.lora_B.weight`, m.b);
  }
  for (const [name, t] of adapter.extra) tensors.set(`${PEFT_KEY_PREFIX}${name}`, t);
  return { config: serializePeftLoraConfig(adapter.config), weights: serializeSafetensors(tensors, { format: 'pt' }) };
}

/** Options of mergeLoraAdapter. */
export interface MergeLoraOptions {
  /** Prefix from the adapter's module paths to the base weights' names (default ''). */
  weightPrefix?: string;
}

const f = Math.fround;

/** W' = W + scale · B @ A for one module (torch float32 arithmetic: the product is rounded, then scaled, then added). */
export function mergeLoraModule(weight: Tensor, lora: LoraModuleWeights, scale: number, fanInFanOut = false): Tensor<'float32'> {
  if (weight.dtype !== 'float32') {
    throw new UnsupportedError(`merging into a ${weight.dtype} weight is not supported (float32 only)`, { details: { field: lora.module } });
  }
  const [r, inF] = lora.a.dims;
  const outF = lora.b.dims[0];
  const expected = fanInFanOut ? [inF, outF] : [outF, inF];
  if (weight.dims.length !== 2 || weight.dims[0] !== expected[0] || weight.dims[1] !== expected[1]) {
    throw new TensorShapeError(`weight of '${lora.module}' is [${weight.dims.join(', ')}], LoRA needs [${expected.join(', ')}]`, {
      details: { field: lora.module },
    });
  }
  const w = weight.data as Float32Array;
  const A = lora.a.data;
  const B = lora.b.data;
  const out = new Float32Array(w.length);
  const s = f(scale);
  for (let o = 0; o < outF; o++) {
    for (let i = 0; i < inF; i++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += B[o * r + k] * A[k * inF + i];
      const idx = fanInFanOut ? i * outF + o : o * inF + i;
      out[idx] = w[idx] + f(f(acc) * s);
    }
  }
  return createTensor('float32', weight.dims, out);
}

/**
 * Merge an adapter into base weights: returns the merged `<prefix><module>.weight` tensors (only those
 * the adapter changes). A module whose weight is missing is a NotFoundError naming it.
 */
export function mergeLoraAdapter(
  base: ReadonlyMap<string, Tensor> | ((name: string) => Tensor | undefined),
  adapter: LoraAdapter,
  options: MergeLoraOptions = {},
): Map<string, Tensor<'float32'>> {
  const lookup = typeof base === 'function' ? base : (name: string) => base.get(name);
  const prefix = options.weightPrefix ?? '';
  const out = new Map<string, Tensor<'float32'>>();
  for (const m of adapter.modules.values()) {
    const name = `${prefix}${m.module}.weight`;
    const w = lookup(name);
    if (!w) throw new NotFoundError(`base weight '${name}' for LoRA module '${m.module}' not found`, { details: { field: name } });
    out.set(name, mergeLoraModule(w, m, loraScale(adapter.config, m.module), adapter.config.fan_in_fan_out));
  }
  return out;
}
