// Native vs web runtime on the same MLP projector graph, and native matmul GFLOP/s vs plain TypeScript.
// Every ratio is against a baseline measured in this same run, on this machine.
import os from 'node:os';
import { createRng, createTensor } from '@vlit/core';
import { createGraph, encodeModel } from '@vlit/graph';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createWebRuntime } from '@vlit/runtime/web';

const threads = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length));
const rng = createRng('bench-runtime');

function randomTensor(dims, std) {
  const t = createTensor('float32', dims);
  rng.fillNormal(t.data, std);
  return t;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(session, feeds, warmup, runs) {
  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
  }
  return median(times);
}

// --- 1. MLP projector, 1024 -> 4096 -> 1024 over 576 tokens (LLaVA-1.5 shape at a smaller width)
const [tokens, dIn, dHidden, dOut] = [576, 1024, 4096, 1024];
const g = createGraph({ name: 'mlp-projector' });
const x = g.input('features', 'float32', ['tokens', dIn]);
const h = g.gelu(g.add(g.matMul(x, g.initializer('w1', randomTensor([dIn, dHidden], 1 / 32))), g.initializer('b1', randomTensor([dHidden], 0.1))));
g.output(g.add(g.matMul(h, g.initializer('w2', randomTensor([dHidden, dOut], 1 / 64))), g.initializer('b2', randomTensor([dOut], 0.1))), 'projected');
const mlp = encodeModel(g.toModel());
const feeds = { features: randomTensor([tokens, dIn], 1) };
const flopsMlp = 2 * tokens * dIn * dHidden + 2 * tokens * dHidden * dOut;

const nativeRt = createNodeRuntime({ session: { intraOpThreads: threads } });
const webRt = createWebRuntime({ wasm: { numThreads: threads } });
const nativeSession = await nativeRt.backend.createSession(mlp);
const webSession = await webRt.backend.createSession(mlp);
const nativeMs = await time(nativeSession, feeds, 2, 10);
const webMs = await time(webSession, feeds, 2, 10);
await nativeSession.release();
await webSession.release();

console.log(`MLP projector ${dIn}->${dHidden}->${dOut}, ${tokens} tokens (${(flopsMlp / 1e9).toFixed(1)} GFLOP), ${threads} thread(s), median of 10:`);
console.table([
  { runtime: 'onnxruntime-node (native)', 'latency ms': +nativeMs.toFixed(1), 'GFLOP/s': +(flopsMlp / nativeMs / 1e6).toFixed(1), 'x native': 1 },
  {
    runtime: 'onnxruntime-web (wasm)',
    'latency ms': +webMs.toFixed(1),
    'GFLOP/s': +(flopsMlp / webMs / 1e6).toFixed(1),
    'x native': +(webMs / nativeMs).toFixed(2),
  },
]);

// --- 2. One matmul [1024 x 1024] x [1024 x 4096]: native vs plain TypeScript loops
const [m, k, n] = [1024, 1024, 4096];
const a = randomTensor([m, k], 1);
const b = randomTensor([k, n], 1);
const gm = createGraph({ name: 'matmul' });
gm.output(gm.matMul(gm.input('a', 'float32', [m, k]), gm.initializer('b', b)), 'c');
const mmSession = await nativeRt.backend.createSession(encodeModel(gm.toModel()));
const mmMs = await time(mmSession, { a }, 2, 5);
const native = await mmSession.run({ a });
await mmSession.release();

function tsMatmul(A, B) {
  // i-k-j loop order: the cache-friendly form a careful TypeScript author would write.
  const C = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = A[i * k + p];
      const row = p * n;
      const out = i * n;
      for (let j = 0; j < n; j++) C[out + j] += av * B[row + j];
    }
  }
  return C;
}
const t0 = performance.now();
const plain = tsMatmul(a.data, b.data);
const tsMs = performance.now() - t0;
let maxDiff = 0;
for (let i = 0; i < plain.length; i++) maxDiff = Math.max(maxDiff, Math.abs(plain[i] - native.c.data[i]));
const flops = 2 * m * k * n;
console.log(`\nMatMul [${m}x${k}] x [${k}x${n}] (${(flops / 1e9).toFixed(1)} GFLOP); results agree to ${maxDiff.toExponential(1)}:`);
console.table([
  {
    implementation: 'onnxruntime-node MatMul',
    ms: +mmMs.toFixed(1),
    'GFLOP/s': +(flops / mmMs / 1e6).toFixed(1),
    'x plain TS speed': +(tsMs / mmMs).toFixed(1),
  },
  { implementation: 'plain TypeScript loops (1 run)', ms: +tsMs.toFixed(0), 'GFLOP/s': +(flops / tsMs / 1e6).toFixed(2), 'x plain TS speed': 1 },
]);
