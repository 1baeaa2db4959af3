/** Replaced by this package's package.json `version` at build time (tsup.base.ts) and in tests (vitest.config.ts). */
declare const __VLIT_VERSION__: string | undefined;

/** The Vlit version recorded in every reproducibility manifest: @vlit/eval's package.json version, injected at build time. */
export const VLIT_VERSION: string = typeof __VLIT_VERSION__ === 'string' ? __VLIT_VERSION__ : '0.0.0-unbuilt';
