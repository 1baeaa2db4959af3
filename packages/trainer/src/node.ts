/**
 * `@vlit/trainer/node`: node-only file I/O of the trainer: PEFT adapter folders, run checkpoints, the
 * metrics JSONL writer.
 */
export * from './lora/adapter-files.js';
export * from './checkpoint/run-checkpoint.js';
export * from './checkpoint/metrics-writer.js';
export * from './engine/directory-store.js';
export * from './distributed/index.js';
export * from './export/index.js';
export * from './engine/llava-folder.js';
