import type { ChatCompletionMessage, ChatCompletionParams } from './prompt.js';

/** JSON with object keys sorted at every level, so equal values always serialise to equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** SHA-256 of a UTF-8 string as lower-case hex, through WebCrypto (Node 20 and browsers). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The cache key and provenance hash of a request: sha256 of the canonical JSON of model, messages and params. */
export function promptHash(request: { model: string; messages: readonly ChatCompletionMessage[]; params?: ChatCompletionParams }): Promise<string> {
  return sha256Hex(canonicalJson({ model: request.model, messages: request.messages, params: request.params ?? {} }));
}
