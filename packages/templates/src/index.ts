/**
 * @vlit/templates: instruction template pools, chat templates (Hugging Face Jinja + built-ins),
 * tokenizers, conversation encoding with label masks from rendered-segment offsets, truncation,
 * packing and the template linter. Browser-safe; file loading lives at `@vlit/templates/node`.
 * @packageDocumentation
 */
export * from './instruction-pools.js';
export * from './chat-template.js';
export * from './jinja-template.js';
export * from './hf-tokenizer.js';
export * from './word-level-tokenizer.js';
export * from './encode.js';
export * from './pack.js';
export * from './lint.js';
export { messageText } from './content.js';
