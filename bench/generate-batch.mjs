// Batched generation with the KV cache against batch-1 generation, on a tiny Llama-style decoder built
// by Vlit (seeded weights, onnxruntime-node): the same 8 prompts (lengths 12..61 tokens), 48 new tokens
// each, greedy, no stop tokens. Batch 1 runs `generate` per prompt; batch 4 and 8 run `generateBatch`
// (left padding, one KV cache for the batch). Every row's tokens are compared with batch 1's, and
// generated tokens/s are reported with the ratio to batch 1 measured in this same run.
// createLlamaDecoder runs the in-place cache protocol (slot buffers, only the step's keys and values
// returned); `tiny-optimum` loads the same tiny weights with the graph Vlit writes to files (Optimum's
// protocol: the whole cache returned and copied every pass), for contrast. A last line per decoder times a
// batch whose rows want 6 to 96 new tokens, with and without dropping finished rows from the batch, and
// batches prefilled in prompt buckets against one padded prompt pass.
// Each decoder runs on one onnxruntime thread; `tiny` runs again with onnxruntime's default thread count
// (BENCH_THREADS=1,2,auto to choose): a batch's larger products can use the second core, a batch-1 pass cannot.
import { availableParallelism, loadavg } from 'node:os';
import {
  buildLlamaOnnx,
  createLlamaDecoder,
  createMemorySource,
  generate,
  generateBatch,
  initLlamaWeights,
  llamaOnnxFiles,
  loadOptimumDecoder,
  tinyLlamaConfig,
} from '@vlit/models';
import { createNodeRuntime } from '@vlit/runtime/node';

// Thread settings per decoder: a number is onnxruntime's intra-op thread count, `auto` leaves it to
// onnxruntime (one thread per core, what a runtime made with createNodeRuntime() gets). By default every
// decoder runs on 1 thread (per-core efficiency) and `tiny`, the decoder of the goal, also with `auto`.
const THREAD_SETTINGS = process.env.BENCH_THREADS?.split(',');
const threadsFor = (name) => THREAD_SETTINGS ?? (name === 'tiny' ? ['1', 'auto'] : ['1']);
const NEW_TOKENS = Number(process.env.BENCH_NEW_TOKENS ?? 48);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 10);
const runtimes = new Map();
function runtimeFor(threads) {
  if (!runtimes.has(threads)) {
    const session = threads === 'auto' ? { interOpThreads: 1 } : { intraOpThreads: Number(threads), interOpThreads: 1 };
    runtimes.set(threads, createNodeRuntime({ session }));
  }
  return runtimes.get(threads);
}
const threadLabel = (threads) => (threads === 'auto' ? `onnxruntime's default threads (${availableParallelism()} cores)` : `${threads} thread(s)`);
// The tiny decoder (the size of the test decoders, where per-step overhead dominates) and a larger one, for contrast.
const CONFIGS = {
  tiny: tinyLlamaConfig({
    hiddenSize: 64,
    vocabSize: 512,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    intermediateSize: 160,
    maxPositionEmbeddings: 512,
  }),
  small: tinyLlamaConfig({
    hiddenSize: 256,
    vocabSize: 8000,
    numHiddenLayers: 4,
    numAttentionHeads: 8,
    numKeyValueHeads: 4,
    intermediateSize: 688,
    maxPositionEmbeddings: 512,
  }),
};
CONFIGS['tiny-optimum'] = CONFIGS.tiny;
const which = (process.env.BENCH_MODELS ?? 'tiny,tiny-optimum,small').split(',');

async function loadModel(name, config, threads) {
  const runtime = runtimeFor(threads);
  if (name !== 'tiny-optimum') return createLlamaDecoder({ backend: runtime.backend, config, seed: 'bench-generate-batch' });
  const weights = initLlamaWeights(config, 'bench-generate-batch');
  const files = llamaOnnxFiles(buildLlamaOnnx(config, weights));
  const model = await loadOptimumDecoder(createMemorySource(files, name), { backend: runtime.backend });
  return Object.assign(model, { weights });
}
const options = { maxNewTokens: NEW_TOKENS, stopTokenIds: [] };

async function bench(name, config, threads) {
  const model = await loadModel(name, config, threads);
  const label = threads === '1' ? name : `${name} (${threads} threads)`;
  // For the breakdown line only: time spent inside model.forward (the loader and its session runs),
  // against the generation loop around it. Two clock reads per forward pass, far below a pass's cost.
  let forwardMs = 0;
  let forwardCalls = 0;
  const forward = model.forward.bind(model);
  model.forward = async (input) => {
    const t = performance.now();
    try {
      return await forward(input);
    } finally {
      forwardMs += performance.now() - t;
      forwardCalls++;
    }
  };
  const prompts = Array.from({ length: 8 }, (_, i) => Array.from({ length: 12 + i * 7 }, (_, j) => (j * 7919 + i * 104729 + 13) % config.vocabSize));

  async function runBatched(size) {
    const out = [];
    for (let start = 0; start < prompts.length; start += size) {
      const chunk = prompts.slice(start, start + size);
      if (size === 1) out.push(await generate(model, { inputIds: chunk[0] }, options));
      else
        out.push(
          ...(await generateBatch(
            model,
            chunk.map((ids) => ({ input: { inputIds: ids }, options })),
          )),
        );
    }
    return out;
  }

  // Warm-up: one pass at each size (session allocation, JIT).
  for (const size of [1, 4, 8]) await runBatched(size);
  // Sizes interleaved within each repeat, best of REPEATS: on a shared machine the load then colours every size alike.
  // CPU time (user + system, onnxruntime's threads included) is reported beside wall time as the steadier measure.
  const results = { 1: { ms: Infinity, cpuMs: Infinity }, 4: { ms: Infinity, cpuMs: Infinity }, 8: { ms: Infinity, cpuMs: Infinity } };
  for (let r = 0; r < REPEATS; r++) {
    for (const size of [1, 4, 8]) {
      forwardMs = 0;
      forwardCalls = 0;
      const f0 = process.resourceUsage().minorPageFault;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = await runBatched(size);
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const res = results[size];
      if (ms < res.ms) res.breakdown = { forwardMs, forwardCalls, faults: process.resourceUsage().minorPageFault - f0 };
      res.ms = Math.min(res.ms, ms);
      res.cpuMs = Math.min(res.cpuMs, (c.user + c.system) / 1000);
      res.out = out;
      res.tokens = out.reduce((n, o) => n + o.tokenIds.length, 0);
    }
  }
  const base = results[1];
  const same = (size) => results[size].out.every((o, i) => o.tokenIds.join(',') === base.out[i].tokenIds.join(','));
  const tokS = (r) => (r.tokens / r.ms) * 1000;
  const cpuTokS = (r) => (r.tokens / r.cpuMs) * 1000;
  const params = Object.values(model.weights).reduce((n, t) => n + t.data.length, 0);
  console.log(
    `\n${label}: Llama-style decoder, hidden ${config.hiddenSize}, ${config.numHiddenLayers} layers, vocab ${config.vocabSize} (${(params / 1e6).toFixed(1)}M parameters), onnxruntime-node, ${threadLabel(threads)}; load average at end ${loadavg()[0].toFixed(1)}.`,
  );
  console.log(`8 prompts of 12..61 tokens, ${NEW_TOKENS} new tokens each, greedy; best of ${REPEATS}.`);
  console.table(
    [1, 4, 8].map((size) => ({
      batch: size,
      'wall ms': +results[size].ms.toFixed(0),
      'generated tokens': results[size].tokens,
      'tokens/s': +tokS(results[size]).toFixed(1),
      'x batch 1': +(tokS(results[size]) / tokS(base)).toFixed(2),
      'CPU ms': +results[size].cpuMs.toFixed(0),
      'tokens/CPU s': +cpuTokS(results[size]).toFixed(1),
      'x batch 1 (CPU)': +(cpuTokS(results[size]) / cpuTokS(base)).toFixed(2),
      'tokens identical to batch 1': same(size),
    })),
  );
  // Where the best repeat went: forward passes (session runs: ~fixed cost per pass plus a part that grows
  // with batch x cache length) against the generation loop; minor page faults count fresh memory the
  // run touched (with Optimum's protocol onnxruntime-node copies every present.* output into a new buffer
  // on every pass; with the slots only the step's keys and values come back).
  const parts = [1, 4, 8].map((size) => {
    const { ms, breakdown: b } = results[size];
    return `batch ${size}: ${b.forwardMs.toFixed(1)} ms in ${b.forwardCalls} forward passes (${(b.forwardMs / b.forwardCalls).toFixed(3)} ms each), ${(ms - b.forwardMs).toFixed(1)} ms outside, ${b.faults} page faults`;
  });
  console.log(`${label} breakdown of the best repeat: ${parts.join('; ')}.`);
  console.log(
    `${label}: batch 8 / batch 1 generated tokens/s: ${(tokS(results[8]) / tokS(base)).toFixed(2)}x wall, ${(cpuTokS(results[8]) / cpuTokS(base)).toFixed(2)}x CPU (goal >= 4x)`,
  );
  // Two variants of the model on one batch, interleaved, best of REPEATS after a warm-up round; tokens compared.
  async function versus(variants, rows) {
    const timed = variants.map(() => ({ ms: Infinity }));
    for (let r = 0; r < REPEATS + 1; r++) {
      for (const [k, m] of variants.entries()) {
        const t0 = performance.now();
        const out = await generateBatch(m, rows);
        if (r > 0) timed[k].ms = Math.min(timed[k].ms, performance.now() - t0);
        timed[k].out = out.map((o) => o.tokenIds.join(','));
      }
    }
    const same = timed[0].out.every((o, i) => o === timed[1].out[i]);
    return { ms: timed.map((t) => t.ms), ratio: timed[1].ms / timed[0].ms, same };
  }
  // Rows of different lengths (6 to 96 new tokens): once at most half the rows still generate,
  // generateBatch drops the finished rows from the batch. Against the same batch with the model's
  // selectCacheRows hidden (finished rows ride along to the end).
  const riding = Object.create(model, { selectCacheRows: { value: undefined } });
  const mixed = await versus(
    [model, riding],
    prompts.map((ids, i) => ({ input: { inputIds: ids }, options: { maxNewTokens: i === 7 ? 96 : 6 * (i + 1), stopTokenIds: [] } })),
  );
  console.log(
    `${label}: batch 8 with 6..96 new tokens per row: ${mixed.ms[0].toFixed(0)} ms with finished rows dropped, ${mixed.ms[1].toFixed(0)} ms with them riding along (${mixed.ratio.toFixed(2)}x); tokens identical: ${mixed.same}`,
  );
  // Prompt buckets: generateBatch prefills prompts of very different lengths in separate passes, each padded to
  // its own longest prompt, and joins their caches (stackCaches). Against one prompt pass padded to the longest
  // (stackCaches hidden): the 8 prompts above (48 new tokens), and a skewed batch of one 400-token prompt and
  // seven of 20 (16 new tokens), as concurrent requests can be.
  const unbucketed = Object.create(model, { stackCaches: { value: undefined } });
  const skewed = Array.from({ length: 8 }, (_, i) => Array.from({ length: i === 0 ? 400 : 20 }, (_, j) => (j * 7919 + i * 104729 + 29) % config.vocabSize));
  let bucketsSame = true;
  for (const [what, rows, rowOptions] of [
    ['the 8 prompts of 12..61 tokens', prompts, options],
    ['one prompt of 400 tokens and seven of 20, 16 new tokens each', skewed, { maxNewTokens: 16, stopTokenIds: [] }],
  ]) {
    const timed = await versus(
      [model, unbucketed],
      rows.map((ids) => ({ input: { inputIds: ids }, options: rowOptions })),
    );
    bucketsSame &&= timed.same;
    console.log(
      `${label}: batch 8, ${what}: ${timed.ms[0].toFixed(1)} ms with prompt buckets, ${timed.ms[1].toFixed(1)} ms with one padded prompt pass (${timed.ratio.toFixed(2)}x); tokens identical: ${timed.same}`,
    );
  }
  await model.dispose();
  return same(4) && same(8) && mixed.same && bucketsSame;
}

let ok = true;
for (const name of which) for (const threads of threadsFor(name)) ok = (await bench(name, CONFIGS[name], threads)) && ok;
if (!ok) {
  console.error('batched outputs differ from batch-1 outputs');
  process.exit(1);
}
