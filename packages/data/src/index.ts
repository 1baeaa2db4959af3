/**
 * @vlit/data: VLIT datasets in every dialect, annotation adaption, Self-Instruct generation,
 * quality control, data-quality metrics, balanced mixing and sharding. Node-only file I/O is at
 * `@vlit/data/node`.
 * @packageDocumentation
 */
export * from './annotations.js';
export * from './io/index.js';
export * from './adapt/index.js';
export * from './generate/index.js';
export * from './quality/index.js';
export * from './world/index.js';
