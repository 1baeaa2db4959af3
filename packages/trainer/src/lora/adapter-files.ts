/** Node-only: PEFT adapter folders on disk (exported from `@vlit/trainer/node`). */
import { mkdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { ConflictError, FormatError } from '@vlit/core';
import { readUserFile, writeFileAtomic } from '@vlit/core/node';
import { parsePeftAdapter, serializePeftAdapter, type LoraAdapter } from './adapter.js';

/** File names of a PEFT adapter folder. */
export const PEFT_ADAPTER_FILES = { config: 'adapter_config.json', weights: 'adapter_model.safetensors' } as const;

/** Read a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors). */
export async function readPeftAdapter(dir: string): Promise<LoraAdapter> {
  const configFile = path.join(dir, PEFT_ADAPTER_FILES.config);
  const weightsFile = path.join(dir, PEFT_ADAPTER_FILES.weights);
  const text = (await readUserFile(configFile, { what: 'adapter config', maxBytes: 16 * 1024 * 1024 })).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new FormatError('adapter_config.json is not valid JSON', { cause, details: { file: configFile } });
  }
  const bytes = await readUserFile(weightsFile, { what: 'adapter weights' });
  return parsePeftAdapter(json, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), weightsFile);
}

/** Options of writePeftAdapter. */
export interface WritePeftAdapterOptions {
  /** Replace adapter files already in the folder. Default false (ConflictError). */
  overwrite?: boolean;
}

/** Write a PEFT adapter folder that `PeftModel.from_pretrained` loads; each file is written atomically. */
export async function writePeftAdapter(dir: string, adapter: LoraAdapter, options: WritePeftAdapterOptions = {}): Promise<void> {
  const { config, weights } = serializePeftAdapter(adapter);
  await mkdir(dir, { recursive: true });
  const configFile = path.join(dir, PEFT_ADAPTER_FILES.config);
  const weightsFile = path.join(dir, PEFT_ADAPTER_FILES.weights);
  if (!options.overwrite) {
    for (const file of [configFile, weightsFile]) {
      if (
        await stat(file).then(
          () => true,
          () => false,
        )
      ) {
        throw new ConflictError(`${file} exists; pass overwrite to replace it`, { details: { file } });
      }
    }
  }
  // Weights first: a folder with a config is taken as complete by peft.
  await writeFileAtomic(weightsFile, weights);
  await writeFileAtomic(configFile, `${config}\n`);
}
