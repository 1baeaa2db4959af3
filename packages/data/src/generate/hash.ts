import { canonicalJson, sha256Hex } from '@vlit/core';
import type { ChatCompletionMessage, ChatCompletionParams } from './prompt.js';

/** The cache key and provenance hash of a request: sha256 of the canonical JSON of model, messages and params. */
export function promptHash(request: { model: string; messages: readonly ChatCompletionMessage[]; params?: ChatCompletionParams }): string {
  return sha256Hex(canonicalJson({ model: request.model, messages: request.messages, params: request.params ?? {} }));
}
