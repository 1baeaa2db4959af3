/**
 * @vlit/core/openai: the one client of OpenAI-compatible chat-completions endpoints, its wire schema
 * (shared with Vlit's own server), the concurrency limiter, server-sent event parsing and the
 * conversion of Vlit messages into chat-completions messages. Browser-safe.
 * @packageDocumentation
 */
export * from './wire.js';
export * from './chat-completions.js';
export * from './limiter.js';
export * from './messages.js';
export * from './sse.js';
