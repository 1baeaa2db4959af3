/**
 * Hugging Face CLIP / SigLIP towers built from config.json + weights (browser-safe part; the folder
 * loaders live in `./node.ts`).
 * @packageDocumentation
 */
export * from './config.js';
export * from './weights.js';
export * from './graph.js';
export * from './vision-encoder.js';
export * from './dual-encoder.js';
