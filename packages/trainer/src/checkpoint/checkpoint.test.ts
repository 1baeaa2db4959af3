import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRng, createRngFromState, createTensor, isVlitError, type Tensor } from '@vlit/core';
import { describe, expect, it } from 'vitest';
import { createDataOrder, type TrainingSample } from '../data/index.js';
import { assertFiniteLoss, isNonFiniteLossError } from '../metrics.js';
import { createAdamW, createLrSchedule, clipGradNorm, type NamedParameter } from '../optim/index.js';
import { createMetricsWriter, latestCheckpoint, readRunCheckpoint, removeIncompleteCheckpoints, writeRunCheckpoint } from '../node.js';

const tmp = (p: string) => mkdtempSync(path.join(tmpdir(), p));

function samples(): TrainingSample[] {
  const rng = createRng('ckpt-data');
  return Array.from({ length: 40 }, (_, i) => {
    const len = rng.int(3, 30);
    const ids = Array.from({ length: len }, () => rng.int(0, 16));
    return { id: `s${i}`, inputIds: ids, labels: ids, imageSpans: [] };
  });
}

/**
 * A stand-in for the gradient graphs (which are another issue's work): a deterministic gradient from
 * the batch's tokens, the parameters and the trainer's random stream, so every piece of run state
 * (data order, optimiser, schedule, RNG) influences the result and a resume must restore all of it.
 */
function fakeGradient(params: NamedParameter[], tokens: number[], noise: ReturnType<typeof createRng>): Map<string, Float32Array> {
  return new Map(
    params.map((p) => {
      const g = new Float32Array(p.data.length);
      for (let i = 0; i < g.length; i++) g[i] = Math.sin(p.data[i] * 3 + tokens[(i * 7) % tokens.length]) + 0.1 * noise.normal();
      return [p.name, g];
    }),
  );
}

interface Run {
  params: NamedParameter[];
  batches: number[][];
}

async function train(runDir: string, steps: number, stopAt?: number): Promise<Run> {
  const list = samples();
  const names = ['proj.weight', 'proj.bias'];
  const sizes = [12, 4];
  let params: NamedParameter[] = names.map((name, k) => ({ name, data: createRng(`init-${name}`).fillNormal(new Float32Array(sizes[k])) }));
  const latest = await latestCheckpoint(runDir);
  const ck = latest ? await readRunCheckpoint(latest, { recipeHash: 'recipe-1' }) : null;
  if (ck) params = names.map((name) => ({ name, data: Float32Array.from((ck.weights.get(name) as Tensor<'float32'>).data) }));
  const opt = createAdamW(params, { lr: 0.05, weightDecay: 0.01, noDecay: ['*.bias'] });
  if (ck) opt.loadState(ck.optimizer);
  const order = createDataOrder(list, { batchSize: 4, seed: 3 }, ck?.data);
  const noise = ck?.rng ? createRngFromState(ck.rng) : createRng('noise');
  const schedule = createLrSchedule({ type: 'cosine', warmupSteps: 2, totalSteps: steps });
  const batches: number[][] = [];
  for (let step = ck?.step ?? 0; step < steps; step++) {
    const batch = order.next();
    batches.push(batch.indices);
    const grads = fakeGradient(
      params,
      batch.samples.flatMap((s) => s.inputIds),
      noise,
    );
    clipGradNorm(grads, { maxNorm: 1 });
    opt.step(grads, { lrFactor: schedule.factor(step) });
    if (step + 1 === stopAt) {
      await writeRunCheckpoint(runDir, {
        step: step + 1,
        stage: 0,
        weights: new Map(params.map((p) => [p.name, createTensor('float32', [p.data.length], p.data)])),
        optimizer: opt.getState(),
        scheduleStep: step + 1,
        data: order.position(),
        rng: noise.getState(),
        recipeHash: 'recipe-1',
      });
      return { params, batches };
    }
  }
  return { params, batches };
}

describe('run checkpoints', () => {
  it('a run stopped after a checkpoint and resumed ends bit-identical to an uninterrupted run, with the same data order', async () => {
    const whole = await train(tmp('vlit-run-a-'), 25);
    const dir = tmp('vlit-run-b-');
    const first = await train(dir, 25, 13); // 13 batches: mid second epoch (10 batches per epoch)
    expect(await latestCheckpoint(dir)).toBe(path.join(dir, 'checkpoint-13'));
    const second = await train(dir, 25);
    expect([...first.batches, ...second.batches]).toEqual(whole.batches);
    for (let i = 0; i < 2; i++) expect(Array.from(second.params[i].data)).toEqual(Array.from(whole.params[i].data));
  });

  it('round trip keeps every piece of state; another recipe is refused', async () => {
    const dir = tmp('vlit-ckpt-rt-');
    const rng = createRng(5);
    rng.normal(); // leaves a cached spare normal, which the state must carry
    const params: NamedParameter[] = [{ name: 'w', data: new Float32Array([1, 2, 3]) }];
    const opt = createAdamW(params, { lr: 0.1 });
    opt.step({ w: new Float32Array([0.5, -1, 2]) });
    const position = createDataOrder(samples(), { batchSize: 4, seed: 1 }).position();
    const written = {
      step: 7,
      stage: 1,
      weights: new Map<string, Tensor>([
        ['w', createTensor('float32', [3], params[0].data)],
        ['ids', createTensor('int64', [2], [1n, 2n])],
      ]),
      optimizer: opt.getState(),
      scheduleStep: 7,
      data: position,
      rng: rng.getState(),
      recipeHash: 'abc',
      extra: { lastLoss: 1.5 },
    };
    const at = await writeRunCheckpoint(dir, written);
    const back = await readRunCheckpoint(at);
    expect(back.weights.get('w')!.data).toEqual(params[0].data);
    expect(back.weights.get('ids')!.data).toEqual(new BigInt64Array([1n, 2n]));
    expect(back.optimizer.params.get('w')).toEqual(opt.getState().params.get('w'));
    expect([back.step, back.stage, back.scheduleStep, back.recipeHash, back.extra]).toEqual([7, 1, 7, 'abc', { lastLoss: 1.5 }]);
    expect(back.data).toEqual(position);
    expect(back.rng).toEqual(rng.getState());
    expect(createRngFromState(back.rng!).normal()).toBe(rng.clone().normal());
    await expect(readRunCheckpoint(at, { recipeHash: 'other' })).rejects.toMatchObject({ code: 'VLIT_CONFLICT', details: { field: 'recipeHash' } });
    await expect(writeRunCheckpoint(dir, written)).rejects.toMatchObject({ code: 'VLIT_CONFLICT' });
    await writeRunCheckpoint(dir, { ...written, step: 8 }, { keepLast: 1 });
    expect(readdirSync(dir).sort()).toEqual(['checkpoint-8']);
  });

  it('a writer SIGKILLed mid-write leaves a checkpoint that is never picked as latest', { timeout: 300_000 }, async () => {
    const dir = tmp('vlit-ckpt-kill-');
    const child = spawnSync(process.execPath, [new URL('./fixtures/kill-mid-write.mjs', import.meta.url).pathname, dir], {
      encoding: 'utf8',
      timeout: 240_000,
    });
    expect([child.signal, child.stderr]).toEqual(['SIGKILL', '']);
    const left = readdirSync(dir).sort();
    // The big checkpoint's folder exists with its weights but was never committed.
    expect(left).toHaveLength(2);
    expect(left[0]).toMatch(/^\.checkpoint-2\.tmp-\d+-[0-9a-f]+$/);
    expect(left[1]).toBe('checkpoint-1');
    expect(existsSync(path.join(dir, left[0], 'model.safetensors'))).toBe(true);
    expect(await latestCheckpoint(dir)).toBe(path.join(dir, 'checkpoint-1'));
    // A folder with the final name but without its state file (e.g. a partial copy) is not a checkpoint either.
    await mkdir(path.join(dir, 'checkpoint-9'));
    await writeFile(path.join(dir, 'checkpoint-9', 'model.safetensors'), 'partial');
    expect(await latestCheckpoint(dir)).toBe(path.join(dir, 'checkpoint-1'));
    await expect(readRunCheckpoint(path.join(dir, 'checkpoint-9'))).rejects.toMatchObject({ code: 'VLIT_NOT_FOUND' });
    expect(await removeIncompleteCheckpoints(dir)).toEqual([left[0]]);
    expect(readdirSync(dir).sort()).toEqual(['checkpoint-1', 'checkpoint-9']);
  });
});

describe('metrics and non-finite loss', () => {
  it('appends JSONL records that read back equal; NaN becomes null', async () => {
    const file = path.join(tmp('vlit-metrics-'), 'logs', 'metrics.jsonl');
    const w = await createMetricsWriter(file);
    await w.write({ step: 1, loss: 2.5, lr: 1e-3, gradNorm: 0.7, tokensPerSecond: 1000, samplesPerSecond: 4, stage: 'pretrain' });
    await w.write({ step: 2, loss: 2.25, lr: 9e-4, gradNorm: Number.NaN });
    await w.close();
    const again = await createMetricsWriter(file); // a resumed run appends
    await again.write({ step: 3, loss: 2, lr: 8e-4, evalAccuracy: 0.5 });
    await again.close();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { step: 1, loss: 2.5, lr: 1e-3, gradNorm: 0.7, tokensPerSecond: 1000, samplesPerSecond: 4, stage: 'pretrain' },
      { step: 2, loss: 2.25, lr: 9e-4, gradNorm: null },
      { step: 3, loss: 2, lr: 8e-4, evalAccuracy: 0.5 },
    ]);
  });

  it('a NaN or infinite loss is a typed error naming the step', () => {
    for (const loss of [Number.NaN, Infinity, -Infinity]) {
      try {
        assertFiniteLoss(loss, 42, 'finetune');
        expect.unreachable();
      } catch (err) {
        expect(isNonFiniteLossError(err)).toBe(true);
        expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
        expect((err as { details: Record<string, unknown> }).details).toMatchObject({ step: 42, field: 'loss', stage: 'finetune', value: String(loss) });
      }
    }
    expect(() => assertFiniteLoss(3.2, 1)).not.toThrow();
  });
});
