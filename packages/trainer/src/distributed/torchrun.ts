/**
 * The distributed engine: a recipe's stages run by PyTorch's torchrun (DDP over gloo or nccl, FSDP on
 * request) with transformers and peft, through the small Python worker shipped in this package
 * (`python/vlit_worker`). Vlit prepares the data shards and the job, launches torchrun on a loopback
 * (or given) c10d rendezvous, streams every rank's log and metrics to the progress callback, turns a
 * failed rank into a TorchrunWorkerError, resumes from the last checkpoint, and hands back the
 * output folder (a Hugging Face checkpoint folder, plus a PEFT adapter for LoRA stages).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BackendError, InvalidArgumentError, NotFoundError, ValidationError } from '@vlit/core';
import { openCheckpointFolder, type CheckpointFolder } from '@vlit/core/node';
import { readPeftAdapter } from '../lora/adapter-files.js';
import type { LoraAdapter } from '../lora/adapter.js';
import { latestCheckpoint } from '../checkpoint/run-checkpoint.js';
import { metricsRecordSchema, type MetricsRecord } from '../metrics.js';
import { parseRecipe, recipeHash, type Recipe, type RecipeInput } from '../recipe.js';
import { accelerateConfigYaml } from './accelerate.js';
import { TorchrunWorkerError, parseTorchrunFailures } from './errors.js';
import { planStage, resolveStageForWorker, stageSeed, writeDataShards, type TorchrunJob, type TorchrunSample } from './job.js';

/** How torchrun is launched on this node. */
export interface TorchrunEngineOptions {
  /** Python with torch, transformers, peft, safetensors. Default: env VLIT_PYTHON, else `python3`. */
  python?: string;
  /** Folder holding the `vlit_worker` package (default: the one shipped in @vlit/trainer). */
  workerDir?: string;
  /** Ranks on this node (`--nproc-per-node`). Default 1. */
  nprocPerNode?: number;
  /** Nodes (`--nnodes`). Default 1. */
  nnodes?: number;
  /** This node's rank (`--node-rank`); with c10d the global ranks follow the rendezvous. Default 0. */
  nodeRank?: number;
  /** c10d rendezvous `host:port`. Default: `127.0.0.1:<free port>` (one node only). */
  rdzvEndpoint?: string;
  /** Rendezvous id shared by all nodes of a run. Default `vlit-<stage>`. */
  rdzvId?: string;
  /** This node's address as peers reach it (`--local-addr`). Default 127.0.0.1 when the endpoint is loopback. */
  localAddr?: string;
  /** `gloo` (CPU) or `nccl` (GPU). Default gloo. */
  backend?: 'gloo' | 'nccl';
  /** `ddp` (default) or `fsdp` (PyTorch's fully_shard, FSDP2; no mid-run checkpoints yet, so no resume). */
  strategy?: 'ddp' | 'fsdp';
  /** Threads per rank (OMP_NUM_THREADS). Default 1. */
  threadsPerRank?: number;
  /** Extra environment for torchrun and the workers. */
  env?: Record<string, string>;
}

/** Progress of a distributed run. */
export type TorchrunEvent =
  | { type: 'stage-start'; stage: string; stageIndex: number; totalSteps: number; resumeFrom: string | null; runDir: string; command: string[] }
  | { type: 'log'; stage: string; rank: number | null; line: string }
  | { type: 'step'; stage: string; stageIndex: number; step: number; totalSteps: number; metrics: MetricsRecord }
  | { type: 'checkpoint'; stage: string; step: number; dir: string }
  | { type: 'stage-done'; stage: string; stageIndex: number; model: string; adapter: string | null };

/** Options of one distributed training call. */
export interface TorchrunTrainOptions {
  /** The starting model as a Hugging Face checkpoint folder. */
  model: string;
  /** Encoded samples per stage, by stage name (or index). */
  data: Record<string, readonly TorchrunSample[]>;
  /** Where job files, shards, logs, metrics, checkpoints and outputs go. */
  outputDir: string;
  /** Which stages to run (names or indices). Default all, in order; each starts from the previous one's merged model. */
  stages?: readonly (string | number)[];
  /** Continue from the newest checkpoint of each stage and skip finished stages. Default true. */
  resume?: boolean;
  /** Override of the stages' checkpointEvery (optimiser steps). */
  checkpointEvery?: number;
  /** Keep only this many newest checkpoints. */
  keepLast?: number;
  padTokenId?: number;
  ignoreIndex?: number;
  /** Most samples per data shard (default 4096). */
  samplesPerShard?: number;
  /** A data shard closes once its pixels reach this many bytes (default 256 MiB). */
  maxShardPixelBytes?: number;
  onProgress?: (event: TorchrunEvent) => void;
  signal?: AbortSignal;
}

/** What one stage produced. */
export interface TorchrunStageResult {
  name: string;
  index: number;
  runDir: string;
  /** The merged model (HF checkpoint folder); absent on a node whose ranks did not save. */
  model: string;
  /** The PEFT adapter folder of a LoRA stage. */
  adapter: string | null;
  /** The metrics this node saw in this call (a resumed stage reports from its resume step; metrics.jsonl in runDir has them all). */
  metrics: MetricsRecord[];
  resumedFrom: string | null;
}

/** What a distributed run produced. */
export interface TorchrunResult {
  outputDir: string;
  /** The last stage's merged model folder. */
  model: string;
  adapter: string | null;
  stages: TorchrunStageResult[];
}

/** An engine with the local engine's shape: `train(recipe, options)` with a progress callback and metrics. */
export interface TorchrunEngine {
  readonly options: TorchrunEngineOptions;
  /** Run the recipe's stages under torchrun. */
  train(recipe: Recipe | RecipeInput, options: TorchrunTrainOptions): Promise<TorchrunResult>;
}

/** The folder holding the shipped `vlit_worker` package (from dist/ or src/distributed/). */
export function torchrunWorkerDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'python');
    if (existsSync(path.join(candidate, 'vlit_worker', '__init__.py'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new NotFoundError('the vlit_worker Python package was not found next to @vlit/trainer; pass workerDir', { details: { field: 'workerDir' } });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const isLoopback = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '::1';

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string[];
}

async function runProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  onLine: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<Spawned> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const output: string[] = [];
  const keep = (line: string) => {
    output.push(line);
    if (output.length > 400) output.splice(0, output.length - 400);
    onLine(line);
  };
  createInterface({ input: child.stdout }).on('line', keep);
  createInterface({ input: child.stderr }).on('line', keep);
  // The whole process group: torchrun's workers must not outlive an abort.
  const abort = () => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  };
  signal?.addEventListener('abort', abort, { once: true });
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new BackendError(`could not start ${command}: ${err.message}`, { cause: err, details: { file: command } })));
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', abort);
      resolve({ code, signal: sig, output });
    });
  });
}

async function tail(file: string, n: number): Promise<string[] | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .slice(-n);
}

interface ModelInfo {
  parameters: { name: string; shape: number[] }[];
  modelType: string | null;
}

async function describeModel(python: string, env: NodeJS.ProcessEnv, modelDir: string, out: string, signal?: AbortSignal): Promise<ModelInfo> {
  const cached = await readFile(out, 'utf8').catch(() => null);
  if (cached !== null) {
    const info = JSON.parse(cached) as ModelInfo & { modelDir?: string };
    if (info.modelDir === modelDir) return info;
  }
  const run = await runProcess(python, ['-m', 'vlit_worker', '--describe', modelDir, out], env, () => undefined, signal);
  if (run.code !== 0) {
    throw new BackendError(`the worker could not load ${modelDir} with transformers`, {
      details: { file: modelDir, lastLines: run.output.slice(-20), rank: null },
    });
  }
  const info = JSON.parse(await readFile(out, 'utf8')) as ModelInfo;
  await writeFile(out, JSON.stringify({ ...info, modelDir }));
  return info;
}

const PEER_LOST = /connection (reset|closed) by peer|broken pipe|peer .*(closed|died)|socket closed|recv.*failed|connection refused/i;

/**
 * Which rank caused a failed run. When one rank dies, its peers fail a moment later in the next
 * collective ("connection reset by peer"), and torchrun may report any of them first; torchrun
 * itself then stops the rest with SIGTERM. So: a rank that failed of its own error (not a lost
 * peer); else a rank torchrun saw killed by a signal other than its own SIGTERM; else a rank whose
 * log stops without a failure line (killed before it could write one); else torchrun's root cause.
 */
async function attributeFailure(
  output: string,
  logDir: string,
  reported: number | null,
): Promise<{ rank: number | null; exitCode: number | null; lastLines: string[] | null; logFile?: string }> {
  const failures = parseTorchrunFailures(output);
  const logs = (await readdir(logDir).catch(() => [] as string[]))
    .map((f) => /^rank-(\d+)\.log$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const tails = new Map<number, string[]>();
  for (const r of logs) tails.set(r, (await tail(path.join(logDir, `rank-${r}.log`), 20)) ?? []);
  const failedLine = (r: number) => (tails.get(r) ?? []).find((l) => l.startsWith('FAILED:'));
  const signalled = failures.find((f) => f.exitCode < 0 && f.exitCode !== -15)?.rank ?? failures.find((f) => f.exitCode < 0)?.rank;
  const silent = logs.find((r) => failedLine(r) === undefined && failures.some((f) => f.rank === r));
  const silentAny = logs.find((r) => failedLine(r) === undefined);
  const own = logs.find((r) => {
    const line = failedLine(r);
    return line !== undefined && !PEER_LOST.test(line);
  });
  const rank = own ?? signalled ?? silent ?? silentAny ?? reported ?? failures[0]?.rank ?? null;
  const exitCode = failures.find((f) => f.rank === rank)?.exitCode ?? null;
  const logFile = rank !== null && tails.has(rank) ? path.join(logDir, `rank-${rank}.log`) : undefined;
  return { rank, exitCode, lastLines: rank !== null ? (tails.get(rank) ?? null) : null, ...(logFile ? { logFile } : {}) };
}

/** Create the torchrun engine (launch settings of this node). */
export function createTorchrunEngine(engineOptions: TorchrunEngineOptions = {}): TorchrunEngine {
  const nproc = engineOptions.nprocPerNode ?? 1;
  const nnodes = engineOptions.nnodes ?? 1;
  const nodeRank = engineOptions.nodeRank ?? 0;
  for (const [field, v] of [
    ['nprocPerNode', nproc],
    ['nnodes', nnodes],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${field} must be a positive integer, got ${v}`, { details: { field } });
  }
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nnodes) {
    throw new InvalidArgumentError(`nodeRank must be in [0, ${nnodes}), got ${nodeRank}`, { details: { field: 'nodeRank' } });
  }
  if (nnodes > 1 && !engineOptions.rdzvEndpoint) {
    throw new InvalidArgumentError('several nodes need a shared rdzvEndpoint (host:port of node 0)', { details: { field: 'rdzvEndpoint' } });
  }

  async function train(recipeInput: Recipe | RecipeInput, options: TorchrunTrainOptions): Promise<TorchrunResult> {
    const recipe = parseRecipe(recipeInput);
    const hash = await recipeHash(recipe);
    const python = engineOptions.python ?? process.env.VLIT_PYTHON ?? 'python3';
    const workerDir = engineOptions.workerDir ?? torchrunWorkerDir();
    const outputDir = path.resolve(options.outputDir);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      OMP_NUM_THREADS: String(engineOptions.threadsPerRank ?? 1),
      PYTHONUNBUFFERED: '1',
      PYTHONPATH: [workerDir, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
      ...engineOptions.env,
    };
    const wanted = (options.stages ?? recipe.stages.map((_, i) => i)).map((s) => {
      const i = typeof s === 'number' ? s : recipe.stages.findIndex((st) => st.name === s);
      if (i < 0 || i >= recipe.stages.length)
        throw new InvalidArgumentError(`no stage ${String(s)} in recipe ${recipe.name}`, { details: { field: 'stages' } });
      return i;
    });
    let modelDir = path.resolve(options.model);
    const results: TorchrunStageResult[] = [];

    for (const stageIndex of wanted) {
      const stage = recipe.stages[stageIndex];
      const runDir = path.join(outputDir, `stage-${stageIndex}-${stage.name}`);
      const stageOut = path.join(runDir, 'output');
      const samples = options.data[stage.name] ?? options.data[String(stageIndex)];
      if (!samples) throw new InvalidArgumentError(`no data for stage ${stage.name}`, { details: { field: `data.${stage.name}` } });
      await mkdir(runDir, { recursive: true });
      if (options.resume === false) {
        // Starting over: the old run's checkpoints, metrics and output would otherwise mix with the new ones.
        for (const entry of await readdir(runDir)) {
          if (/^(\.?checkpoint-\d+.*|metrics\.jsonl|output)$/.test(entry)) await rm(path.join(runDir, entry), { recursive: true, force: true });
        }
      }
      const donePath = path.join(stageOut, 'vlit-done.json');
      if (options.resume !== false && existsSync(donePath)) {
        const done = JSON.parse(await readFile(donePath, 'utf8')) as { model: string; adapter: string | null; recipeHash: string };
        if (done.recipeHash === hash) {
          results.push({ name: stage.name, index: stageIndex, runDir, model: done.model, adapter: done.adapter, metrics: [], resumedFrom: null });
          modelDir = done.model;
          continue;
        }
      }

      const info = await describeModel(python, env, modelDir, path.join(runDir, 'model-info.json'), options.signal);
      const names = info.parameters.map((p) => p.name);
      const resolved = resolveStageForWorker(stage, stageIndex, names);
      const plan = planStage(stage, samples, recipe.seed);
      const shards = await writeDataShards(path.join(runDir, 'data'), samples, {
        samplesPerShard: options.samplesPerShard,
        maxShardPixelBytes: options.maxShardPixelBytes,
      });
      const resumeFrom = options.resume !== false ? await latestCheckpoint(runDir) : null;
      const backend = engineOptions.backend ?? 'gloo';
      const job: TorchrunJob = {
        format: 'vlit-torchrun-job',
        version: 1,
        recipeHash: hash,
        stageIndex,
        stageName: stage.name,
        seed: stageSeed(recipe, stage),
        modelDir,
        tensorNames: names,
        ...resolved,
        schedule: { type: stage.schedule.type, warmupSteps: plan.warmupSteps, totalSteps: plan.totalSteps, numCycles: stage.schedule.numCycles },
        clipGradNorm: stage.clipGradNorm,
        batchSize: stage.batchSize,
        gradientAccumulation: stage.gradientAccumulation,
        padTokenId: options.padTokenId ?? 0,
        ignoreIndex: options.ignoreIndex ?? -100,
        shards,
        steps: plan.steps,
        checkpointEvery: options.checkpointEvery ?? stage.checkpointEvery ?? null,
        keepLast: options.keepLast ?? null,
        resumeFrom,
        runDir,
        outputDir: stageOut,
        backend,
        strategy: engineOptions.strategy ?? 'ddp',
      };
      const globalBatch = stage.batchSize * stage.gradientAccumulation;
      if (globalBatch < nproc * nnodes) {
        throw new ValidationError(`global batch ${globalBatch} is smaller than the world size ${nproc * nnodes}`, {
          details: { field: `stages.${stageIndex}.batchSize` },
        });
      }
      const jobFile = path.join(runDir, 'job.json');
      await writeFile(jobFile, `${JSON.stringify(job)}\n`);

      const endpoint = engineOptions.rdzvEndpoint ?? `127.0.0.1:${await freePort()}`;
      const host = endpoint.slice(0, endpoint.lastIndexOf(':'));
      const localAddr = engineOptions.localAddr ?? (isLoopback(host) ? '127.0.0.1' : undefined);
      const rdzvId = engineOptions.rdzvId ?? `vlit-${stage.name}`;
      const args = [
        '-m',
        'torch.distributed.run',
        `--nnodes=${nnodes}`,
        `--nproc-per-node=${nproc}`,
        `--node-rank=${nodeRank}`,
        '--rdzv-backend=c10d',
        `--rdzv-endpoint=${endpoint}`,
        `--rdzv-id=${rdzvId}`,
        ...(localAddr ? [`--local-addr=${localAddr}`] : []),
        '--max-restarts=0',
        '-m',
        'vlit_worker',
        jobFile,
      ];
      await writeFile(
        path.join(runDir, 'accelerate.yaml'),
        accelerateConfigYaml({ nnodes, nprocPerNode: nproc, nodeRank, rdzvEndpoint: endpoint, backend, strategy: job.strategy }),
      );
      const stageEnv = { ...env, ...(isLoopback(host) && !env.GLOO_SOCKET_IFNAME ? { GLOO_SOCKET_IFNAME: 'lo' } : {}) };
      options.onProgress?.({ type: 'stage-start', stage: stage.name, stageIndex, totalSteps: plan.totalSteps, resumeFrom, runDir, command: [python, ...args] });

      const metrics: MetricsRecord[] = [];
      let output: { model: string; adapter: string | null } | null = null;
      let failedRank: number | null = null;
      const onLine = (line: string) => {
        let ev: Record<string, unknown> | null = null;
        if (line.startsWith('@@vlit ')) {
          try {
            ev = JSON.parse(line.slice(7)) as Record<string, unknown>;
          } catch {
            // Interleaved output of two processes: keep it as a log line rather than lose the run.
            ev = null;
          }
        }
        if (ev) {
          if (ev.event === 'step') {
            const record = metricsRecordSchema.parse({
              ...ev,
              loss: ev.loss ?? Number.NaN,
              gradNorm: ev.gradNorm ?? Number.NaN,
              event: undefined,
              totalSteps: undefined,
            });
            metrics.push(record);
            options.onProgress?.({ type: 'step', stage: stage.name, stageIndex, step: record.step, totalSteps: plan.totalSteps, metrics: record });
          } else if (ev.event === 'checkpoint') {
            options.onProgress?.({ type: 'checkpoint', stage: stage.name, step: Number(ev.step), dir: String(ev.dir) });
          } else if (ev.event === 'done') {
            output = { model: String(ev.model), adapter: typeof ev.adapter === 'string' ? ev.adapter : null };
          } else if (ev.event === 'failed' && failedRank === null) {
            failedRank = Number(ev.rank);
          }
          return;
        }
        const m = /^\[rank (\d+)\] (.*)$/.exec(line);
        options.onProgress?.({ type: 'log', stage: stage.name, rank: m ? Number(m[1]) : null, line: m ? m[2] : line });
      };
      const run = await runProcess(python, args, stageEnv, onLine, options.signal);
      // Appended, so a failed launch's summary survives the resumed one.
      await appendFile(path.join(runDir, 'torchrun.log'), `=== ${new Date().toISOString()} exit ${run.code ?? run.signal}\n${run.output.join('\n')}\n`).catch(
        () => undefined,
      );
      if (run.code !== 0) {
        const failure = await attributeFailure(run.output.join('\n'), path.join(runDir, 'logs'), failedRank);
        throw new TorchrunWorkerError({ ...failure, lastLines: failure.lastLines ?? run.output.slice(-20), stage: stage.name });
      }
      const saved = output as { model: string; adapter: string | null } | null;
      if (saved) await writeFile(donePath, `${JSON.stringify({ ...saved, recipeHash: hash })}\n`);
      const model = saved?.model ?? path.join(stageOut, 'model');
      results.push({ name: stage.name, index: stageIndex, runDir, model, adapter: saved?.adapter ?? null, metrics, resumedFrom: resumeFrom });
      options.onProgress?.({ type: 'stage-done', stage: stage.name, stageIndex, model, adapter: saved?.adapter ?? null });
      modelDir = model;
    }
    const last = results[results.length - 1];
    return { outputDir, model: last.model, adapter: last.adapter, stages: results };
  }

  return { options: engineOptions, train };
}

/** Run a recipe under torchrun: createTorchrunEngine(engine).train(recipe, options) in one call. */
export function trainWithTorchrun(recipe: Recipe | RecipeInput, options: TorchrunTrainOptions & { engine?: TorchrunEngineOptions }): Promise<TorchrunResult> {
  return createTorchrunEngine(options.engine).train(recipe, options);
}

/** Open what a run produced: the merged model as a checkpoint folder, and the adapter of a LoRA stage. */
export async function loadTorchrunOutput(result: Pick<TorchrunResult, 'model' | 'adapter'>): Promise<{ model: CheckpointFolder; adapter: LoraAdapter | null }> {
  const model = await openCheckpointFolder(result.model);
  const adapter = result.adapter ? await readPeftAdapter(result.adapter) : null;
  return { model, adapter };
}
