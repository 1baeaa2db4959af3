/**
 * @vlit/eval: benchmarks (multiple choice by likelihood or generation, VQA, captioning, POPE),
 * metrics that match the reference implementations, answer extraction, judges, runs with caches
 * and manifests, and reports (JSON, markdown, HTML with charts). Browser-safe; file I/O is at
 * `@vlit/eval/node`.
 * @packageDocumentation
 */
export { VLIT_VERSION } from './version.js';
export { bytesToBase64, base64ToBytes } from './sha256.js';

export * from './metrics/vqa.js';
export * from './metrics/ptb-tokenize.js';
export * from './metrics/caption.js';
export * from './metrics/pope.js';

export * from './mc/extract.js';
export * from './mc/datasets.js';
export * from './items/annotation-items.js';
export * from './formats.js';

export * from './judge.js';

export * from './run/types.js';
export * from './run/cache.js';
export * from './run/manifest.js';
export * from './run/benchmarks.js';
export * from './run/evaluate.js';
export { createImageLoader } from './images.js';

export * from './report/markdown.js';
export * from './report/json.js';
export * from './report/charts.js';
export * from './report/html.js';
