/**
 * @vlit/templates/node: load Hugging Face tokenizer files and chat templates from disk.
 * @packageDocumentation
 */
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, NotFoundError, isVlitError, type Tokenizer } from '@vlit/core';
import { createHfTokenizer, type TokenizerConfig } from './hf-tokenizer.js';
import { chatTemplateFromConfig, type ChatTemplateFromConfigOptions } from './jinja-template.js';
import type { SegmentedChatTemplate } from './chat-template.js';
import { createWordLevelTokenizer, type WordLevelTokenizer } from './word-level-tokenizer.js';

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new NotFoundError(`cannot read ${file}`, { cause, details: { file } });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new FormatError(`${file} is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      details: { file },
    });
  }
}

/** A tokenizer loaded from a directory, with its parsed tokenizer_config.json (empty when absent). */
export interface LoadedTokenizer {
  tokenizer: Tokenizer;
  config: TokenizerConfig;
  /** The directory's chat template, when tokenizer_config.json has one. */
  chatTemplate?: SegmentedChatTemplate;
}

/** Load `tokenizer.json` (+ `tokenizer_config.json` when present) from a directory. */
export async function loadTokenizerDir(dir: string, templateOptions: ChatTemplateFromConfigOptions = {}): Promise<LoadedTokenizer> {
  const tokenizerFile = join(dir, 'tokenizer.json');
  const configFile = join(dir, 'tokenizer_config.json');
  const tokenizerJson = await readJson(tokenizerFile);
  const config = (existsSync(configFile) ? await readJson(configFile) : {}) as TokenizerConfig;
  const tokenizer = createHfTokenizer({ tokenizerJson, tokenizerConfig: config, source: tokenizerFile });
  const result: LoadedTokenizer = { tokenizer, config };
  if (config.chat_template !== undefined) {
    try {
      result.chatTemplate = chatTemplateFromConfig(config, { name: `hf:${dir}`, ...templateOptions });
    } catch (err) {
      if (isVlitError(err, 'VLIT_FORMAT'))
        throw new FormatError(String(err.details.reason ?? err.message), { cause: err, details: { ...err.details, file: configFile } });
      throw err;
    }
  }
  return result;
}

/** Load the chat template of a tokenizer_config.json file. */
export async function loadChatTemplate(configFile: string, options: ChatTemplateFromConfigOptions = {}): Promise<SegmentedChatTemplate> {
  const config = await readJson(configFile);
  try {
    return chatTemplateFromConfig(config, { name: configFile, ...options });
  } catch (err) {
    if (isVlitError(err, 'VLIT_FORMAT'))
      throw new FormatError(String(err.details.reason ?? err.message), { cause: err, details: { ...err.details, file: configFile } });
    throw err;
  }
}

/** Load a word-level tokenizer.json written by WordLevelTokenizer.toJson(). */
export async function loadWordLevelTokenizer(file: string): Promise<WordLevelTokenizer> {
  const json = await readJson(file);
  try {
    return createWordLevelTokenizer(json);
  } catch (err) {
    if (isVlitError(err, 'VLIT_FORMAT')) throw new FormatError(err.message, { cause: err, details: { ...err.details, file } });
    throw err;
  }
}

/** Write a word-level tokenizer as a standard tokenizer.json. */
export async function saveWordLevelTokenizer(tokenizer: WordLevelTokenizer, file: string): Promise<void> {
  await writeFile(file, JSON.stringify(tokenizer.toJson(), null, 2) + '\n');
}
