export * from './session.js';
export * from './train-stage.js';
