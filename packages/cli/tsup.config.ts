import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/cli.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // The bin entry must be executable as `vlit`; a hashbang is harmless in the other (ESM) chunks.
  banner: { js: '#!/usr/bin/env node' },
});
