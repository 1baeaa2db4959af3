export * from './chat-completions.js';
export * from './limiter.js';
export * from './messages.js';
export * from './sse.js';
