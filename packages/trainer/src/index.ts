/**
 * @vlit/trainer: optimisation (AdamW, clipping, schedules, accumulation) matching PyTorch, seeded
 * length-bucketed data order, stage recipes with LLaVA's built in, PEFT LoRA adapters and merging.
 * Files (adapter folders, run checkpoints, metrics) are at `@vlit/trainer/node`.
 * @packageDocumentation
 */
export * from './patterns.js';
export * from './optim/index.js';
export * from './lora/index.js';
export * from './data/index.js';
export * from './recipe.js';
export * from './metrics.js';
export * from './training/index.js';
export * from './engine/index.js';
export * from './distributed/errors.js';
export * from './distributed/accelerate.js';
