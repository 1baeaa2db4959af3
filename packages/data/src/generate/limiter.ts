// The concurrency limiter is core's (the chat-completions client uses it); kept here by name.
export { createConcurrencyLimiter, type ConcurrencyLimiter } from '@vlit/core';
