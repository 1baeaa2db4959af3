/**
 * Stage 0 of the main job: the tower's learned channels trained on rendered scenes with shape labels.
 * Expectations from outside the code under test: chance from the number of shapes, the pinned entries
 * against freshly built hand-set weights, the hand-set channels of the last hidden state against hidden
 * state 0 of a tower run by the encoder package, and the loss at the start against ln(shapes).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RawImage } from '@vlit/core';
import { createHfVisionEncoder } from '@vlit/encoders';
import { WORLD_BACKGROUNDS, WORLD_COLORS, WORLD_SHAPES, createWorld, worldSceneSvg, type WorldScene } from '@vlit/data';
import { vitAsHfVisionTower } from '@vlit/models/node';
import { createNodeRuntime } from '@vlit/runtime/node';
import { handSetWidth, patchStatisticsVitWeights, pinnedEntries } from './vision.js';
import { patchLabels, pretrainWorldTower, shiftImage, type VisionPretrainSettings } from './vision-pretrain.js';
import { runTrainedMainJob } from './main-job.js';

const SETTINGS: VisionPretrainSettings = {
  scenes: 400,
  heldoutScenes: 80,
  steps: 600,
  batchSize: 16,
  lr: 3e-3,
  shift: 6,
  width: 32,
  layers: 2,
  intermediate: 64,
};

describe('stage 0 data: shifted images and patch labels', () => {
  it('shifts an image by (dx, dy), the background filling what the shift uncovers', () => {
    const W = 4;
    const H = 3;
    const data = new Uint8Array(W * H * 3).map((_, i) => i + 1);
    const image: RawImage = { width: W, height: H, channels: 3, data };
    const bg = [200, 201, 202] as const;
    for (const [dx, dy] of [
      [1, -1],
      [-2, 1],
      [0, 2],
      [4, 0],
    ] as const) {
      const out = shiftImage(image, bg, dx, dy);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const sx = x - dx;
          const sy = y - dy;
          const inside = sx >= 0 && sx < W && sy >= 0 && sy < H;
          for (let c = 0; c < 3; c++) expect(out.data[(y * W + x) * 3 + c], `${dx},${dy} at ${x},${y}`).toBe(inside ? data[(sy * W + sx) * 3 + c] : bg[c]);
        }
      }
    }
    expect(shiftImage(image, bg, 0, 0).data).toEqual(data);
    expect(image.data).toEqual(new Uint8Array(W * H * 3).map((_, i) => i + 1));
  });

  it('labels each patch with the shape of the largest visible object centred in it, after the shift', () => {
    const object = (shape: string, x: number, y: number, area: number, centerVisible = true) => ({ shape, center: [x, y], area, centerVisible });
    // 16 px scene, 8 px patches: patches 0 1 / 2 3.
    const scene = {
      width: 16,
      height: 16,
      objects: [
        object('star', 3, 3, 10),
        object('circle', 5, 4, 20),
        object('square', 12, 12, 5, false),
        object('hexagon', 12, 3, 1),
        object('cross', 4, 12, 2),
      ],
    } as unknown as WorldScene;
    const id = (shape: string): bigint => BigInt(WORLD_SHAPES.indexOf(shape as (typeof WORLD_SHAPES)[number]));
    const out = new BigInt64Array(6).fill(7n);
    // No shift: circle beats star in patch 0 (larger); hexagon in 1; cross in 2; the hidden square labels nothing.
    expect(patchLabels(scene, 8, 0, 0, out, 1)).toBe(3);
    expect([...out]).toEqual([7n, id('circle'), id('hexagon'), id('cross'), -100n, 7n]);
    // Shifted 4 px right: star (7,3) alone in patch 0, circle (9,4) in 1, hexagon (16,3) leaves the image, cross (8,12) in 3.
    expect(patchLabels(scene, 8, 4, 0, out, 0)).toBe(3);
    expect([...out.subarray(0, 4)]).toEqual([id('star'), id('circle'), -100n, id('cross')]);
  });
});

describe('stage 0 data on rendered scenes', () => {
  it("shows, at the shifted centre of every object that labels its patch, that object's colour", async () => {
    const runtime = createNodeRuntime();
    const codec = runtime.images;
    const svgToPng = codec.svgToPng as NonNullable<typeof codec.svgToPng>;
    const world = createWorld({ seed: 11, size: 64 });
    let checked = 0;
    let matched = 0;
    for (const [k, scene] of world.scenes('train', 24).entries()) {
      const image = await codec.decode(await svgToPng.call(codec, worldSceneSvg(scene, { text: false })));
      const [dx, dy] = [(k % 7) - 3, ((3 * k) % 9) - 4];
      const shifted = shiftImage(image, WORLD_BACKGROUNDS[scene.background].rgb, dx, dy);
      const labels = new BigInt64Array(64);
      patchLabels(scene, 8, dx, dy, labels, 0);
      for (const o of scene.objects) {
        const x = Math.floor(o.center[0]) + dx;
        const y = Math.floor(o.center[1]) + dy;
        if (!o.centerVisible || x < 0 || y < 0 || x >= 64 || y >= 64) continue;
        const p = Math.floor((o.center[1] + dy) / 8) * 8 + Math.floor((o.center[0] + dx) / 8);
        if (labels[p] !== BigInt(WORLD_SHAPES.indexOf(o.shape))) continue; // a larger object centred in the same patch
        checked++;
        const rgb = WORLD_COLORS[o.color];
        if ([0, 1, 2].every((c) => shifted.data[(y * 64 + x) * 3 + c] === rgb[c])) matched++;
      }
    }
    expect(checked).toBeGreaterThan(40);
    // Centres are inside the fill (anti-aliasing only touches edges): all, or all but a sliver of a tiny shape.
    expect(matched / checked).toBeGreaterThan(0.95);
  });
});

describe('pretrainWorldTower (stage 0)', () => {
  const runtime = createNodeRuntime();

  it("lowers the shape loss, keeps the pinned entries, and the features carry hidden state 0's hand-set channels", async () => {
    const phases = new Set<string>();
    const result = await pretrainWorldTower({
      runtime,
      imageSize: 64,
      patchSize: 8,
      settings: SETTINGS,
      worldSeed: 7,
      seed: 7,
      onProgress: (e) => phases.add(`${e.phase}:${e.done === e.total}`),
    });
    expect([...phases]).toEqual(expect.arrayContaining(['render:true', 'train:true', 'evaluate:true']));
    expect(result.chance).toBeCloseTo(1 / WORLD_SHAPES.length, 12);
    // A linear head at random over 7 shapes starts near ln 7; training lowers it.
    expect(result.firstLoss).toBeGreaterThan(Math.log(WORLD_SHAPES.length) - 0.7);
    expect(result.lastLoss).toBeLessThan(result.firstLoss - 0.3);
    // Every held-out scene has 1 to 6 shapes: at least one labelled patch each, accuracy a fraction of them.
    // (Held-out accuracy well over chance needs thousands of steps: the full job measures it, docs/main-job.md.)
    expect(result.labelledPatches.heldout).toBeGreaterThanOrEqual(SETTINGS.heldoutScenes);
    expect(result.heldoutAccuracy).toBeGreaterThanOrEqual(0);
    expect(result.heldoutAccuracy).toBeLessThanOrEqual(1);

    // Pinned entries are exactly the hand-set weights built afresh; the rest moved.
    const fresh = patchStatisticsVitWeights(result.vit, '7:vit');
    for (const [name, mask] of pinnedEntries(result.vit)) {
      const before = fresh.get(name)?.data as Float32Array;
      const after = result.weights.get(name)?.data as Float32Array;
      let moved = 0;
      for (let i = 0; i < mask.length; i++) {
        if (mask[i]) expect(after[i], `${name}[${i}]`).toBe(before[i]);
        else if (after[i] !== before[i]) moved++;
      }
      expect(moved, name).toBeGreaterThan(0);
    }

    // Through the encoder package: the last hidden state's hand-set channels equal hidden state 0's.
    const world = createWorld({ seed: 7, size: 64 });
    const codec = runtime.images;
    const images: RawImage[] = [];
    for (const scene of world.scenes('heldout', 3))
      images.push(await codec.decode(await (codec.svgToPng as NonNullable<typeof codec.svgToPng>)(worldSceneSvg(scene))));
    const parts = vitAsHfVisionTower(result.vit, result.weights);
    const towerAt = (featureLayer: number) =>
      createHfVisionEncoder({ backend: runtime.backend, spec: parts.spec, weights: parts.weights, featureLayer, selectStrategy: 'default' });
    const [first, last] = await Promise.all([towerAt(0), towerAt(-1)]);
    try {
      const a = await first.encode(images);
      const b = await last.encode(images);
      const [n, tokens, D] = a.dims;
      const hand = handSetWidth(64, 8);
      let learnedDiffer = 0;
      for (let i = 0; i < n * tokens; i++) {
        for (let d = 0; d < D; d++) {
          if (d < hand) expect(b.data[i * D + d]).toBe(a.data[i * D + d]);
          else if (b.data[i * D + d] !== a.data[i * D + d]) learnedDiffer++;
        }
      }
      expect(learnedDiffer).toBeGreaterThan(0);
    } finally {
      await first.release();
      await last.release();
    }
  }, 300_000);

  it('is deterministic: the same settings give the same weights', async () => {
    const small = { ...SETTINGS, scenes: 24, heldoutScenes: 4, steps: 3 };
    const run = () => pretrainWorldTower({ runtime, imageSize: 64, patchSize: 8, settings: small, worldSeed: 3, seed: 5 });
    const [x, y] = [await run(), await run()];
    for (const [name, t] of x.weights) expect(y.weights.get(name)?.data, name).toEqual(t.data);
    expect(y.lastLoss).toBe(x.lastLoss);
    // Another seed draws other initial weights and batches.
    const z = await pretrainWorldTower({ runtime, imageSize: 64, patchSize: 8, settings: small, worldSeed: 3, seed: 6 });
    expect(z.weights.get('vision_model.encoder.layers.0.mlp.fc1.weight')?.data).not.toEqual(
      x.weights.get('vision_model.encoder.layers.0.mlp.fc1.weight')?.data,
    );
  });

  it('refuses settings it cannot train with, naming the field', async () => {
    const bad = (patch: Partial<VisionPretrainSettings>, imageSize = 64, patchSize = 8) =>
      pretrainWorldTower({ runtime, imageSize, patchSize, settings: { ...SETTINGS, ...patch }, worldSeed: 1, seed: 1 });
    await expect(bad({ batchSize: 0 })).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT', details: { field: 'visionPretrain.batchSize' } });
    await expect(bad({ shift: -1 })).rejects.toMatchObject({ details: { field: 'visionPretrain.shift' } });
    await expect(bad({ shift: 64 })).rejects.toMatchObject({ details: { field: 'visionPretrain.shift' } });
    await expect(bad({ lr: Number.NaN })).rejects.toMatchObject({ details: { field: 'visionPretrain.lr' } });
    await expect(bad({}, 64, 12)).rejects.toMatchObject({ details: { field: 'patchSize' } });
  }, 120_000);
});

describe('the main job with stage 0 (a tiny size)', () => {
  it('pretrains the tower, trains on its 64 tokens, reports stage 0 and saves a folder that reloads to the same answers', async () => {
    const work = mkdtempSync(join(tmpdir(), 'vlit-stage0-job-'));
    try {
      const result = await runTrainedMainJob({
        out: join(work, 'out'),
        quick: true,
        seed: 7,
        settings: {
          trainScenes: 40,
          heldoutScenes: 6,
          similarityTexts: 40,
          stage1: { steps: 4, batchSize: 8, lr: 3e-3 },
          stage2: { steps: 12, batchSize: 8, lr: 3e-3 },
          patchSize: 8,
          maxLength: 144,
          visionPretrain: { ...SETTINGS, scenes: 60, heldoutScenes: 10, steps: 6 },
        },
      });
      const stage0 = result.training.stage0;
      expect(stage0?.steps).toBe(6);
      expect(stage0?.scenes).toBe(60);
      expect(result.model.visualTokens).toBe(64);
      // The folder says which hidden state the features are (the last layer's output), as transformers reads it.
      const config = JSON.parse(readFileSync(join(result.files.model, 'config.json'), 'utf8')) as {
        vision_feature_layer: number;
        vision_config: { num_hidden_layers: number; hidden_size: number };
      };
      expect(config.vision_feature_layer).toBe(-1);
      expect(config.vision_config.num_hidden_layers).toBe(SETTINGS.layers);
      expect(config.vision_config.hidden_size).toBe(handSetWidth(64, 8) + SETTINGS.width);
      expect(result.reload.sameChoice).toBe(result.reload.questions);
      expect(readFileSync(result.files.summaryMarkdown, 'utf8')).toMatch(/stage 0 \(tower pretraining, shape labels\)\*\*: 6 steps over 60 rendered scenes/);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 600_000);
});
