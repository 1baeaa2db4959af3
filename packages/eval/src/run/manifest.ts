// The reproducibility manifest: everything that decides a run's scores, by hash or by value.
// Two runs with equal manifests (same model files, tokenizer, template, preprocessing, decoding,
// judge, benchmark contents and settings, Vlit version) give the same scores.

import { z } from 'zod';
import { sha256Hex, stableStringify } from '../sha256.js';

/** Decoding settings recorded in a manifest (the serialisable part of core's GenerationOptions). */
export const decodingSettingsSchema = z.object({
  maxNewTokens: z.number().int().positive().optional(),
  temperature: z.number().nonnegative().optional(),
  topK: z.number().int().nonnegative().optional(),
  topP: z.number().positive().max(1).optional(),
  repetitionPenalty: z.number().positive().optional(),
  stop: z.array(z.string()).optional(),
  seed: z.number().int().optional(),
});
export type DecodingSettings = z.infer<typeof decodingSettingsSchema>;

/** One benchmark as the manifest records it. */
export const benchmarkDescriptionSchema = z.object({
  id: z.string(),
  kind: z.enum(['multiple-choice', 'vqa', 'caption', 'pope']),
  /** SHA-256 of the benchmark's items in canonical JSON (inline images by their own hash). */
  sha256: z.string(),
  /** SHA-256 of the file the items were read from, when known. */
  source: z.string().nullable(),
  items: z.number().int().nonnegative(),
  /** Method, prompt template, circular flag, ... */
  settings: z.record(z.string(), z.unknown()),
});
export type BenchmarkDescription = z.infer<typeof benchmarkDescriptionSchema>;

/** The manifest written with every run. */
export const evalManifestSchema = z.object({
  format: z.literal('vlit-eval-manifest/1'),
  vlitVersion: z.string(),
  model: z.object({ id: z.string(), files: z.record(z.string(), z.string()) }),
  tokenizer: z.string().nullable(),
  template: z.string().nullable(),
  preprocessing: z.record(z.string(), z.unknown()).nullable(),
  decoding: decodingSettingsSchema,
  judge: z.record(z.string(), z.unknown()).nullable(),
  benchmarks: z.array(benchmarkDescriptionSchema),
});
export type EvalManifest = z.infer<typeof evalManifestSchema>;

/** What the caller knows about the model; hashes are SHA-256 hex (see `hashContent`, or `hashFiles` at `@vlit/eval/node`). */
export interface ModelDescription {
  /** Id to record (default: the model's own id). */
  id?: string;
  /** Model file name -> SHA-256 (weights, configs). */
  files?: Record<string, string>;
  /** SHA-256 of the tokenizer file(s). */
  tokenizer?: string;
  /** SHA-256 of the chat template text. */
  template?: string;
  /** Image preprocessing settings, by value (e.g. a preprocessor_config.json object). */
  preprocessing?: Record<string, unknown>;
}

/** SHA-256 of text (UTF-8) or bytes, for manifest fields. */
export function hashContent(content: string | Uint8Array): string {
  return sha256Hex(content);
}

/** The manifest's own hash (canonical JSON). */
export function manifestHash(manifest: EvalManifest): string {
  return sha256Hex(stableStringify(manifest));
}

/** Drop undefined fields and sort keys so equal settings compare equal. */
export function normalizeDecoding(decoding: DecodingSettings | undefined): DecodingSettings {
  return decodingSettingsSchema.parse(JSON.parse(stableStringify(decoding ?? {})));
}

/** Dotted paths at which two manifests differ (empty when they are equal). */
export function diffManifests(a: unknown, b: unknown, path = ''): string[] {
  if (stableStringify(a) === stableStringify(b)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((v, i) => diffManifests(v, b[i], `${path}[${i}]`));
  }
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diffManifests(a[k], b[k], path ? `${path}.${k}` : k));
  }
  return [path || '(root)'];
}
