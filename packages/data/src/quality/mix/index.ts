export * from './plan.js';
export * from './sample.js';
export * from './export.js';
export * from './shard.js';
