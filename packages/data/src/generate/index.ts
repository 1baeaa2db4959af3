/** Self-Instruct generation: LLM-written conversations from image annotations over OpenAI-compatible endpoints. */
export * from './generator.js';
export * from './hash.js';
export * from './parse.js';
export * from './prompt.js';
