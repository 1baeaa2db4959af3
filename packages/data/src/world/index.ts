/** The synthetic visual world: seeded scenes of shapes and words, their annotations and a held-out SEED-Bench-format benchmark. */
export * from './vocabulary.js';
export { polygonArea as worldPolygonArea, shapeOutline as worldShapeOutline, type Point as WorldPoint } from './geometry.js';
export * from './scene.js';
export * from './questions.js';
export * from './annotations.js';
export * from './benchmark.js';
