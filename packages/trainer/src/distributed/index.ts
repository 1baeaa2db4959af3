export * from './errors.js';
export * from './job.js';
export * from './accelerate.js';
export * from './torchrun.js';
