/**
 * @vlit/data/node: file-system entry points (streaming files, dataset roots, resumable jobs).
 * @packageDocumentation
 */
export * from './io/node.js';
export * from './io/jsonl-file.js';
export * from './generate/node.js';
export * from './quality/node.js';
export * from './world/node.js';
