/**
 * Refusing prompts that cannot fit before the model tokenises them whole: a character bound checked in
 * one pass over the text, then a token count that stops as soon as the context is exceeded. A 19 MiB
 * prompt thus costs a length check, not millions of tokens built and then thrown away.
 */
import type { ChatMessage, Tokenizer, VisionLanguageModel } from '@vlit/core';
import { HttpError } from './errors.js';

/** Prompt characters allowed when nothing better can be derived from the model. */
export const DEFAULT_MAX_PROMPT_CHARS = 1 << 20;

/** Text is counted in pieces of about this many characters, cut at whitespace. */
const PIECE_CHARS = 8192;

/** The limits applied to one model's prompts. */
export interface PromptLimits {
  /** Characters of message text (all text parts together). */
  maxChars: number;
  /** Tokens of message text, when the context and the tokenizer are known. */
  maxTokens?: number;
  tokenizer?: Tokenizer;
}

function isTokenizer(v: unknown): v is Tokenizer {
  const t = v as Partial<Tokenizer> | undefined;
  return typeof t === 'object' && t !== null && typeof t.encode === 'function' && typeof t.idToToken === 'function' && typeof t.vocabSize === 'number';
}

/** The tokenizer and context length a model exposes (a composed model shows both), if any. */
function modelFacts(model: VisionLanguageModel): { tokenizer?: Tokenizer; maxContext?: number } {
  const m = model as { tokenizer?: unknown; languageModel?: { maxContext?: unknown } };
  const tokenizer = isTokenizer(m.tokenizer) ? m.tokenizer : undefined;
  const ctx = m.languageModel?.maxContext;
  return { ...(tokenizer ? { tokenizer } : {}), ...(typeof ctx === 'number' && Number.isInteger(ctx) && ctx > 0 ? { maxContext: ctx } : {}) };
}

/**
 * The longest vocabulary entry, in UTF-16 units: no token covers more characters of the input than its
 * own string holds (byte-level entries spell one character per byte, which is never fewer), so
 * `tokens >= chars / maxCharsPerToken`. Tokenizers with an unknown-word token are the exception: their
 * unknown token can swallow a word of any length, and the bound is then a policy, not a proof.
 */
export function maxCharsPerToken(tokenizer: Tokenizer): number {
  let longest = 1;
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const t = tokenizer.idToToken(id);
    if (t !== undefined && t.length > longest) longest = t.length;
  }
  return longest;
}

/** Limits for `model`: explicit options win, else derived from the model's context and tokenizer. */
export function promptLimitsFor(model: VisionLanguageModel, options: { maxPromptChars?: number; maxPromptTokens?: number }): PromptLimits {
  const facts = modelFacts(model);
  const maxTokens = options.maxPromptTokens ?? facts.maxContext;
  let maxChars = options.maxPromptChars;
  if (maxChars === undefined) {
    maxChars = maxTokens !== undefined && facts.tokenizer ? maxTokens * maxCharsPerToken(facts.tokenizer) : DEFAULT_MAX_PROMPT_CHARS;
  }
  return { maxChars, ...(maxTokens !== undefined ? { maxTokens } : {}), ...(facts.tokenizer ? { tokenizer: facts.tokenizer } : {}) };
}

function texts(messages: readonly ChatMessage[]): string[] {
  const out: string[] = [];
  for (const m of messages) {
    if (typeof m.content === 'string') out.push(m.content);
    else for (const p of m.content) if (p.type === 'text') out.push(p.text);
  }
  return out;
}

function tooLong(message: string): HttpError {
  return new HttpError(400, 'invalid_request_error', 'context_length_exceeded', message, 'messages');
}

/**
 * Throw 400 `context_length_exceeded` when the messages cannot fit. The token count is a lower bound on
 * the prompt's tokens (the template and images only add to it): each piece is counted alone, and each
 * cut between pieces is allowed to have added one token, so a prompt that fits is never refused here.
 */
export function checkPromptLength(messages: readonly ChatMessage[], limits: PromptLimits): void {
  const parts = texts(messages);
  let chars = 0;
  for (const t of parts) chars += t.length;
  if (chars > limits.maxChars) {
    throw tooLong(`the messages hold ${chars} characters of text, more than this server accepts for the model (${limits.maxChars})`);
  }
  const { tokenizer, maxTokens } = limits;
  if (!tokenizer || maxTokens === undefined) return;
  let tokens = 0;
  let pieces = 0;
  for (const text of parts) {
    for (let from = 0; from < text.length; ) {
      let to = Math.min(text.length, from + PIECE_CHARS);
      if (to < text.length) {
        // Cut just before whitespace, where pre-tokenizers split anyway, so the pieces count as the whole does.
        const ws = text.slice(from + (PIECE_CHARS >> 1), to).search(/\s(?=\S*$)/);
        if (ws >= 0) to = from + (PIECE_CHARS >> 1) + ws;
      }
      tokens += tokenizer.encode(text.slice(from, to), { addSpecialTokens: false }).ids.length;
      pieces++;
      from = to;
      if (tokens - pieces > maxTokens) {
        throw tooLong(`the messages hold more than ${maxTokens} tokens of text, more than the model's context (${maxTokens})`);
      }
    }
  }
}
