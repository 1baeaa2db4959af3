/**
 * @vlit/test-kit: helpers shared by the Vlit packages' tests (private, never published). The root
 * entry is browser-safe plain math; `@vlit/test-kit/node` adds the runtime pair and the PNG writer.
 * @packageDocumentation
 */
export * from './reference.js';
export * from './diff.js';
