import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// Tests spawn processes (the built CLI, the reference Python), run real onnxruntime sessions and read
// real files; on a busy 2-core machine these take far longer than vitest's 5 s default. Tests never
// assert wall-clock time, so the limits only stop a hung test.
// __VLIT_VERSION__ is injected from package.json exactly as tsup.base.ts does for the build.
const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };
export default defineConfig({
  define: { __VLIT_VERSION__: JSON.stringify(version) },
  test: { testTimeout: 120_000, hookTimeout: 120_000 },
});
