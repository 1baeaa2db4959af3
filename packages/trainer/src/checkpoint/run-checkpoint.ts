/**
 * Node-only: checkpoints of a training run. Each is a folder `checkpoint-<step>` holding the trained
 * tensors (`model.safetensors`), the optimiser state (`optimizer.safetensors`) and
 * `trainer_state.json` (schedule step, data position, RNG state, recipe hash, file sizes). A
 * checkpoint is written into a hidden temporary folder, flushed to disk, then renamed into place, so a
 * crash at any moment leaves either the whole checkpoint or none; latestCheckpoint never returns a
 * partial one.
 */
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import {
  ConflictError,
  FormatError,
  NotFoundError,
  ValidationError,
  parseSafetensors,
  serializeSafetensors,
  type RngState,
  type SafetensorsInput,
  type Tensor,
} from '@vlit/core';
import { readUserFile } from '@vlit/core/node';
import { z } from 'zod';
import { dataPositionSchema, type DataPosition } from '../data/order.js';
import type { AdamWState } from '../optim/adamw.js';
import { parseAdamWState, serializeAdamWState } from '../optim/state-io.js';

/** Everything needed to continue a run exactly. */
export interface RunCheckpoint {
  /** Optimiser steps taken. */
  step: number;
  /** Index of the recipe stage. */
  stage: number;
  /** The trained tensors (full tensors and LoRA A/B), by name. */
  weights: ReadonlyMap<string, Tensor>;
  optimizer: AdamWState;
  /** Steps the lr schedule has taken. */
  scheduleStep: number;
  data: DataPosition;
  /** The trainer's own random stream (dropout, sampling), if any. */
  rng: RngState | null;
  recipeHash: string;
  /** Free JSON for the caller (e.g. the last metrics). */
  extra?: Record<string, unknown>;
}

/** Name of the state file; a checkpoint folder without it is not a checkpoint. */
export const TRAINER_STATE_FILE = 'trainer_state.json';
const FORMAT = 'vlit-run-checkpoint';
const NAME = /^checkpoint-(\d+)$/;
const TEMP = /^\.checkpoint-(\d+)\.tmp-(\d+)-[0-9a-f]+$/;

const trainerStateSchema = z.object({
  format: z.literal(FORMAT),
  version: z.literal(1),
  step: z.number().int().min(0),
  stage: z.number().int().min(0),
  scheduleStep: z.number().int().min(0),
  data: dataPositionSchema,
  rng: z
    .object({
      algorithm: z.literal('xoshiro128**'),
      s: z.tuple([z.number(), z.number(), z.number(), z.number()]).readonly(),
      spareNormal: z.number().nullable(),
    })
    .nullable(),
  recipeHash: z.string(),
  files: z.record(z.string(), z.number().int().min(0)),
  extra: z.record(z.string(), z.unknown()).optional(),
});

/** Progress of a checkpoint write. */
export type CheckpointWriteEvent = { phase: 'file'; file: string; bytes: number } | { phase: 'committed'; dir: string };

/** Options of writeRunCheckpoint. */
export interface WriteRunCheckpointOptions {
  /** Keep only this many newest checkpoints (older complete ones are removed after the new one commits). */
  keepLast?: number;
  /** Called after each file is on disk and after the commit. */
  onProgress?: (event: CheckpointWriteEvent) => void;
}

async function writeDurable(file: string, data: string | Uint8Array): Promise<number> {
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}

/** Write a checkpoint of a run into `runDir/checkpoint-<step>` atomically; returns its path. */
export async function writeRunCheckpoint(runDir: string, checkpoint: RunCheckpoint, options: WriteRunCheckpointOptions = {}): Promise<string> {
  const { step } = checkpoint;
  if (!Number.isInteger(step) || step < 0) throw new ValidationError(`step must be a non-negative integer, got ${step}`, { details: { field: 'step' } });
  await mkdir(runDir, { recursive: true });
  const finalDir = path.join(runDir, `checkpoint-${step}`);
  if (
    await stat(finalDir).then(
      () => true,
      () => false,
    )
  ) {
    throw new ConflictError(`checkpoint ${finalDir} already exists`, { details: { file: finalDir, step } });
  }
  const tmp = path.join(runDir, `.checkpoint-${step}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    const files: Record<string, number> = {};
    const put = async (name: string, data: string | Uint8Array) => {
      files[name] = await writeDurable(path.join(tmp, name), data);
      options.onProgress?.({ phase: 'file', file: name, bytes: files[name] });
    };
    const tensors = new Map<string, SafetensorsInput>(checkpoint.weights);
    await put('model.safetensors', serializeSafetensors(tensors, { format: 'pt' }));
    await put('optimizer.safetensors', serializeAdamWState(checkpoint.optimizer));
    const state: z.infer<typeof trainerStateSchema> = {
      format: FORMAT,
      version: 1,
      step,
      stage: checkpoint.stage,
      scheduleStep: checkpoint.scheduleStep,
      data: checkpoint.data,
      rng: checkpoint.rng,
      recipeHash: checkpoint.recipeHash,
      files,
      ...(checkpoint.extra ? { extra: checkpoint.extra } : {}),
    };
    // The state file goes last: its presence is what marks a folder as complete.
    await put(TRAINER_STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
    await syncDir(tmp);
    await rename(tmp, finalDir);
    await syncDir(runDir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  options.onProgress?.({ phase: 'committed', dir: finalDir });
  if (options.keepLast !== undefined) {
    const all = await listCheckpoints(runDir);
    for (const old of all.slice(0, Math.max(0, all.length - Math.max(1, options.keepLast)))) await rm(old.dir, { recursive: true, force: true });
  }
  return finalDir;
}

async function readState(dir: string): Promise<z.infer<typeof trainerStateSchema> | null> {
  const file = path.join(dir, TRAINER_STATE_FILE);
  let text: string;
  try {
    text = (await readUserFile(file, { maxBytes: 64 * 1024 * 1024 })).toString('utf8');
  } catch {
    return null;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = trainerStateSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}

async function isComplete(dir: string, step: number): Promise<boolean> {
  const state = await readState(dir);
  if (!state || state.step !== step) return false;
  for (const [name, size] of Object.entries(state.files)) {
    if (name === TRAINER_STATE_FILE) continue;
    const st = await stat(path.join(dir, name)).catch(() => null);
    if (!st || !st.isFile() || st.size !== size) return false;
  }
  return true;
}

/** Complete checkpoints of a run, oldest first. */
export async function listCheckpoints(runDir: string): Promise<{ step: number; dir: string }[]> {
  const entries = await readdir(runDir, { withFileTypes: true }).catch(() => []);
  const out: { step: number; dir: string }[] = [];
  for (const e of entries) {
    const m = NAME.exec(e.name);
    if (!m || !e.isDirectory()) continue;
    const dir = path.join(runDir, e.name);
    if (await isComplete(dir, Number(m[1]))) out.push({ step: Number(m[1]), dir });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint folder of a run, or null; temporary and partial folders are never returned. */
export async function latestCheckpoint(runDir: string): Promise<string | null> {
  const all = await listCheckpoints(runDir);
  return all.length ? all[all.length - 1].dir : null;
}

/** Remove temporary folders left by checkpoint writers that are no longer running; returns what was removed. */
export async function removeIncompleteCheckpoints(runDir: string): Promise<string[]> {
  const entries = await readdir(runDir, { withFileTypes: true }).catch(() => []);
  const removed: string[] = [];
  for (const e of entries) {
    const m = TEMP.exec(e.name);
    if (!m || !e.isDirectory()) continue;
    const pid = Number(m[2]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (err) {
        alive = (err as { code?: string }).code === 'EPERM';
      }
    }
    if (alive) continue; // a live writer (possibly this process) may still be filling it
    await rm(path.join(runDir, e.name), { recursive: true, force: true });
    removed.push(e.name);
  }
  return removed;
}

/** Options of readRunCheckpoint. */
export interface ReadRunCheckpointOptions {
  /** Refuse (ConflictError) a checkpoint written for another recipe. */
  recipeHash?: string;
}

/** Load a checkpoint folder written by writeRunCheckpoint. */
export async function readRunCheckpoint(dir: string, options: ReadRunCheckpointOptions = {}): Promise<RunCheckpoint> {
  const stateFile = path.join(dir, TRAINER_STATE_FILE);
  const state = await readState(dir);
  if (!state) {
    const exists = await stat(stateFile).then(
      () => true,
      () => false,
    );
    if (!exists) throw new NotFoundError(`${dir} is not a complete checkpoint (no ${TRAINER_STATE_FILE})`, { details: { file: stateFile } });
    throw new FormatError(`${stateFile} is not a Vlit run checkpoint state`, { details: { file: stateFile } });
  }
  if (options.recipeHash !== undefined && options.recipeHash !== state.recipeHash) {
    throw new ConflictError('the checkpoint was written for another recipe', {
      details: { file: stateFile, field: 'recipeHash', expected: options.recipeHash, actual: state.recipeHash },
    });
  }
  const load = async (name: string) => {
    const buf = await readUserFile(path.join(dir, name));
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  };
  const modelFile = path.join(dir, 'model.safetensors');
  const model = parseSafetensors(await load('model.safetensors'), { file: modelFile });
  const weights = new Map<string, Tensor>([...model.tensors].map(([k, e]) => [k, e.toTensor()]));
  const { state: optimizer } = parseAdamWState(await load('optimizer.safetensors'), path.join(dir, 'optimizer.safetensors'));
  return {
    step: state.step,
    stage: state.stage,
    weights,
    optimizer,
    scheduleStep: state.scheduleStep,
    data: state.data,
    rng: state.rng,
    recipeHash: state.recipeHash,
    ...(state.extra ? { extra: state.extra } : {}),
  };
}
