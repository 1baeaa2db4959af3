/** Annotation Adaption: image annotations rewritten into instruction records with @vlit/templates pools. */
export * from './adapt.js';
export * from './answers.js';
export * from './geometry.js';
