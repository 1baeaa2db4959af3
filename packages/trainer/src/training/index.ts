export * from './naming.js';
export * from './training-graph.js';
export * from './feeds.js';
