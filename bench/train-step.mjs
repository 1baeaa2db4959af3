// One training step of Vlit's local engine (gradient graph on ONNX Runtime + TypeScript AdamW) on a
// projector + Llama decoder with LoRA, against PyTorch eager (transformers + peft + torch.optim.AdamW)
// on the same weights, batch and thread count, in this one run; plus achieved GFLOP/s against the
// native runtime's MatMul peak measured here, and onnxruntime-web (wasm) vs native.
// The machine may be shared and busy: compare the ratios, not the absolute times.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng, createTensor, serializeSafetensors } from '@vlit/core';
import { buildConnectorModel, initConnectorWeights } from '@vlit/connectors';
import { createGraph, encodeModel } from '@vlit/graph';
import { buildEmbedTokensModel, buildLlamaDecoderModel, initLlamaWeights, tinyLlamaConfig, toHfLlamaConfig } from '@vlit/models';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createWebRuntime } from '@vlit/runtime/web';
import { buildTrainingGraph, collateBatch, createAdamW, createTrainingSession, llavaTensorNaming, prepareTrainingFeeds } from '@vlit/trainer';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const THREADS = Number(process.env.VLIT_BENCH_THREADS ?? 2);
const PYTHON = process.env.VLIT_BENCH_PYTHON ?? join(repo, '.venv/bin/python');
const WARMUP = 1;
const RUNS = Number(process.env.VLIT_BENCH_RUNS ?? 5);
const WEB_RUNS = Number(process.env.VLIT_BENCH_WEB_RUNS ?? 3);
const LOAD_AT_START = loadavg()[0];

// --- Model: hidden 256, 4 layers, GQA 8/4 heads, vocab 1000; MLP projector 512 -> 256 -> 256.
const M = { hidden: 256, layers: 4, heads: 8, kvHeads: 4, inter: 688, vocab: 1000, featureDim: 512, imageTokens: 256, imageTokenId: 999 };
const R = 8;
const ALPHA = 16;
const TARGETS = ['q_proj', 'v_proj'];
const OPT = { lr: 1e-4, weightDecay: 0.01 };
// --- Batch: 2 sequences of 576 tokens: bos, 256 image tokens, 255 prompt tokens (untrained), 63 answer tokens + eos (trained).
const BATCH = 2;
const PROMPT = 255;
const ANSWER = 63;

const llama = tinyLlamaConfig({
  hiddenSize: M.hidden,
  vocabSize: M.vocab,
  intermediateSize: M.inter,
  numHiddenLayers: M.layers,
  numAttentionHeads: M.heads,
  numKeyValueHeads: M.kvHeads,
  tieWordEmbeddings: false,
  maxPositionEmbeddings: 1024,
});
const lw = initLlamaWeights(llama, 11);
const connector = { kind: 'mlp', inputDim: M.featureDim, hiddenDim: M.hidden, outputDim: M.hidden };
const cw = initConnectorWeights(connector, 12);
const parts = {
  connector: buildConnectorModel(connector, cw),
  embedTokens: buildEmbedTokensModel(llama, lw['model.embed_tokens.weight']),
  decoder: buildLlamaDecoderModel(llama, lw),
};
const stage = {
  name: 'bench',
  data: { sources: [{ name: 'bench', path: 'memory' }] },
  template: 'llava-v1',
  trainables: [
    { mode: 'trained', match: ['model.multi_modal_projector.*'] },
    { mode: 'lora', match: ['model.language_model.*'], targetModules: TARGETS, r: R, alpha: ALPHA, dropout: 0 },
  ],
  optimizer: { lr: OPT.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: OPT.weightDecay, noDecay: [] },
  schedule: { type: 'constant' },
  clipGradNorm: null,
  batchSize: BATCH,
  maxSteps: 1,
};
// Non-zero LoRA B (peft starts it at zero) so LoRA A gets real gradients and the loss depends on LoRA.
const rng = createRng('bench-train-step');
const kvDim = (M.hidden / M.heads) * M.kvHeads;
const loraWeights = new Map();
for (let l = 0; l < M.layers; l++) {
  for (const [proj, out] of [
    ['q_proj', M.hidden],
    ['v_proj', kvDim],
  ]) {
    const a = createTensor('float32', [R, M.hidden]);
    const b = createTensor('float32', [out, R]);
    rng.fillNormal(a.data, 1 / Math.sqrt(M.hidden));
    rng.fillNormal(b.data, 0.02);
    loraWeights.set(`model.language_model.layers.${l}.self_attn.${proj}`, { a, b });
  }
}
const tBuild = performance.now();
const graph = buildTrainingGraph(parts, { stage, loraWeights });
const buildMs = performance.now() - tBuild;

const randInt = (lo, hi) => rng.int(lo, hi);
const samples = [];
for (let s = 0; s < BATCH; s++) {
  const inputIds = [1];
  const labels = [-100];
  const imageSpans = [{ imageIndex: 0, start: 1, end: 1 + M.imageTokens }];
  for (let t = 0; t < M.imageTokens; t++) {
    inputIds.push(M.imageTokenId);
    labels.push(-100);
  }
  for (let t = 0; t < PROMPT; t++) {
    inputIds.push(randInt(3, 998));
    labels.push(-100);
  }
  for (let t = 0; t < ANSWER; t++) {
    const id = randInt(3, 998);
    inputIds.push(id);
    labels.push(id);
  }
  inputIds.push(2);
  labels.push(2);
  samples.push({ id: `s${s}`, inputIds, labels, imageSpans });
}
const SEQ = samples[0].inputIds.length;
const features = samples.map(() => {
  const f = createTensor('float32', [M.imageTokens, M.featureDim]);
  rng.fillNormal(f.data, 1);
  return [f];
});
const prepared = prepareTrainingFeeds(graph, samples, features);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Time session.step + AdamW.step from the same initial weights; returns the first loss and median ms. */
async function timeVlit(backend, runs) {
  const session = await createTrainingSession(backend, graph);
  const values = new Map(graph.parameters.map((p) => [p.name, Float32Array.from(p.initial.data)]));
  const opt = createAdamW(
    [...values].map(([name, data]) => ({ name, data })),
    { ...stage.optimizer },
  );
  const times = [];
  let loss0;
  for (let i = 0; i < WARMUP + runs; i++) {
    const t0 = performance.now();
    const { loss, gradients } = await session.step(prepared.feeds, values);
    opt.step(gradients);
    const dt = performance.now() - t0;
    loss0 ??= loss;
    if (i >= WARMUP) times.push(dt);
  }
  await session.release();
  return { loss0, ms: median(times), times };
}

// --- FLOPs (matmuls only, 2 per multiply-add). Forward: per token per layer q,k,v,o, gate/up/down
// and LoRA; attention QK^T and AV over the full SEQ x SEQ square per head (no causal skipping, as both
// sides compute it); the projector per image token; lm_head at the trained positions only (Vlit's
// graph; transformers computes all positions, extra work torch does that is not counted). Step = 3x forward
// (backward ~2x forward by the usual convention; frozen weights need no weight gradient, so the true
// backward is somewhat less: the GFLOP/s figures are an upper-leaning estimate, equally for both sides).
const h = M.hidden;
const hd = h / M.heads;
const perTokenLayer = 2 * (h * h + 2 * h * kvDim + h * h + 3 * h * M.inter) + 2 * R * (h + h) + 2 * R * (h + kvDim);
const attnPerLayer = 2 * (2 * SEQ * SEQ * hd * M.heads);
const trained = samples.reduce((n, s) => n + s.labels.filter((l) => l !== -100).length, 0);
const forwardFlops =
  BATCH * SEQ * M.layers * perTokenLayer + BATCH * M.layers * attnPerLayer + BATCH * M.imageTokens * 2 * (M.featureDim * h + h * h) + trained * 2 * h * M.vocab;
const stepFlops = 3 * forwardFlops;

// --- 1. Native runtime MatMul peak: [1024 x 1024] x [1024 x 4096], same thread count.
const native = createNodeRuntime({ session: { intraOpThreads: THREADS, interOpThreads: 1 } });
const [m, k, n] = [1024, 1024, 4096];
const a = createTensor('float32', [m, k]);
const bm = createTensor('float32', [k, n]);
rng.fillNormal(a.data, 1);
rng.fillNormal(bm.data, 1);
const gm = createGraph({ name: 'matmul-peak' });
gm.output(gm.matMul(gm.input('a', 'float32', [m, k]), gm.initializer('b', bm)), 'c');
const mm = await native.backend.createSession(encodeModel(gm.toModel()));
const mmTimes = [];
for (let i = 0; i < 2 + 5; i++) {
  const t0 = performance.now();
  await mm.run({ a });
  if (i >= 2) mmTimes.push(performance.now() - t0);
}
await mm.release();
const peakGflops = (2 * m * k * n) / median(mmTimes) / 1e6;

// --- 2. Vlit on the native runtime.
const vn = await timeVlit(native.backend, RUNS);

// --- 3. PyTorch eager, same weights and batch, written here as safetensors.
const work = mkdtempSync(join(tmpdir(), 'vlit-bench-train-'));
let torchOut;
try {
  const c = collateBatch(samples, { padTokenId: 0 });
  const [B, S] = c.inputIds.dims;
  const imageMask = new Uint8Array(B * S);
  c.imageSpans.forEach((spans, bi) => spans.forEach((sp) => imageMask.fill(1, bi * S + sp.start, bi * S + sp.end)));
  const tensors = new Map();
  for (const [name, t] of Object.entries(cw)) tensors.set(`weight.${llavaTensorNaming('connector', name)}`, t);
  for (const [name, t] of Object.entries(lw)) tensors.set(`weight.${llavaTensorNaming('decoder', name)}`, t);
  for (const [module, w] of loraWeights) {
    tensors.set(`lora.${module}.lora_A.weight`, w.a);
    tensors.set(`lora.${module}.lora_B.weight`, w.b);
  }
  tensors.set('batch.input_ids', c.inputIds);
  tensors.set('batch.attention_mask', c.attentionMask);
  tensors.set('batch.labels', c.labels);
  tensors.set('batch.image_mask', createTensor('uint8', [B, S], imageMask));
  const feat = createTensor('float32', [BATCH, M.imageTokens, M.featureDim]);
  features.forEach(([f], i) => feat.data.set(f.data, i * f.data.length));
  tensors.set('batch.features', feat);
  writeFileSync(join(work, 'in.safetensors'), serializeSafetensors(tensors));
  writeFileSync(
    join(work, 'config.json'),
    JSON.stringify({
      text_config: toHfLlamaConfig(llama),
      feature_dim: M.featureDim,
      r: R,
      alpha: ALPHA,
      target_modules: TARGETS,
      lora_tensors: 2 * TARGETS.length * M.layers,
      lr: OPT.lr,
      weight_decay: OPT.weightDecay,
      threads: THREADS,
      warmup: WARMUP,
      runs: RUNS,
      attn_implementation: process.env.VLIT_BENCH_TORCH_ATTN ?? 'sdpa',
    }),
  );
  const env = { ...process.env, OMP_NUM_THREADS: String(THREADS), MKL_NUM_THREADS: String(THREADS), TOKENIZERS_PARALLELISM: 'false' };
  const r = spawnSync(PYTHON, [join(here, 'train_step_torch.py'), join(work, 'config.json'), join(work, 'in.safetensors')], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch side failed (${r.status}): ${r.stderr.slice(-2000)}`);
  torchOut = JSON.parse(r.stdout.trim().split('\n').pop());
} finally {
  rmSync(work, { recursive: true, force: true });
}
const torchMs = median(torchOut.step_ms);

// --- 4. Vlit on onnxruntime-web (wasm), same thread count.
const web = createWebRuntime({ wasm: { numThreads: THREADS } });
const vw = await timeVlit(web.backend, WEB_RUNS);

const gf = (ms) => +(stepFlops / ms / 1e6).toFixed(1);
const nParams = graph.parameters.reduce((s, p) => s + p.initial.data.length, 0);
console.log(
  `Training step: MLP projector ${M.featureDim}->${h}->${h} (trained) + Llama decoder hidden ${h}, ${M.layers} layers, ${M.heads}/${M.kvHeads} heads, ` +
    `intermediate ${M.inter}, vocab ${M.vocab}, LoRA r=${R} alpha=${ALPHA} on ${TARGETS.join('/')}; ${nParams} trained values.\n` +
    `Batch ${BATCH} x ${SEQ} tokens (${M.imageTokens} image-feature tokens each, ${trained} trained tokens in all). Step = loss + gradients + AdamW update.\n` +
    `${THREADS} intra-op thread(s) on every side (torch: set_num_threads + OMP_NUM_THREADS). Warm-up ${WARMUP}, median of ${RUNS} (web: ${WEB_RUNS}). ` +
    `Training graph built in ${buildMs.toFixed(0)} ms (not timed below).\n` +
    `FLOPs counted: matmuls only (q/k/v/o, MLP, LoRA, full SEQxSEQ attention, projector, lm_head at trained positions), ` +
    `forward ${(forwardFlops / 1e9).toFixed(2)} GFLOP, step = 3 x forward = ${(stepFlops / 1e9).toFixed(2)} GFLOP.`,
);
console.table([
  {
    side: 'Vlit, onnxruntime-node (native)',
    'step ms': +vn.ms.toFixed(0),
    'GFLOP/s': gf(vn.ms),
    '% of MatMul peak': +((100 * gf(vn.ms)) / peakGflops).toFixed(0),
    'first-step loss': +vn.loss0.toFixed(6),
    'x native time': 1,
  },
  {
    side: `PyTorch ${torchOut.torch} eager (${torchOut.attn} attention)`,
    'step ms': +torchMs.toFixed(0),
    'GFLOP/s': gf(torchMs),
    '% of MatMul peak': +((100 * gf(torchMs)) / peakGflops).toFixed(0),
    'first-step loss': +torchOut.loss0.toFixed(6),
    'x native time': +(torchMs / vn.ms).toFixed(2),
  },
  {
    side: 'Vlit, onnxruntime-web (wasm)',
    'step ms': +vw.ms.toFixed(0),
    'GFLOP/s': gf(vw.ms),
    '% of MatMul peak': +((100 * gf(vw.ms)) / peakGflops).toFixed(0),
    'first-step loss': +vw.loss0.toFixed(6),
    'x native time': +(vw.ms / vn.ms).toFixed(2),
  },
]);
console.log(
  `Native MatMul peak ([${m}x${k}] x [${k}x${n}], median of 5): ${peakGflops.toFixed(1)} GFLOP/s.\n` +
    `Vlit native vs PyTorch: torch step / Vlit step = ${(torchMs / vn.ms).toFixed(2)} (>1: Vlit faster). ` +
    `Web vs native: ${(vw.ms / vn.ms).toFixed(2)}x the native step time.\n` +
    `First-step loss: Vlit native ${vn.loss0.toFixed(7)}, web ${vw.loss0.toFixed(7)}, torch ${torchOut.loss0.toFixed(7)}; |Vlit - torch| / |torch| = ${(Math.abs(vn.loss0 - torchOut.loss0) / Math.abs(torchOut.loss0)).toExponential(1)} (native), ` +
    `${(Math.abs(vw.loss0 - torchOut.loss0) / Math.abs(torchOut.loss0)).toExponential(1)} (web).\n` +
    `Raw step ms: native [${vn.times.map((t) => t.toFixed(0)).join(', ')}], torch [${torchOut.step_ms.map((t) => t.toFixed(0)).join(', ')}], web [${vw.times.map((t) => t.toFixed(0)).join(', ')}].\n` +
    `This machine is shared and may be busy (1-min load average at start ${LOAD_AT_START.toFixed(1)}, at end ${loadavg()[0].toFixed(1)}): the ratios, measured back to back in one run, are what count; absolute times are not.`,
);
