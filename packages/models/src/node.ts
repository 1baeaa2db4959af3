/**
 * `@vlit/models/node`: model folders on disk (Optimum layout) and decoder checkpoints as files.
 * @packageDocumentation
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, VlitError } from '@vlit/core';
import { readSafetensorsFile, readUserFile, resolveUnderRoot } from '@vlit/core/node';
import { saveModel } from '@vlit/graph/node';
import { fromHfLlamaConfig, type LlamaConfig } from './decoder/llama-config.js';
import { LLAMA_DECODER_FILE, buildLlamaOnnx, type LlamaOnnxExport } from './decoder/llama.js';
import { LLAMA_METADATA_KEY, llamaWeightsFromSafetensors, type LlamaWeights } from './decoder/llama-weights.js';
import { loadOptimumDecoder, type LoadOptimumDecoderOptions, type OnnxLanguageModel } from './language-model/optimum-decoder.js';
import { OPTIMUM_FILES } from './language-model/optimum-layout.js';
import type { ModelFileSource } from './language-model/sources.js';

/** A source over a directory; ONNX files are handed to the backend as paths, so external data beside them loads. */
export function createDirectorySource(dir: string): ModelFileSource {
  const locate = async (file: string): Promise<string | undefined> => {
    let path: string;
    try {
      path = await resolveUnderRoot(dir, file);
    } catch (err) {
      if (VlitError.isInstance(err) && err.code === 'VLIT_NOT_FOUND') return undefined;
      throw err;
    }
    try {
      return (await stat(path)).isFile() ? path : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    name: dir,
    async read(file) {
      const path = await locate(file);
      if (!path) return undefined;
      // Regular files only, opened without blocking: a FIFO swapped in after the check fails, never hangs.
      const b = await readUserFile(path, { what: 'model file' });
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    sessionInput: locate,
  };
}

/** Load an Optimum-layout decoder folder (Vlit's export or Hugging Face Optimum's). */
export async function loadOptimumDecoderDir(dir: string, options: LoadOptimumDecoderOptions): Promise<OnnxLanguageModel> {
  return loadOptimumDecoder(createDirectorySource(dir), { id: dir, ...options });
}

/** Options of writeLlamaOnnx. */
export interface WriteLlamaOnnxOptions {
  /** Move weights to `decoder_model_merged.onnx_data` / `embed_tokens.onnx_data`, as Optimum does for large models. */
  externalData?: boolean;
}

/**
 * Write a Llama-style decoder in the Optimum layout: config.json, generation_config.json,
 * decoder_model_merged.onnx (past_key_values always fed, zero-length at the first step) and
 * embed_tokens.onnx. Returns the written file names.
 */
export async function writeLlamaOnnx(dir: string, exported: LlamaOnnxExport, options: WriteLlamaOnnxOptions = {}): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const json = async (name: string, value: unknown): Promise<void> => {
    await writeFile(join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
    written.push(name);
  };
  await json(OPTIMUM_FILES.config, exported.hfConfig);
  await json(OPTIMUM_FILES.generationConfig, exported.generationConfig);
  for (const [name, model] of [
    [LLAMA_DECODER_FILE, exported.decoder],
    [OPTIMUM_FILES.embedTokens, exported.embedTokens],
  ] as const) {
    await saveModel(model, join(dir, name), options.externalData ? { externalData: { location: `${name}_data` } } : {});
    written.push(name);
    if (options.externalData) written.push(`${name}_data`);
  }
  return written;
}

/** Build and write a Llama-style decoder from a configuration and weights (see writeLlamaOnnx). */
export async function exportLlamaDecoder(dir: string, config: LlamaConfig, weights: LlamaWeights, options: WriteLlamaOnnxOptions = {}): Promise<string[]> {
  return writeLlamaOnnx(dir, buildLlamaOnnx(config, weights), options);
}

/**
 * Read Llama weights (Hugging Face names) from a safetensors file; the configuration comes from
 * `config`, else the file's metadata, else a config.json beside the file.
 */
export async function readLlamaSafetensors(path: string, config?: LlamaConfig): Promise<{ config: LlamaConfig; weights: LlamaWeights }> {
  const file = await readSafetensorsFile(path);
  let c = config;
  if (!c) {
    const recorded = file.metadata[LLAMA_METADATA_KEY];
    if (recorded) c = fromHfLlamaConfig(JSON.parse(recorded) as Record<string, unknown>, path);
  }
  if (!c) {
    const beside = join(path, '..', OPTIMUM_FILES.config);
    let text: string;
    try {
      text = await readFile(beside, 'utf8');
    } catch (cause) {
      throw new NotFoundError(`no configuration for ${path}: pass one, or put config.json beside it`, { cause, details: { file: path } });
    }
    try {
      c = fromHfLlamaConfig(JSON.parse(text) as Record<string, unknown>, beside);
    } catch (cause) {
      if (VlitError.isInstance(cause)) throw cause;
      throw new InvalidArgumentError(`${beside} is not JSON`, { cause, details: { file: beside } });
    }
  }
  return { config: c, weights: llamaWeightsFromSafetensors(file, c, path) };
}
export * from './server/index.js';
export {
  loadHfLanguageModel,
  saveHfLanguageModel,
  type HfLanguageModel,
  type HfLoadProgress,
  type LoadHfLanguageModelOptions,
  type SaveHfLanguageModelOptions,
} from './hf/decoder.js';
export * from './hf/llava.js';
export * from './hf/vlm.js';
export * from './hf/llava-save.js';
