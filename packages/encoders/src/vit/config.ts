/**
 * The ViT architecture's configuration, in Vlit's names, with conversion from and to Hugging
 * Face's `CLIPVisionConfig` (`config.json`).
 */
import { z } from 'zod';
import { ValidationError } from '@vlit/core';

/** MLP activation: exact GELU, OpenAI CLIP's quick GELU (x·σ(1.702x)), or the tanh approximation. */
export const vitActivationSchema = z.enum(['gelu', 'quick_gelu', 'gelu_tanh']);
export type VitActivation = z.infer<typeof vitActivationSchema>;

/** A ViT: patch embedding Conv, optional CLS token, learned positions, pre-LN transformer blocks. */
export const vitConfigSchema = z
  .object({
    imageSize: z.number().int().positive(),
    patchSize: z.number().int().positive(),
    hiddenSize: z.number().int().positive(),
    numLayers: z.number().int().positive(),
    numHeads: z.number().int().positive(),
    /** MLP width; default 4 × hiddenSize. */
    intermediateSize: z.number().int().positive().optional(),
    numChannels: z.number().int().positive().default(3),
    layerNormEps: z.number().positive().default(1e-5),
    hiddenAct: vitActivationSchema.default('gelu'),
    /** CLIP has a CLS token; false gives a SigLIP-like token layout (patches only). */
    clsToken: z.boolean().default(true),
  })
  .superRefine((c, ctx) => {
    if (c.imageSize % c.patchSize !== 0)
      ctx.addIssue({ code: 'custom', path: ['patchSize'], message: `imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}` });
    if (c.hiddenSize % c.numHeads !== 0)
      ctx.addIssue({ code: 'custom', path: ['numHeads'], message: `hiddenSize ${c.hiddenSize} is not divisible by numHeads ${c.numHeads}` });
  });
/** Input form of the config (defaults optional). */
export type VitConfigInput = z.input<typeof vitConfigSchema>;
/** Resolved config. */
export type VitConfig = Required<z.output<typeof vitConfigSchema>>;

/** Validate a config and fill defaults; errors name the field. */
export function resolveVitConfig(input: VitConfigInput, options: { file?: string } = {}): VitConfig {
  const r = vitConfigSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ValidationError(`invalid ViT config: ${i?.message}`, {
      details: { file: options.file, field: i?.path.join('.'), issues: r.error.issues.map((x) => ({ field: x.path.join('.'), message: x.message })) },
    });
  }
  return { ...r.data, intermediateSize: r.data.intermediateSize ?? 4 * r.data.hiddenSize };
}

/** Patches per side and tokens (with the CLS token when there is one). */
export function vitTokenCounts(config: VitConfig): { grid: number; patches: number; tokens: number } {
  const grid = config.imageSize / config.patchSize;
  return { grid, patches: grid * grid, tokens: grid * grid + (config.clsToken ? 1 : 0) };
}

const hfVisionConfigSchema = z.looseObject({
  hidden_size: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  image_size: z.number().int().positive(),
  patch_size: z.number().int().positive(),
  num_channels: z.number().int().positive().optional(),
  layer_norm_eps: z.number().positive().optional(),
  hidden_act: z.string().optional(),
});

/** Read a Hugging Face CLIPVisionConfig (or a CLIPConfig's `vision_config`). */
export function vitConfigFromHf(json: unknown, options: { file?: string } = {}): VitConfig {
  const obj = json && typeof json === 'object' && 'vision_config' in json ? (json as { vision_config: unknown }).vision_config : json;
  const r = hfVisionConfigSchema.safeParse(obj);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ValidationError(`invalid vision config: ${i?.message}`, { details: { file: options.file, field: i?.path.join('.') } });
  }
  const c = r.data;
  const act = c.hidden_act ?? 'quick_gelu';
  const hiddenAct = act === 'gelu_pytorch_tanh' || act === 'gelu_new' ? 'gelu_tanh' : act;
  if (!vitActivationSchema.safeParse(hiddenAct).success) {
    throw new ValidationError(`unsupported hidden_act ${act}`, { details: { file: options.file, field: 'hidden_act' } });
  }
  return resolveVitConfig(
    {
      imageSize: c.image_size,
      patchSize: c.patch_size,
      hiddenSize: c.hidden_size,
      intermediateSize: c.intermediate_size,
      numLayers: c.num_hidden_layers,
      numHeads: c.num_attention_heads,
      numChannels: c.num_channels ?? 3,
      layerNormEps: c.layer_norm_eps ?? 1e-5,
      hiddenAct: hiddenAct as VitActivation,
      clsToken: true,
    },
    options,
  );
}

/** The config as a Hugging Face CLIPVisionConfig `config.json`. */
export function vitConfigToHf(config: VitConfig): Record<string, unknown> {
  return {
    model_type: 'clip_vision_model',
    architectures: ['CLIPVisionModel'],
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    image_size: config.imageSize,
    patch_size: config.patchSize,
    num_channels: config.numChannels,
    layer_norm_eps: config.layerNormEps,
    hidden_act: config.hiddenAct === 'gelu_tanh' ? 'gelu_pytorch_tanh' : config.hiddenAct,
    vlit_cls_token: config.clsToken,
  };
}
