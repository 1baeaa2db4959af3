import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createTensor, isVlitError } from '@vlit/core';
import { openCheckpointFolder } from '@vlit/core/node';
import { referencePython, runReferencePython } from '@vlit/test-kit/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRecipe, type Recipe } from '../recipe.js';
import { isTorchrunWorkerError } from './errors.js';
import { torchrunJobSchema, type TorchrunSample } from './job.js';
import { loadTorchrunOutput, trainWithTorchrun, type TorchrunEvent, type TorchrunResult } from './torchrun.js';

const LONG = { timeout: 1_800_000 };
const IMAGE_TOKEN = 99;
const IMAGE_TOKENS = 4;

/** 24 samples: bos, one image (4 tokens), a 2-4 token prompt, a 3-8 token answer + eos; answer and eos trained. */
function makeSamples(): TorchrunSample[] {
  const rng = createRng('torchrun-fixture');
  return Array.from({ length: 24 }, (_, i) => {
    const prompt = Array.from({ length: rng.int(2, 5) }, () => rng.int(5, 90));
    const answer = Array.from({ length: rng.int(3, 9) }, () => rng.int(5, 90));
    const inputIds = [1, ...Array(IMAGE_TOKENS).fill(IMAGE_TOKEN), ...prompt, ...answer, 2];
    const labels = inputIds.map((t, k) => (k >= 1 + IMAGE_TOKENS + prompt.length ? t : -100));
    const pixels = new Float32Array(3 * 28 * 28);
    for (let k = 0; k < pixels.length; k++) pixels[k] = rng.normal();
    return { id: `s${i}`, inputIds, labels, imageSpans: [{ imageIndex: 0, start: 1, end: 1 + IMAGE_TOKENS }], images: [createTensor('float32', [3, 28, 28], pixels)] };
  });
}

const STAGE1 = { lr: 1e-3, weightDecay: 0, warmup: 2 };
const STAGE2 = { lr: 2e-3, weightDecay: 0.01, warmup: 2, r: 4, alpha: 8 };

function tinyRecipe(maxSteps = 20): Recipe {
  const common = { data: { sources: [{ name: 'fixture', path: 'memory' }] }, template: 'llava-plain', maxLength: 64, batchSize: 1, gradientAccumulation: 4, maxSteps, clipGradNorm: 1 };
  return parseRecipe({
    name: 'tiny-llava',
    seed: 7,
    stages: [
      {
        ...common,
        name: 'align',
        trainables: [{ mode: 'trained', match: ['*multi_modal_projector.*'] }],
        optimizer: { lr: STAGE1.lr, weightDecay: STAGE1.weightDecay },
        schedule: { type: 'cosine', warmupSteps: STAGE1.warmup },
      },
      {
        ...common,
        name: 'lora',
        template: 'llava-v1',
        trainables: [
          { mode: 'trained', match: ['*multi_modal_projector.*'] },
          { mode: 'lora', match: ['*language_model.*'], targetModules: ['q_proj', 'v_proj'], r: STAGE2.r, alpha: STAGE2.alpha, dropout: 0 },
        ],
        optimizer: { lr: STAGE2.lr, weightDecay: STAGE2.weightDecay },
        schedule: { type: 'cosine', warmupSteps: STAGE2.warmup },
      },
    ],
  });
}

const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

async function maxWeightDiff(dirA: string, dirB: string, filter: (name: string) => boolean = () => true): Promise<{ diff: number; compared: number }> {
  const a = await openCheckpointFolder(dirA);
  const b = await openCheckpointFolder(dirB);
  let diff = 0;
  let compared = 0;
  try {
    expect(a.tensorNames().sort()).toEqual(b.tensorNames().sort());
    for (const name of a.tensorNames().filter(filter)) {
      const x = await a.readFloat32(name);
      const y = await b.readFloat32(name);
      for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i] - y[i]));
      compared++;
    }
  } finally {
    await a.close();
    await b.close();
  }
  return { diff, compared };
}

describe('torchrun engine (2 ranks, gloo, CPU)', () => {
  let work: string;
  let modelDir: string;
  const samples = makeSamples();
  let twoRank: TorchrunResult;
  const python = referencePython();
  const engine = { python, nprocPerNode: 2, env: { OMP_NUM_THREADS: '1' } };

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'vlit-torchrun-'));
    modelDir = path.join(work, 'tiny-llava');
    runReferencePython(new URL('./py/make_tiny_llava.py', import.meta.url).pathname, [modelDir, '0'], { timeoutMs: 600_000 });
  }, 900_000);

  afterAll(() => {
    // VLIT_KEEP_TEST_DIRS=1 keeps the runs (logs, torchrun.log, checkpoints) for a look after a failure.
    if (work && !process.env.VLIT_KEEP_TEST_DIRS) rmSync(work, { recursive: true, force: true });
  });

  it('trains stage 1 (projector) and a LoRA stage with the losses of a single-process torch run of the same global batches', LONG, async () => {
    const events: TorchrunEvent[] = [];
    twoRank = await trainWithTorchrun(tinyRecipe(), { model: modelDir, data: { align: samples, lora: samples }, outputDir: path.join(work, 'two-rank'), engine, onProgress: (e) => events.push(e) });

    // Every rank's log reached the callback, and metrics came per step.
    const ranks = new Set(events.flatMap((e) => (e.type === 'log' && e.rank !== null ? [e.rank] : [])));
    expect([...ranks].sort()).toEqual([0, 1]);
    const [align, lora] = twoRank.stages;
    expect(align.metrics.map((m) => m.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(lora.metrics).toHaveLength(20);
    const metricsFile = readFileSync(path.join(align.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number });
    expect(metricsFile.map((m) => m.loss)).toEqual(align.metrics.map((m) => m.loss));
    // The job's global batch is the recipe's (1 x 4) whatever the world size.
    const job = torchrunJobSchema.parse(JSON.parse(readFileSync(path.join(lora.runDir, 'job.json'), 'utf8')));
    expect(job.steps.every((s) => s.samples.length === 4)).toBe(true);
    expect(job.trainables.lora.map((t) => t.module)).toEqual(
      [0, 1].flatMap((l) => [`model.language_model.layers.${l}.self_attn.q_proj`, `model.language_model.layers.${l}.self_attn.v_proj`]),
    );

    const spec = {
      model: modelDir,
      seed: 7,
      stages: [
        { job: path.join(align.runDir, 'job.json'), out: path.join(work, 'ref-align'), lr: STAGE1.lr, weightDecay: STAGE1.weightDecay, warmup: STAGE1.warmup, clip: 1, lora: null },
        { job: path.join(lora.runDir, 'job.json'), out: path.join(work, 'ref-lora'), lr: STAGE2.lr, weightDecay: STAGE2.weightDecay, warmup: STAGE2.warmup, clip: 1, lora: { r: STAGE2.r, alpha: STAGE2.alpha } },
      ],
      ours: { model: lora.model, adapter: lora.adapter, base: align.model },
    };
    const specFile = path.join(work, 'ref-spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const refOut = path.join(work, 'ref-out.json');
    runReferencePython(new URL('./py/reference_run.py', import.meta.url).pathname, [specFile, refOut], { timeoutMs: 1_200_000 });
    const ref = JSON.parse(readFileSync(refOut, 'utf8')) as { stages: { losses: number[] }[]; mergedLogitsMaxDiff: number; adapterLogitsMaxDiff: number; logitsMaxAbs: number };

    const worst = [align, lora].map((st, k) => Math.max(...st.metrics.map((m, i) => relDiff(m.loss, ref.stages[k].losses[i]))));
    console.log(`[figures] torchrun 2-rank vs single-process torch: loss max rel diff stage1 ${worst[0].toExponential(2)}, LoRA ${worst[1].toExponential(2)}; logits max abs diff merged ${ref.mergedLogitsMaxDiff.toExponential(2)}, adapter ${ref.adapterLogitsMaxDiff.toExponential(2)} (|logits| up to ${ref.logitsMaxAbs.toFixed(2)})`);
    expect(worst[0]).toBeLessThan(1e-3);
    expect(worst[1]).toBeLessThan(1e-3);
    // Training moved the loss (the comparison is not between two untrained models): epochs 0 and 2 cover the same 24 samples.
    // 24 micro-batches of 1 per epoch, 4 per step: steps 1-6 are epoch 0, steps 13-18 epoch 2.
    const epochMean = (ms: typeof align.metrics, e: number) => {
      const ls = ms.slice(6 * e, 6 * e + 6).map((m) => m.loss);
      return ls.reduce((x, y) => x + y, 0) / ls.length;
    };
    for (const st of [align, lora]) expect(epochMean(st.metrics, 2)).toBeLessThan(epochMean(st.metrics, 0));
    expect(ref.mergedLogitsMaxDiff).toBeLessThan(1e-4);
    expect(ref.adapterLogitsMaxDiff).toBeLessThan(1e-4);

    // The output loads back in Vlit: the merged folder's tensors equal the reference run's, and the adapter reads as PEFT's.
    const loaded = await loadTorchrunOutput(twoRank);
    try {
      expect(loaded.adapter?.config.r).toBe(STAGE2.r);
      expect(loaded.adapter?.config.lora_alpha).toBe(STAGE2.alpha);
      expect([...(loaded.adapter?.modules.keys() ?? [])].sort()).toEqual(
        [0, 1].flatMap((l) => [`model.language_model.layers.${l}.self_attn.q_proj`, `model.language_model.layers.${l}.self_attn.v_proj`]).sort(),
      );
    } finally {
      await loaded.model.close();
    }
    const weights = await maxWeightDiff(lora.model, path.join(work, 'ref-lora'));
    console.log(`[figures] merged weights vs single-process reference: max abs diff ${weights.diff.toExponential(2)} over ${weights.compared} tensors`);
    expect(weights.diff).toBeLessThan(1e-4);
  });

  it('two nodes on one machine (--nnodes 2, loopback c10d rendezvous) train to the losses of one node with two ranks', LONG, async () => {
    expect(twoRank).toBeDefined();
    const port = 29_000 + (process.pid % 1000);
    const node = (nodeRank: number) =>
      trainWithTorchrun(tinyRecipe(), {
        model: modelDir,
        data: { align: samples },
        stages: ['align'],
        outputDir: path.join(work, `node-${nodeRank}`),
        engine: { python, nprocPerNode: 1, nnodes: 2, nodeRank, rdzvEndpoint: `127.0.0.1:${port}`, rdzvId: 'vlit-two-nodes' },
      });
    const [a, b] = await Promise.all([node(0), node(1)]);
    const single = twoRank.stages[0].metrics.map((m) => m.loss);
    for (const result of [a, b]) {
      const losses = result.stages[0].metrics.map((m) => m.loss);
      expect(losses).toHaveLength(20);
      const worst = Math.max(...losses.map((l, i) => relDiff(l, single[i])));
      console.log(`[figures] two nodes vs one node x 2 ranks: loss max rel diff ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-6);
    }
  });

  it('FSDP (fully_shard, gloo) trains the LoRA stage to the losses and weights of DDP', LONG, async () => {
    expect(twoRank).toBeDefined();
    const [align, lora] = twoRank.stages;
    const fsdp = await trainWithTorchrun(tinyRecipe(), {
      model: align.model,
      data: { lora: samples },
      stages: ['lora'],
      outputDir: path.join(work, 'fsdp'),
      engine: { ...engine, strategy: 'fsdp' },
    });
    const losses = fsdp.stages[0].metrics.map((m) => m.loss);
    expect(losses).toHaveLength(20);
    const worst = Math.max(...losses.map((l, i) => relDiff(l, lora.metrics[i].loss)));
    const weights = await maxWeightDiff(fsdp.model, lora.model);
    console.log(`[figures] FSDP vs DDP, LoRA stage: loss max rel diff ${worst.toExponential(2)}, merged weights max abs diff ${weights.diff.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
    expect(weights.diff).toBeLessThan(1e-5);
    expect(fsdp.adapter).not.toBeNull();
  });

  it('a rank killed mid-run is a typed error naming it; the resumed run matches the uninterrupted one', LONG, async () => {
    expect(twoRank).toBeDefined();
    const outputDir = path.join(work, 'fault');
    const pids = new Map<number, number>();
    let killed = false;
    const options = {
      model: modelDir,
      data: { align: samples },
      stages: ['align'],
      outputDir,
      checkpointEvery: 4,
      engine,
    };
    const error = await trainWithTorchrun(tinyRecipe(), {
      ...options,
      onProgress: (e) => {
        if (e.type === 'log' && e.rank !== null) {
          const m = /pid (\d+)/.exec(e.line);
          if (m && !pids.has(e.rank)) pids.set(e.rank, Number(m[1]));
        }
        // A real SIGKILL of rank 1's process after the second checkpoint (step 8) is on disk.
        if (e.type === 'step' && e.step >= 9 && !killed) {
          killed = true;
          process.kill(pids.get(1) ?? -1, 'SIGKILL');
        }
      },
    }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(killed).toBe(true);
    expect(isTorchrunWorkerError(error)).toBe(true);
    expect(isVlitError(error, 'VLIT_BACKEND')).toBe(true);
    const details = (error as { details: { rank: number; exitCode: number; lastLines: string[] } }).details;
    expect(details.rank).toBe(1);
    expect(details.exitCode).toBe(-9);
    expect(details.lastLines.some((l) => l.includes('step'))).toBe(true);

    const resumed = await trainWithTorchrun(tinyRecipe(), { ...options });
    const stage = resumed.stages[0];
    expect(stage.resumedFrom).toMatch(/checkpoint-(8|12|16)$/);
    expect(stage.metrics[stage.metrics.length - 1].step).toBe(20);
    const weights = await maxWeightDiff(stage.model, twoRank.stages[0].model, (n) => n.includes('multi_modal_projector'));
    console.log(`[figures] resumed after SIGKILL of rank 1 (from ${path.basename(stage.resumedFrom ?? '')}) vs uninterrupted: projector max abs diff ${weights.diff.toExponential(2)}`);
    expect(weights.compared).toBe(4);
    expect(weights.diff).toBeLessThan(1e-5);

    // resume: false starts over: no skipped stage, no stale checkpoint or metrics line of the earlier runs.
    const fresh = await trainWithTorchrun(tinyRecipe(), { ...options, resume: false });
    expect(fresh.stages[0].resumedFrom).toBeNull();
    expect(fresh.stages[0].metrics.map((m) => m.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(readFileSync(path.join(fresh.stages[0].runDir, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(20);
    expect((await maxWeightDiff(fresh.stages[0].model, twoRank.stages[0].model, (n) => n.includes('multi_modal_projector'))).diff).toBeLessThan(1e-5);
  });
});
