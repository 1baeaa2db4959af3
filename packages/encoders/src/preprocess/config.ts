/**
 * Hugging Face `preprocessor_config.json`, validated by zod and turned into Vlit's processor
 * settings. Unknown fields pass through (real configs carry many); known fields are checked, and a
 * bad one is a ValidationError naming the file and the field.
 */
import { z } from 'zod';
import { FormatError, ValidationError } from '@vlit/core';
import { PIL_RESAMPLE_CODES, type ResampleFilter } from './resample.js';
import { meanFillColor, type Rgb } from './ops.js';

/** OpenAI CLIP's normalisation mean (Hugging Face `OPENAI_CLIP_MEAN`). */
export const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
/** OpenAI CLIP's normalisation std (Hugging Face `OPENAI_CLIP_STD`). */
export const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

const positiveInt = z.number().int().positive();
const channelValues = z.union([z.number(), z.array(z.number()).min(1).max(4)]);

const sizeSchema = z.union([
  positiveInt,
  z.strictObject({ shortest_edge: positiveInt }),
  z.strictObject({ height: positiveInt, width: positiveInt }),
  z.strictObject({ shortest_edge: positiveInt, longest_edge: positiveInt }),
]);

/** The fields of a Hugging Face image processor config that Vlit reads (CLIPImageProcessor and friends). */
export const preprocessorConfigSchema = z.looseObject({
  image_processor_type: z.string().optional(),
  do_resize: z.boolean().optional(),
  /** `{shortest_edge}` (resize the short side, keep aspect) or `{height, width}`; a bare number means shortest edge (as CLIP reads it). */
  size: sizeSchema.optional(),
  /** Pillow resampling code: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming. */
  resample: z.number().int().min(0).max(5).optional(),
  do_center_crop: z.boolean().optional(),
  crop_size: z.union([positiveInt, z.strictObject({ height: positiveInt, width: positiveInt })]).optional(),
  do_rescale: z.boolean().optional(),
  rescale_factor: z.number().positive().optional(),
  do_normalize: z.boolean().optional(),
  image_mean: channelValues.optional(),
  image_std: channelValues.optional(),
  do_convert_rgb: z.boolean().optional(),
  /** LLaVA-NeXT anyres: candidate [height, width] canvases. */
  image_grid_pinpoints: z
    .array(z.tuple([positiveInt, positiveInt]))
    .min(1)
    .optional(),
  /** Qwen2-VL pixel budget. */
  min_pixels: positiveInt.optional(),
  max_pixels: positiveInt.optional(),
  patch_size: positiveInt.optional(),
  merge_size: positiveInt.optional(),
});
export type PreprocessorConfig = z.infer<typeof preprocessorConfigSchema>;

/** How the image is resized before cropping. */
export type ResizeSpec = { shortestEdge: number } | { height: number; width: number };

/** Normalised processor settings: every default resolved, every field in Vlit's names. */
export interface ImageProcessorSettings {
  convertRgb: boolean;
  /** LLaVA `image_aspect_ratio: pad`: pad to a square with this colour before resizing; null leaves the aspect. */
  padToSquare: Rgb | null;
  resize: ResizeSpec | null;
  resample: ResampleFilter;
  centerCrop: { height: number; width: number } | null;
  /** null skips rescaling. */
  rescaleFactor: number | null;
  /** null skips normalisation. */
  mean: readonly number[] | null;
  std: readonly number[] | null;
}

/** Whether an encoder's `preprocessor` option holds resolved settings rather than a parsed `preprocessor_config.json`. */
export function isProcessorSettings(p: PreprocessorConfig | ImageProcessorSettings): p is ImageProcessorSettings {
  return typeof (p as ImageProcessorSettings).convertRgb === 'boolean' && 'centerCrop' in p;
}

/** The CLIP ViT-L/14-336 processor LLaVA-1.5 uses: shortest edge 336 bicubic, centre crop 336, CLIP mean/std. */
export function clipProcessorSettings(size = 336): ImageProcessorSettings {
  return {
    convertRgb: true,
    padToSquare: null,
    resize: { shortestEdge: size },
    resample: 'bicubic',
    centerCrop: { height: size, width: size },
    rescaleFactor: 1 / 255,
    mean: [...OPENAI_CLIP_MEAN],
    std: [...OPENAI_CLIP_STD],
  };
}

function issuePath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
}

/** Validate a parsed `preprocessor_config.json`; errors name `file` and the first failing field. */
export function parsePreprocessorConfig(value: unknown, options: { file?: string } = {}): PreprocessorConfig {
  const file = options.file ?? '<preprocessor_config.json>';
  const r = preprocessorConfigSchema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0];
    const field = first ? issuePath(first.path) || '<root>' : '<root>';
    throw new ValidationError(`invalid preprocessor config: ${first?.message ?? 'not an object'}`, {
      details: { file, field, issues: r.error.issues.map((i) => ({ field: issuePath(i.path), message: i.message })) },
    });
  }
  const c = r.data;
  const check = (ok: boolean, field: string, message: string) => {
    if (!ok) throw new ValidationError(`invalid preprocessor config: ${message}`, { details: { file, field } });
  };
  const len = (v: number | number[] | undefined) => (v === undefined ? 0 : typeof v === 'number' ? 1 : v.length);
  if (c.image_mean !== undefined) check(len(c.image_mean) === 1 || len(c.image_mean) === 3, 'image_mean', 'needs 1 or 3 values for RGB');
  if (c.image_std !== undefined) {
    check(len(c.image_std) === 1 || len(c.image_std) === 3, 'image_std', 'needs 1 or 3 values for RGB');
    const stds = typeof c.image_std === 'number' ? [c.image_std] : c.image_std;
    check(
      stds.every((s) => s > 0),
      'image_std',
      'every std must be positive',
    );
  }
  if (c.min_pixels !== undefined && c.max_pixels !== undefined) check(c.min_pixels <= c.max_pixels, 'min_pixels', 'min_pixels exceeds max_pixels');
  return c;
}

/** Parse the text of a `preprocessor_config.json`; bad JSON is a FormatError naming the file. */
export function parsePreprocessorConfigText(text: string, options: { file?: string } = {}): PreprocessorConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FormatError(`preprocessor config is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      details: { file: options.file ?? '<preprocessor_config.json>' },
    });
  }
  return parsePreprocessorConfig(value, options);
}

function triple(v: number | number[] | undefined, fallback: readonly number[]): number[] {
  if (v === undefined) return [...fallback];
  if (typeof v === 'number') return [v, v, v];
  return v.length === 1 ? [v[0], v[0], v[0]] : [...v];
}

/** Options of settingsFromPreprocessorConfig. */
export interface SettingsOptions {
  /** LLaVA's `image_aspect_ratio: pad`: pad to square with the mean colour (true) or the given colour. */
  padToSquare?: boolean | Rgb;
}

/**
 * Resolve a config into settings, with CLIPImageProcessor's defaults for absent fields (resize to
 * shortest edge 224 bicubic, centre crop 224, rescale 1/255, CLIP mean/std, convert to RGB).
 */
export function settingsFromPreprocessorConfig(config: PreprocessorConfig, options: SettingsOptions = {}): ImageProcessorSettings {
  const size = config.size ?? { shortest_edge: 224 };
  let resize: ResizeSpec | null = null;
  if (config.do_resize ?? true) {
    if (typeof size === 'number') resize = { shortestEdge: size };
    else if ('height' in size) resize = { height: size.height, width: size.width };
    else resize = { shortestEdge: size.shortest_edge };
  }
  const crop = config.crop_size ?? 224;
  const mean = triple(config.image_mean, OPENAI_CLIP_MEAN);
  const pad = options.padToSquare;
  return {
    convertRgb: config.do_convert_rgb ?? true,
    padToSquare: pad === true ? meanFillColor(mean) : pad ? pad : null,
    resize,
    resample: PIL_RESAMPLE_CODES[config.resample ?? 3],
    centerCrop: (config.do_center_crop ?? true) ? (typeof crop === 'number' ? { height: crop, width: crop } : { ...crop }) : null,
    rescaleFactor: (config.do_rescale ?? true) ? (config.rescale_factor ?? 1 / 255) : null,
    mean: (config.do_normalize ?? true) ? mean : null,
    std: (config.do_normalize ?? true) ? triple(config.image_std, OPENAI_CLIP_STD) : null,
  };
}

/** The inverse: a `preprocessor_config.json` object (CLIPImageProcessor layout) for these settings. */
export function preprocessorConfigFromSettings(settings: ImageProcessorSettings): PreprocessorConfig {
  const code = Number(Object.entries(PIL_RESAMPLE_CODES).find(([, f]) => f === settings.resample)?.[0] ?? 3);
  const r = settings.resize;
  return {
    image_processor_type: 'CLIPImageProcessor',
    do_convert_rgb: settings.convertRgb,
    do_resize: r !== null,
    ...(r ? { size: 'shortestEdge' in r ? { shortest_edge: r.shortestEdge } : { height: r.height, width: r.width } } : {}),
    resample: code,
    do_center_crop: settings.centerCrop !== null,
    ...(settings.centerCrop ? { crop_size: { ...settings.centerCrop } } : {}),
    do_rescale: settings.rescaleFactor !== null,
    ...(settings.rescaleFactor !== null ? { rescale_factor: settings.rescaleFactor } : {}),
    do_normalize: settings.mean !== null,
    ...(settings.mean && settings.std ? { image_mean: [...settings.mean], image_std: [...settings.std] } : {}),
  };
}
