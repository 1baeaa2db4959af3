import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createTensor, isVlitError, type Tensor } from '@vlit/core';
import { openCheckpointFolder, readSafetensorsFile, writeCheckpointFolder } from '@vlit/core/node';
import { loadLlavaParts } from '@vlit/models/node';
import { createNodeRuntime } from '@vlit/runtime/node';
import { referencePython, runReferencePython } from '@vlit/test-kit/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeLoraAdapter } from '../lora/adapter.js';
import { readPeftAdapter } from '../lora/adapter-files.js';
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
    return {
      id: `s${i}`,
      inputIds,
      labels,
      imageSpans: [{ imageIndex: 0, start: 1, end: 1 + IMAGE_TOKENS }],
      images: [createTensor('float32', [3, 28, 28], pixels)],
    };
  });
}

const STAGE1 = { lr: 1e-3, weightDecay: 0, warmup: 2 };
const STAGE2 = { lr: 2e-3, weightDecay: 0.01, warmup: 2, r: 4, alpha: 8 };

function tinyRecipe(maxSteps = 20): Recipe {
  const common = {
    data: { sources: [{ name: 'fixture', path: 'memory' }] },
    template: 'llava-plain',
    maxLength: 64,
    batchSize: 1,
    gradientAccumulation: 4,
    maxSteps,
    clipGradNorm: 1,
  };
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

/**
 * Vlit's logits for PyTorch's: the folder loaded with loadLlavaParts (tower, projector, decoder), each sample of
 * `refFile` (py/vlit_logits_ref.py: input ids, pixel values and transformers' logits, batch 1) run through the
 * tower + projector, spliced into the decoder's token embeddings at the image placeholders, then the decoder.
 */
async function vlitLogitsVsTorch(dir: string, refFile: string): Promise<{ diff: number; maxAbs: number; samples: number }> {
  const ref = await readSafetensorsFile(refFile);
  const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
  const parts = await loadLlavaParts(dir, { runtime });
  let diff = 0;
  let maxAbs = 0;
  let samples = 0;
  try {
    const hidden = parts.spec.text.hiddenSize;
    for (let k = 0; ref.tensors.has(`logits_${k}`); k++) {
      const ids = [...(ref.get(`input_ids_${k}`).toTensor().data as BigInt64Array)].map(Number);
      const pixels = ref.get(`pixel_values_${k}`).toTensor() as Tensor<'float32'>;
      const projected = await parts.projector.project(await parts.tower.encodePixels(pixels));
      const embeds = await parts.languageModel.embed(createTensor('int64', [1, ids.length], BigInt64Array.from(ids.map(BigInt))));
      const spliced = new Float32Array(embeds.data);
      const slots = ids.flatMap((t, i) => (t === parts.spec.imageTokenId ? [i] : []));
      expect(slots.length * hidden).toBe(projected.data.length);
      slots.forEach((pos, row) => spliced.set(projected.data.subarray(row * hidden, (row + 1) * hidden), pos * hidden));
      const out = await parts.languageModel.forward({ inputsEmbeds: createTensor('float32', embeds.dims, spliced) });
      out.cache?.dispose();
      const want = ref.get(`logits_${k}`).toFloat32();
      expect(out.logits.dims).toEqual([1, ids.length, parts.spec.text.vocabSize]);
      for (let i = 0; i < want.length; i++) {
        diff = Math.max(diff, Math.abs(out.logits.data[i] - want[i]));
        maxAbs = Math.max(maxAbs, Math.abs(want[i]));
      }
      samples++;
    }
  } finally {
    await parts.dispose();
  }
  return { diff, maxAbs, samples };
}

/** The PEFT adapter (+ the projector saved beside it) merged into the base folder's weights with Vlit, written as a new folder. */
async function mergeAdapterFolder(baseDir: string, adapterDir: string, outDir: string): Promise<void> {
  const base = await openCheckpointFolder(baseDir);
  try {
    const tensors = new Map<string, Tensor<'float32'>>();
    for (const name of base.tensorNames()) tensors.set(name, createTensor('float32', [...(base.info(name)?.shape ?? [])], await base.readFloat32(name)));
    // The adapter names modules as transformers 5 does (model.language_model.*, model.multi_modal_projector.*);
    // the folder may hold transformers 4's names (language_model.model.*, multi_modal_projector.*).
    const inFolder = (name: string): string => {
      const legacy = name.replace(/^model\.language_model\./, 'language_model.model.').replace(/^model\.(multi_modal_projector|vision_tower)\./, '$1.');
      const found = [name, legacy].find((n) => tensors.has(n));
      if (found === undefined) throw new Error(`${baseDir} has neither '${name}' nor '${legacy}'`);
      return found;
    };
    const adapter = await readPeftAdapter(adapterDir);
    expect(adapter.extra.size).toBe(0);
    const merged = mergeLoraAdapter((name) => tensors.get(inFolder(name)), adapter);
    expect(merged.size).toBe(adapter.modules.size);
    for (const [name, t] of merged) tensors.set(inFolder(name), t);
    const projector = await readSafetensorsFile(path.join(adapterDir, 'non_lora_trainables.safetensors'));
    expect(projector.tensors.size).toBeGreaterThan(0);
    for (const [name, entry] of projector.tensors) tensors.set(inFolder(name), entry.toTensor() as Tensor<'float32'>);
    await writeCheckpointFolder(outDir, { config: base.config, tensors });
  } finally {
    await base.close();
  }
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
    twoRank = await trainWithTorchrun(tinyRecipe(), {
      model: modelDir,
      data: { align: samples, lora: samples },
      outputDir: path.join(work, 'two-rank'),
      engine,
      onProgress: (e) => events.push(e),
    });

    // Every rank's log reached the callback, and metrics came per step.
    const ranks = new Set(events.flatMap((e) => (e.type === 'log' && e.rank !== null ? [e.rank] : [])));
    expect([...ranks].sort()).toEqual([0, 1]);
    const [align, lora] = twoRank.stages;
    expect(align.metrics.map((m) => m.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(lora.metrics).toHaveLength(20);
    const metricsFile = readFileSync(path.join(align.runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { loss: number });
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
        {
          job: path.join(align.runDir, 'job.json'),
          out: path.join(work, 'ref-align'),
          lr: STAGE1.lr,
          weightDecay: STAGE1.weightDecay,
          warmup: STAGE1.warmup,
          clip: 1,
          lora: null,
        },
        {
          job: path.join(lora.runDir, 'job.json'),
          out: path.join(work, 'ref-lora'),
          lr: STAGE2.lr,
          weightDecay: STAGE2.weightDecay,
          warmup: STAGE2.warmup,
          clip: 1,
          lora: { r: STAGE2.r, alpha: STAGE2.alpha },
        },
      ],
      ours: { model: lora.model, adapter: lora.adapter, base: align.model },
    };
    const specFile = path.join(work, 'ref-spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const refOut = path.join(work, 'ref-out.json');
    runReferencePython(new URL('./py/reference_run.py', import.meta.url).pathname, [specFile, refOut], { timeoutMs: 1_200_000 });
    const ref = JSON.parse(readFileSync(refOut, 'utf8')) as {
      stages: { losses: number[] }[];
      mergedLogitsMaxDiff: number;
      adapterLogitsMaxDiff: number;
      logitsMaxAbs: number;
    };

    const worst = [align, lora].map((st, k) => Math.max(...st.metrics.map((m, i) => relDiff(m.loss, ref.stages[k].losses[i]))));
    console.log(
      `[figures] torchrun 2-rank vs single-process torch: loss max rel diff stage1 ${worst[0].toExponential(2)}, LoRA ${worst[1].toExponential(2)}; logits max abs diff merged ${ref.mergedLogitsMaxDiff.toExponential(2)}, adapter ${ref.adapterLogitsMaxDiff.toExponential(2)} (|logits| up to ${ref.logitsMaxAbs.toFixed(2)})`,
    );
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

    // The final weights load in Vlit and reproduce PyTorch's logits: stage 1's folder as it is; the LoRA stage as
    // the adapter merged by Vlit into the stage-1 folder (against PeftModel on that folder + adapter), and the
    // engine's own merged folder (against the same PeftModel logits).
    const adapterDir = lora.adapter ?? '';
    expect(adapterDir).not.toBe('');
    const refScript = new URL('./py/vlit_logits_ref.py', import.meta.url).pathname;
    const alignRef = path.join(work, 'vlit-logits-align.safetensors');
    runReferencePython(refScript, [path.join(align.runDir, 'job.json'), alignRef, align.model], { timeoutMs: 600_000 });
    const loraRef = path.join(work, 'vlit-logits-lora.safetensors');
    runReferencePython(refScript, [path.join(lora.runDir, 'job.json'), loraRef, align.model, adapterDir], { timeoutMs: 600_000 });
    const vlitMerged = path.join(work, 'vlit-merged');
    await mergeAdapterFolder(align.model, adapterDir, vlitMerged);
    const checks = {
      'stage 1 folder': await vlitLogitsVsTorch(align.model, alignRef),
      'LoRA merged by Vlit': await vlitLogitsVsTorch(vlitMerged, loraRef),
      'LoRA merged by the engine': await vlitLogitsVsTorch(lora.model, loraRef),
    };
    for (const [what, c] of Object.entries(checks)) {
      console.log(
        `[figures] Vlit vs PyTorch logits, ${what}: max abs diff ${c.diff.toExponential(2)} over ${c.samples} samples (|logits| up to ${c.maxAbs.toFixed(2)})`,
      );
      expect(c.samples).toBe(3);
      expect(c.maxAbs).toBeGreaterThan(0.1);
      expect(c.diff).toBeLessThan(1e-4);
    }
    // Control: the stage-1 folder alone is far from the LoRA stage's logits (the merged adapter is what matches).
    expect((await vlitLogitsVsTorch(align.model, loraRef)).diff).toBeGreaterThan(1e-2);
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
    console.log(
      `[figures] resumed after SIGKILL of rank 1 (from ${path.basename(stage.resumedFrom ?? '')}) vs uninterrupted: projector max abs diff ${weights.diff.toExponential(2)}`,
    );
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
