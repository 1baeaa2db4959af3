/**
 * One call from a Hugging Face checkpoint folder to a ready VisionLanguageModel: the model's parts, its
 * tokenizer (tokenizer.json + tokenizer_config.json), its chat template (chat_template.jinja,
 * chat_template.json or tokenizer_config.json) and its image processor (preprocessor_config.json or
 * processor_config.json), all from the same folder. Node-only.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CompatibilityError, FormatError, NotFoundError, UnsupportedError, type Tokenizer } from '@vlit/core';
import { openCheckpointFolder } from '@vlit/core/node';
import { chatTemplateFromConfig, createHfTokenizer, specialTokenText, type SegmentedChatTemplate } from '@vlit/templates';
import { composeVisionLanguageModel, type ComposeOptions, type ComposedVisionLanguageModel } from '../compose/compose.js';
import { SUPPORTED_LLAVA_MODEL_TYPES } from './llava-config.js';
import { createLlavaNextVision, createPassThroughConnector, type LlavaNextVision } from './llava-next.js';
import { loadLlavaParts, type LlavaParts, type LoadLlavaPartsOptions } from './llava.js';

/** The model types loadVisionLanguageModel builds. */
export const SUPPORTED_VLM_MODEL_TYPES: readonly string[] = [...SUPPORTED_LLAVA_MODEL_TYPES];

/** A folder's tokenizer and chat template. */
export interface CheckpointChat {
  tokenizer: Tokenizer;
  /** The chat template, with BOS in front when the tokenizer adds one (as transformers' processor does). */
  template: SegmentedChatTemplate;
  /** The image placeholder token (processor_config.json / tokenizer_config.json `image_token`, default `<image>`). */
  imageToken: string;
  /** The chat template's Jinja source. */
  templateSource: string;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function readJsonFile(file: string): Promise<Record<string, unknown> | undefined> {
  const text = await readText(file);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw new FormatError(`${file} is not valid JSON`, { cause, details: { file } });
  }
}

/**
 * The template as transformers' processor applies it: the processor tokenizes the rendered prompt with the
 * tokenizer's special tokens unless the prompt already starts with BOS, so a tokenizer that adds BOS (Llama's)
 * puts one in front. The composed model tokenizes without special tokens, so the BOS goes into the text.
 */
function withProcessorBos(template: SegmentedChatTemplate, tokenizer: Tokenizer): SegmentedChatTemplate {
  const bos = tokenizer.specialTokens.bos;
  const bosId = bos === undefined ? undefined : tokenizer.tokenToId(bos);
  if (bos === undefined || bosId === undefined) return template;
  const probe = 'a';
  const withSpecial = tokenizer.encode(probe, { addSpecialTokens: true }).ids;
  const without = tokenizer.encode(probe, { addSpecialTokens: false }).ids;
  if (withSpecial[0] !== bosId || without[0] === bosId) return template;
  return {
    name: template.name,
    imageToken: template.imageToken,
    imageText: template.imageText,
    render(messages, options) {
      const text = template.render(messages, options);
      return text.startsWith(bos) ? text : bos + text;
    },
    renderSegments(messages, options) {
      const segments = template.renderSegments(messages, options);
      return segments[0]?.text.startsWith(bos) ? segments : [{ text: bos, messageIndex: -1, trainable: false }, ...segments];
    },
  };
}

/** Whether a Jinja chat template iterates content parts (`item['type']`) rather than taking a string. */
function usesContentParts(source: string): boolean {
  return /\[\s*['"]type['"]\s*\]|\.type\b/.test(source);
}

/**
 * The tokenizer and chat template of a checkpoint folder. The template comes from chat_template.jinja
 * (transformers 5), chat_template.json or tokenizer_config.json's `chat_template`; message content is
 * handed to it as parts when it reads `item['type']`. A folder without tokenizer.json or a chat template is a
 * NotFoundError naming the file.
 */
export async function loadCheckpointChat(dir: string, options: { contentFormat?: 'string' | 'parts' } = {}): Promise<CheckpointChat> {
  const tokenizerFile = join(dir, 'tokenizer.json');
  const tokenizerJson = await readJsonFile(tokenizerFile);
  if (!tokenizerJson) throw new NotFoundError(`tokenizer.json not found in ${dir}`, { details: { file: tokenizerFile } });
  const tokenizerConfig = (await readJsonFile(join(dir, 'tokenizer_config.json'))) ?? {};
  const processor = (await readJsonFile(join(dir, 'processor_config.json'))) ?? {};
  const tokenizer = createHfTokenizer({ tokenizerJson, tokenizerConfig, source: tokenizerFile });
  const jinja = await readText(join(dir, 'chat_template.jinja'));
  const fromJson = (await readJsonFile(join(dir, 'chat_template.json')))?.chat_template;
  const fromConfig = tokenizerConfig.chat_template;
  const source = jinja ?? (typeof fromJson === 'string' ? fromJson : undefined) ?? (typeof fromConfig === 'string' ? fromConfig : undefined);
  if (source === undefined) {
    throw new NotFoundError(`${dir} has no chat template (chat_template.jinja, chat_template.json or tokenizer_config.json chat_template)`, {
      details: { file: join(dir, 'chat_template.jinja'), field: 'chat_template' },
    });
  }
  const imageToken = specialTokenText(processor.image_token) ?? specialTokenText(tokenizerConfig.image_token) ?? '<image>';
  const template = withProcessorBos(
    chatTemplateFromConfig(
      { ...tokenizerConfig, chat_template: source },
      { name: `hf:${dir}`, imageToken, contentFormat: options.contentFormat ?? (usesContentParts(source) ? 'parts' : 'string') },
    ),
    tokenizer,
  );
  return { tokenizer, template, imageToken, templateSource: source };
}

/** Options of loadVisionLanguageModel. */
export interface LoadVisionLanguageModelOptions extends LoadLlavaPartsOptions {
  /** How message content reaches the chat template (default: parts when the template reads `item['type']`). */
  contentFormat?: 'string' | 'parts';
  /** Compose settings (stop tokens, generation defaults, render options, id). */
  compose?: Pick<ComposeOptions, 'id' | 'stopTokenIds' | 'renderOptions' | 'defaults' | 'scoreBatchSize'>;
}

/** A VisionLanguageModel loaded from a checkpoint folder, with its parts. */
export interface CheckpointVisionLanguageModel extends ComposedVisionLanguageModel {
  readonly checkpointDir: string;
  readonly parts: LlavaParts;
  /** LLaVA-NeXT's image side (tower + projector + packing), when the folder is llava_next. */
  readonly nextVision?: LlavaNextVision;
  /** Release every session. */
  dispose(): Promise<void>;
}

/**
 * Load a LLaVA or LLaVA-NeXT checkpoint folder as a ready VisionLanguageModel: parts, tokenizer, chat template
 * and image processor from the folder; images expand to as many placeholder tokens as transformers' processor
 * gives them. An unsupported model_type is an UnsupportedError naming it and listing the supported ones.
 */
export async function loadVisionLanguageModel(dir: string, options: LoadVisionLanguageModelOptions): Promise<CheckpointVisionLanguageModel> {
  const folder = await openCheckpointFolder(dir);
  const modelType = folder.config.model_type;
  await folder.close();
  if (!SUPPORTED_VLM_MODEL_TYPES.includes(String(modelType))) {
    throw new UnsupportedError(
      `${join(folder.dir, 'config.json')}: model_type '${String(modelType)}' is not a supported vision-language model; supported: ${SUPPORTED_VLM_MODEL_TYPES.join(', ')}`,
      {
        details: { file: join(folder.dir, 'config.json'), field: 'model_type', modelType, supported: [...SUPPORTED_VLM_MODEL_TYPES] },
      },
    );
  }
  const chat = await loadCheckpointChat(folder.dir, { contentFormat: options.contentFormat });
  const parts = await loadLlavaParts(folder.dir, options);
  try {
    const placeholder = chat.tokenizer.tokenToId(chat.imageToken);
    if (placeholder !== parts.spec.imageTokenId) {
      throw new CompatibilityError(
        `the tokenizer gives '${chat.imageToken}' id ${String(placeholder)} but config.json's image_token_index is ${parts.spec.imageTokenId}`,
        { details: { file: join(folder.dir, 'config.json'), field: 'image_token_index', left: placeholder, right: parts.spec.imageTokenId } },
      );
    }
    let nextVision: LlavaNextVision | undefined;
    const common = { languageModel: parts.languageModel, template: chat.template, tokenizer: chat.tokenizer, ...options.compose };
    let composed: ComposedVisionLanguageModel;
    if (parts.spec.modelType === 'llava_next') {
      nextVision = createLlavaNextVision({
        tower: parts.tower,
        projector: parts.projector,
        imageNewline: parts.imageNewline!,
        gridPinpoints: parts.spec.gridPinpoints!,
      });
      composed = composeVisionLanguageModel({ ...common, encoder: nextVision, connector: createPassThroughConnector(parts.spec.text.hiddenSize) });
    } else {
      composed = composeVisionLanguageModel({ ...common, encoder: parts.tower, connector: parts.projector });
    }
    return Object.assign(composed, { checkpointDir: folder.dir, parts, ...(nextVision ? { nextVision } : {}), dispose: () => parts.dispose() });
  } catch (err) {
    await parts.dispose();
    throw err;
  }
}
