import { defineConfig } from 'vitest/config';

// Real onnxruntime sessions (the PP-OCR recogniser on wasm takes seconds) and Python reference runs
// need more than vitest's 5 s default on a loaded 2-core CI machine; tests never assert time.
export default defineConfig({
  test: { testTimeout: 120_000, hookTimeout: 120_000 },
});
