/**
 * Exact resume: a run SIGKILLed after a checkpoint and resumed ends with the weights of an
 * uninterrupted run and saw the same batches at every step. Both runs go through the built package in
 * a run directory (checkpoints, metrics.jsonl, final outputs), as a user's process would.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Tensor } from '@vlit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { latestCheckpoint } from '../checkpoint/run-checkpoint.js';
import { readPeftAdapter } from '../lora/adapter-files.js';
import type { TrainingProgressEvent, TrainStageResult } from './train-stage.js';

interface FixtureModule {
  run(
    outDir: string,
    onProgress?: (e: TrainingProgressEvent) => void,
  ): Promise<TrainStageResult & { outputs: { trainedFile?: string; adapterDirs: string[] } }>;
}

const fixture = new URL('./fixtures/resume-run.mjs', import.meta.url).pathname;
const root = mkdtempSync(path.join(tmpdir(), 'vlit-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function stepsOf(file: string): { step: number; sampleIndices: number[]; loss: number }[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; sampleIndices: number[]; loss: number });
}

describe('resume after SIGKILL', () => {
  it('ends with the uninterrupted weights (within 1e-6) and the same data order', { timeout: 600_000 }, async () => {
    const interrupted = path.join(root, 'interrupted');
    const child = spawn(process.execPath, [fixture, interrupted, '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => String(d).includes('READY') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited ${code} before READY: ${stderr}`)));
    });
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(child.signalCode).toBe('SIGKILL');
    expect(path.basename((await latestCheckpoint(interrupted)) as string)).toBe('checkpoint-4');
    expect(stepsOf(path.join(interrupted, 'metrics.jsonl')).map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);

    const { run } = (await import(fixture)) as FixtureModule;
    const events: TrainingProgressEvent[] = [];
    const resumed = await run(interrupted, (e) => events.push(e));
    expect(resumed.resumedFrom).toBe(4);
    expect(resumed.steps).toBe(8);
    expect(events.filter((e) => e.type === 'step').map((e) => (e as { step: number }).step)).toEqual([5, 6, 7, 8]);

    const fresh = await run(path.join(root, 'fresh'));
    expect(fresh.resumedFrom).toBeNull();
    expect(fresh.steps).toBe(8);
    expect([...resumed.weights.keys()].sort()).toEqual([...fresh.weights.keys()].sort());
    let worst = 0;
    for (const [name, w] of fresh.weights) {
      const r = resumed.weights.get(name) as Tensor<'float32'>;
      for (let i = 0; i < w.data.length; i++) worst = Math.max(worst, Math.abs(w.data[i] - r.data[i]));
    }
    expect(worst).toBeLessThanOrEqual(1e-6);
    // The run trained: weights moved from their start.
    let moved = 0;
    for (const p of fresh.graph.parameters) {
      const w = fresh.weights.get(p.name) as Tensor<'float32'>;
      for (let i = 0; i < w.data.length; i++) moved = Math.max(moved, Math.abs(w.data[i] - p.initial.data[i]));
    }
    expect(moved).toBeGreaterThan(1e-3);

    // Same batches at every step: the replayed step 5 and the resumed steps match the uninterrupted run.
    const a = stepsOf(path.join(interrupted, 'metrics.jsonl'));
    const b = stepsOf(path.join(root, 'fresh', 'metrics.jsonl'));
    expect(a.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 5, 6, 7, 8]);
    expect(b.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const orderA = new Map(a.map((r) => [r.step, r.sampleIndices]));
    for (const r of b) expect(orderA.get(r.step), `step ${r.step}`).toEqual(r.sampleIndices);
    expect(a[4].sampleIndices).toEqual(a[5].sampleIndices);
    // Two micro-batches of 2 per step over 10 samples: every epoch uses every sample once.
    expect(
      b
        .slice(0, 2)
        .flatMap((r) => r.sampleIndices)
        .concat(b[2].sampleIndices.slice(0, 2))
        .sort((x, y) => x - y),
    ).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // Outputs: the trained projector and a PEFT adapter folder that reads back equal to the final weights.
    expect(resumed.outputs.trainedFile).toBeDefined();
    const adapter = await readPeftAdapter(resumed.outputs.adapterDirs[0]);
    expect(adapter.config.r).toBe(2);
    expect(adapter.config.lora_alpha).toBe(4);
    expect([...adapter.modules.keys()].sort()).toEqual(resumed.graph.lora.map((m) => m.module).sort());
    for (const m of resumed.graph.lora) {
      expect(Array.from(adapter.modules.get(m.module)?.a.data ?? [])).toEqual(Array.from((resumed.weights.get(m.aName) as Tensor<'float32'>).data));
      expect(Array.from(adapter.modules.get(m.module)?.b.data ?? [])).toEqual(Array.from((resumed.weights.get(m.bName) as Tensor<'float32'>).data));
    }
  });
});
