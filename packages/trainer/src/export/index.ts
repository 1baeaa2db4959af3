export * from './common.js';
export * from './llama-factory.js';
export * from './ms-swift.js';
export * from './llava.js';
