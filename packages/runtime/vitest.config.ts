import { defineConfig } from 'vitest/config';

// Tests spawn processes (the built CLI, the reference Python), run real onnxruntime sessions and read
// real files; on a busy 2-core machine these take far longer than vitest's 5 s default. Tests never
// assert wall-clock time, so the limits only stop a hung test.
export default defineConfig({
  test: { testTimeout: 120_000, hookTimeout: 120_000 },
});
