/**
 * Quality control, data-quality metrics, mixing/sampling and the COCO-style fixture generator.
 * Browser-safe: images come through an injected ImageCodec and loader; file helpers are in `./node.ts`.
 */
export * from './types.js';
export * from './pipeline.js';
export * from './text.js';
export * from './vocabulary/coco-categories.js';
export * from './minhash.js';
export * from './image-hash.js';
export * from './language.js';
export * from './checks.js';
export * from './embedder.js';
export * from './relevance.js';
export * from './filters/structure.js';
export * from './filters/images.js';
export * from './filters/duplicates.js';
export * from './filters/annotations.js';
export * from './filters/text-bounds.js';
export * from './filters/relevance.js';
export * from './filters/defaults.js';
export * from './fixtures/coco-fixture.js';
export * from './metrics/metrics.js';
export * from './metrics/render.js';
export * from './mix/index.js';
