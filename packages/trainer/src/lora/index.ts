export * from './targets.js';
export * from './adapter.js';
