/**
 * Turning a request's messages into token ids with image spans: the generation prompt (rendered with
 * the template's generation prompt, as inference sees it) and scoring sequences (the candidate as the
 * last assistant turn, encoded by @vlit/templates exactly as training encodes it, so its labels are
 * the tokens the candidate is scored on).
 */
import { FormatError, InvalidArgumentError, countMessageImages, type ChatMessage, type ChatTemplate, type RenderOptions, type Tokenizer } from '@vlit/core';
import { encodeConversation } from '@vlit/templates';
import type { ImageSize } from '@vlit/core';
import type { SpliceSpan } from './splice.js';

/** Ids of a prompt or scoring sequence with the image spans already expanded. */
export interface EncodedSequence {
  ids: number[];
  imageSpans: SpliceSpan[];
  /** Rendered text (image placeholders not expanded). */
  text: string;
}

/** A scoring sequence: the sequence plus which positions hold the candidate's tokens. */
export interface ScoringSequence extends EncodedSequence {
  /** Token id where the candidate is scored (its answer and end-of-turn marker), -100 elsewhere. */
  labels: number[];
}

/** What prompt encoding needs. */
export interface PromptEncoding {
  template: ChatTemplate;
  tokenizer: Tokenizer;
  imageTokenId: number;
  /** Visual tokens the language model sees for image `index` (already checked to fit). */
  imageTokens: (size: ImageSize, index: number) => number;
  renderOptions?: RenderOptions;
}

const IGNORE = -100;

/** Count image placeholders over all messages and check them against the images given. */
export function checkImageCount(messages: readonly ChatMessage[], images: number): void {
  const placeholders = messages.reduce((n, m) => n + countMessageImages(m), 0);
  if (placeholders !== images) {
    throw new InvalidArgumentError(`${images} image(s) given but the messages hold ${placeholders} image placeholder(s)`, {
      details: { field: 'images', left: images, right: placeholders },
    });
  }
}

/** Render messages with the generation prompt, tokenize, and expand each image token to its visual tokens. */
export function encodeGenerationPrompt(messages: readonly ChatMessage[], sizes: readonly ImageSize[], enc: PromptEncoding): EncodedSequence {
  checkImageCount(messages, sizes.length);
  const text = enc.template.render(messages, { ...enc.renderOptions, addGenerationPrompt: true });
  const raw = enc.tokenizer.encode(text, { addSpecialTokens: false }).ids;
  const found = raw.reduce((n, t) => n + (t === enc.imageTokenId ? 1 : 0), 0);
  if (found !== sizes.length) {
    throw new FormatError(
      `${sizes.length} image(s) but ${found} '${enc.template.imageToken}' token(s) after tokenization (the image token must not appear in message text)`,
      { details: { field: 'images', left: sizes.length, right: found } },
    );
  }
  const ids: number[] = [];
  const imageSpans: SpliceSpan[] = [];
  let imageIndex = 0;
  for (const t of raw) {
    if (t !== enc.imageTokenId) {
      ids.push(t);
      continue;
    }
    const count = enc.imageTokens(sizes[imageIndex], imageIndex);
    imageSpans.push({ imageIndex, start: ids.length, end: ids.length + count });
    for (let k = 0; k < count; k++) ids.push(t);
    imageIndex++;
  }
  return { ids, imageSpans, text };
}

/** Strip per-turn training flags so that only the candidate is scored. */
function plain(m: ChatMessage): ChatMessage {
  return { role: m.role, content: m.content };
}

/**
 * Encode messages + the candidate as the final assistant turn with @vlit/templates' encodeConversation;
 * the candidate's trained tokens (its text and the template's end-of-turn marker) are the scored ones.
 */
export function encodeScoringSequence(messages: readonly ChatMessage[], candidate: string, sizes: readonly ImageSize[], enc: PromptEncoding): ScoringSequence {
  checkImageCount(messages, sizes.length);
  const record = {
    id: 'score',
    images: sizes.map((_, i) => `image-${i}`),
    messages: [...messages.map(plain), { role: 'assistant' as const, content: candidate, train: true }],
  };
  const sample = encodeConversation(record, {
    template: enc.template,
    tokenizer: enc.tokenizer,
    imageTokens: (_ref, i) => enc.imageTokens(sizes[i], i),
    assistantTurns: 'flagged',
    ignoreIndex: IGNORE,
    ...(enc.renderOptions ? { renderOptions: enc.renderOptions } : {}),
  });
  return {
    ids: sample.inputIds,
    labels: sample.labels,
    imageSpans: sample.imageSpans,
    text: sample.text,
  };
}

/** Label value of positions that are not scored. */
export const SCORE_IGNORE_INDEX = IGNORE;
