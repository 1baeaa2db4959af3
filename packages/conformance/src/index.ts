/**
 * @vlit/conformance: the suite every Vlit runtime must pass (written once, run by each backend).
 * @packageDocumentation
 */
export * from './cases.js';
export * from './suite.js';
export * from './reference.js';
