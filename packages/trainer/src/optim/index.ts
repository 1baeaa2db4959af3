export * from './adamw.js';
export * from './clip.js';
export * from './schedule.js';
export * from './accumulate.js';
export * from './state-io.js';
