export * from './order.js';
export * from './collate.js';
