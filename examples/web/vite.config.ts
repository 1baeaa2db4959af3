import { defineConfig } from 'vite';

// Cross-origin isolation (COOP + COEP) lets onnxruntime-web run its wasm kernels on several threads.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  base: './',
  server: { headers: isolation },
  preview: { headers: isolation },
  // onnxruntime-web finds its .wasm beside its own module; pre-bundling would move it.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: {
    target: 'es2022',
    // onnxruntime-web's wasm threads load this bundle again in workers, where Vite's modulepreload polyfill
    // (which reads `document` when the bundle starts) would throw and leave the threads hanging.
    modulePreload: { polyfill: false },
  },
});
