/**
 * Stage 0 of the main job: pretrain the vision tower's learned channels on rendered world scenes before
 * LLaVA's two stages, as CLIP's pretraining comes before LLaVA's. The world is procedural, so scenes are
 * free; each patch that holds an object's centre is labelled with that object's shape (the largest object
 * wins), and a linear head over the tower's last hidden state is trained with masked cross-entropy
 * through Vlit's own autodiff and AdamW. The hand-set channels (colour cells, row, column, anchors) are
 * pinned: the layers only write the learned channels, so the features carry the hand-set channels exactly
 * as hidden state 0 has them (the pre-LayerNorm normalises them together with the learned channels).
 */
import { InvalidArgumentError, createRng, createTensor, type RawImage, type Tensor } from '@vlit/core';
import type { VitConfig } from '@vlit/encoders';
import { addMaskedCrossEntropy, buildGradientModel, createGraph, encodeModel, gradientName, promoteInitializers } from '@vlit/graph';
import { addHfVisionTower, clipProcessorSettings, preprocessBatch } from '@vlit/encoders';
import { WORLD_BACKGROUNDS, WORLD_SHAPES, createWorld, worldSceneSvg, type WorldScene } from '@vlit/data';
import { vitAsHfVisionTower } from '@vlit/models/node';
import { NonFiniteLossError, clipGradNorm, createAdamW, createLrSchedule } from '@vlit/trainer';
import type { createNodeRuntime } from '@vlit/runtime/node';
import { patchStatisticsVitConfig, patchStatisticsVitWeights, pinnedEntries, type LearnedChannels } from './vision.js';

/** How stage 0 trains the tower. */
export interface VisionPretrainSettings extends LearnedChannels {
  /** Training scenes rendered for stage 0 (the instruction data's scenes are the first of them). */
  scenes: number;
  /** Held-out scenes (not the benchmark's) on which the shape accuracy is reported. */
  heldoutScenes: number;
  steps: number;
  batchSize: number;
  lr: number;
  /** Each training image is shifted by up to this many pixels each way per draw (the background fills in). */
  shift: number;
}

/** What stage 0 gives: the tower's configuration and weights (CLIP names under `vision_model.`), and how it went. */
export interface PretrainedTower {
  vit: VitConfig;
  weights: Map<string, Tensor<'float32'>>;
  firstLoss: number;
  lastLoss: number;
  /** Shape accuracy at the labelled patches of the held-out scenes (NaN when none is labelled), and chance (1 / shapes). */
  heldoutAccuracy: number;
  chance: number;
  /** Labelled patches: summed over every training draw (repeats and shifts included), and in the held-out scenes. */
  labelledPatches: { train: number; heldout: number };
}

type Runtime = Pick<ReturnType<typeof createNodeRuntime>, 'backend' | 'images'>;

interface LabelledImage {
  image: RawImage;
  scene: WorldScene;
}

/** An RGB image shifted by (dx, dy) pixels, `background` filling what the shift uncovers: a new image, or the input itself when both are 0 (never changed). */
export function shiftImage(image: RawImage, background: readonly [number, number, number], dx: number, dy: number): RawImage {
  const { width: W, height: H } = image;
  if (image.channels !== 3) throw new InvalidArgumentError(`shiftImage needs an RGB image, got ${image.channels} channels`, { details: { field: 'channels' } });
  if (dx === 0 && dy === 0) return image;
  const data = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) data.set(background, i * 3);
  for (let y = Math.max(0, dy); y < Math.min(H, H + dy); y++) {
    const x0 = Math.max(0, dx);
    const x1 = Math.min(W, W + dx);
    data.set(image.data.subarray(((y - dy) * W + x0 - dx) * 3, ((y - dy) * W + x1 - dx) * 3), (y * W + x0) * 3);
  }
  return { width: W, height: H, channels: 3, data };
}

/**
 * Per patch (row-major), the index in WORLD_SHAPES of the largest visible object whose centre, shifted by
 * (dx, dy), lies in it, else -100; written to `out` from `offset`. Returns how many patches got a label.
 */
export function patchLabels(scene: WorldScene, patchSize: number, dx: number, dy: number, out: BigInt64Array, offset: number): number {
  const grid = scene.width / patchSize;
  const area = new Float64Array(grid * grid);
  out.fill(-100n, offset, offset + grid * grid);
  let labelled = 0;
  for (const o of scene.objects) {
    const cx = o.center[0] + dx;
    const cy = o.center[1] + dy;
    if (cx < 0 || cy < 0 || cx >= scene.width || cy >= scene.height || !o.centerVisible) continue;
    const p = Math.floor(cy / patchSize) * grid + Math.floor(cx / patchSize);
    if (out[offset + p] === -100n) labelled++;
    else if (area[p] >= o.area) continue;
    area[p] = o.area;
    out[offset + p] = BigInt(WORLD_SHAPES.indexOf(o.shape));
  }
  return labelled;
}

async function renderScenes(runtime: Runtime, scenes: readonly WorldScene[], onRendered: (done: number) => void): Promise<LabelledImage[]> {
  const codec = runtime.images;
  const svgToPng = codec.svgToPng;
  if (!svgToPng) throw new InvalidArgumentError(`image codec ${codec.name} cannot render SVG`, { details: { field: 'runtime' } });
  const out: LabelledImage[] = [];
  for (let i = 0; i < scenes.length; i += 16) {
    const chunk = scenes.slice(i, i + 16);
    const images = await Promise.all(chunk.map(async (s) => codec.decode(await svgToPng.call(codec, worldSceneSvg(s), { source: s.id }), { source: s.id })));
    chunk.forEach((scene, k) => {
      out.push({ image: images[k], scene });
    });
    onRendered(out.length);
  }
  return out;
}

function checkSettings(s: VisionPretrainSettings, imageSize: number, patchSize: number): void {
  const positive: (keyof VisionPretrainSettings)[] = ['scenes', 'steps', 'batchSize', 'width', 'layers', 'intermediate'];
  for (const key of positive) {
    if (!Number.isSafeInteger(s[key]) || s[key] < 1)
      throw new InvalidArgumentError(`visionPretrain.${key} must be a positive integer, got ${s[key]}`, { details: { field: `visionPretrain.${key}` } });
  }
  for (const key of ['heldoutScenes', 'shift'] as const) {
    if (!Number.isSafeInteger(s[key]) || s[key] < 0)
      throw new InvalidArgumentError(`visionPretrain.${key} must be a non-negative integer, got ${s[key]}`, { details: { field: `visionPretrain.${key}` } });
  }
  if (s.shift >= imageSize)
    throw new InvalidArgumentError(`visionPretrain.shift ${s.shift} must be smaller than the image side ${imageSize}`, {
      details: { field: 'visionPretrain.shift' },
    });
  if (!(s.lr > 0) || !Number.isFinite(s.lr))
    throw new InvalidArgumentError(`visionPretrain.lr must be a positive number, got ${s.lr}`, { details: { field: 'visionPretrain.lr' } });
  if (!Number.isSafeInteger(patchSize) || patchSize < 1 || imageSize % patchSize !== 0)
    throw new InvalidArgumentError(`imageSize ${imageSize} is not a multiple of patchSize ${patchSize}`, { details: { field: 'patchSize' } });
}

/**
 * Pretrain the world tower (stage 0). Deterministic by `seed` and the world's seed: the same settings
 * give the same weights. `onProgress` reports rendering, then each step with its loss.
 */
export async function pretrainWorldTower(options: {
  runtime: Runtime;
  imageSize: number;
  patchSize: number;
  settings: VisionPretrainSettings;
  /** The world's seed (the scenes) and the weights' and draws' seed. */
  worldSeed: number | string;
  seed: number | string;
  onProgress?: (event: { phase: 'render' | 'train' | 'evaluate'; done: number; total: number; loss?: number }) => void;
}): Promise<PretrainedTower> {
  const { runtime, settings: s, imageSize, patchSize } = options;
  checkSettings(s, imageSize, patchSize);
  const vit = patchStatisticsVitConfig(imageSize, patchSize, s);
  const weights = patchStatisticsVitWeights(vit, `${options.seed}:vit`);
  const head = createTensor('float32', [vit.hiddenSize, WORLD_SHAPES.length]);
  const headRng = createRng(`${options.seed}:vit-head`);
  for (let i = 0; i < head.data.length; i++) head.data[i] = (headRng.float() * 2 - 1) / Math.sqrt(vit.hiddenSize);
  const pinned = pinnedEntries(vit);
  // The preprocessing a CLIP-family tower gets from createHfVisionEncoder (at the image size: no resampling).
  const preprocessor = clipProcessorSettings(imageSize);

  // The graph: pixels -> tower -> last hidden state without CLS -> linear head -> masked cross-entropy.
  const { spec, weights: towerWeights } = vitAsHfVisionTower(vit, weights);
  const tokens = (imageSize / patchSize) ** 2;
  const g = createGraph({ name: 'vlit-world-tower-pretrain', opset: 20, producerName: 'vlit' });
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, imageSize, imageSize]);
  const labels = g.input('labels', 'int64', ['batch', tokens]);
  const { hiddenStates } = addHfVisionTower(g, pixels, spec, towerWeights, { namePrefix: 'vision_model.' });
  const last = hiddenStates[hiddenStates.length - 1];
  const patches = g.slice(last, { starts: [1], ends: [tokens + 1], axes: [1] });
  const logits = g.output(g.matMul(patches, g.initializer('head.weight', head)), 'logits');
  g.output(addMaskedCrossEntropy(g, logits, labels, { shift: false }), 'loss');
  const trained = [...weights.keys()].filter(
    (n) => n.includes('.encoder.layers.') || n.endsWith('patch_embedding.weight') || n.endsWith('position_embedding.weight'),
  );
  const promoted = promoteInitializers(g.toModel(), [...trained, 'head.weight']);
  const gradient = buildGradientModel(promoted.model, { loss: 'loss', wrt: [...trained, 'head.weight'], keep: ['logits'] });

  const params = [...trained, 'head.weight'].map((name) => ({
    name,
    data: Float32Array.from(promoted.values[name].data as Float32Array),
    dims: promoted.values[name].dims,
  }));
  const initial = new Map(params.map((p) => [p.name, Float32Array.from(p.data)]));
  const adamw = createAdamW(params, { lr: s.lr, weightDecay: 0 });
  const schedule = createLrSchedule({ type: 'cosine', warmupSteps: Math.min(100, Math.floor(s.steps / 10)), totalSteps: s.steps });

  const world = createWorld({ seed: options.worldSeed, size: imageSize });
  const total = s.scenes + s.heldoutScenes;
  const train = await renderScenes(runtime, world.scenes('train', s.scenes), (done) => options.onProgress?.({ phase: 'render', done, total }));
  const heldout = await renderScenes(runtime, world.scenes('heldout', s.heldoutScenes, 1_000_000), (done) =>
    options.onProgress?.({ phase: 'render', done: s.scenes + done, total }),
  );
  const session = await runtime.backend.createSession(encodeModel(gradient));

  const run = async (items: readonly LabelledImage[], shifts: readonly (readonly [number, number])[]) => {
    const labelData = new BigInt64Array(items.length * tokens);
    let labelled = 0;
    items.forEach((it, k) => {
      labelled += patchLabels(it.scene, patchSize, shifts[k][0], shifts[k][1], labelData, k * tokens);
    });
    const feeds: Record<string, Tensor> = {
      pixel_values: preprocessBatch(
        items.map((it, k) => shiftImage(it.image, WORLD_BACKGROUNDS[it.scene.background].rgb, shifts[k][0], shifts[k][1])),
        preprocessor,
      ),
      labels: createTensor('int64', [items.length, tokens], labelData),
    };
    for (const p of params) feeds[p.name] = createTensor('float32', p.dims, p.data);
    const out = await session.run(feeds);
    return { out, labelData, labelled };
  };

  const rng = createRng(`${options.seed}:pretrain-draws`);
  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  let trainLabelled = 0;
  try {
    for (let step = 0; step < s.steps; step++) {
      const batch: LabelledImage[] = [];
      const shifts: [number, number][] = [];
      for (let b = 0; b < s.batchSize; b++) {
        batch.push(train[rng.int(0, train.length)]);
        shifts.push([rng.int(-s.shift, s.shift + 1), rng.int(-s.shift, s.shift + 1)]);
      }
      const { out, labelled } = await run(batch, shifts);
      // A batch with no labelled patch has no loss (cross-entropy over nothing is NaN): it takes no step.
      if (labelled === 0) {
        options.onProgress?.({ phase: 'train', done: step + 1, total: s.steps });
        continue;
      }
      trainLabelled += labelled;
      const loss = Number(out.loss.data[0]);
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(step, loss, '0 (tower pretraining)');
      if (Number.isNaN(firstLoss)) firstLoss = loss;
      lastLoss = loss;
      const grads = new Map(params.map((p) => [p.name, Float32Array.from(out[gradientName(p.name)].data as Float32Array)]));
      // Pinned entries take no gradient (so the clipping norm is the trained entries'), and keep their values.
      for (const p of params) {
        const mask = pinned.get(p.name);
        if (!mask) continue;
        const g = grads.get(p.name) as Float32Array;
        for (let i = 0; i < mask.length; i++) if (mask[i]) g[i] = 0;
      }
      clipGradNorm(grads, { maxNorm: 1 });
      adamw.step(grads, { lrFactor: schedule.factor(step) });
      for (const p of params) {
        const mask = pinned.get(p.name);
        if (!mask) continue;
        const init = initial.get(p.name) as Float32Array;
        for (let i = 0; i < mask.length; i++) if (mask[i]) p.data[i] = init[i];
      }
      options.onProgress?.({ phase: 'train', done: step + 1, total: s.steps, loss });
    }

    if (Number.isNaN(firstLoss)) {
      throw new InvalidArgumentError(`no training batch of stage 0 had a labelled patch (${s.steps} steps of ${s.batchSize} images)`, {
        details: { field: 'visionPretrain.scenes' },
      });
    }
    // Held-out shape accuracy at the labelled patches.
    let right = 0;
    let asked = 0;
    for (let i = 0; i < heldout.length; i += 32) {
      const items = heldout.slice(i, i + 32);
      const { out, labelData } = await run(
        items,
        items.map(() => [0, 0] as const),
      );
      const logit = out.logits.data as Float32Array;
      const K = WORLD_SHAPES.length;
      for (let p = 0; p < labelData.length; p++) {
        if (labelData[p] < 0n) continue;
        let best = 0;
        for (let k = 1; k < K; k++) if (logit[p * K + k] > logit[p * K + best]) best = k;
        asked++;
        if (BigInt(best) === labelData[p]) right++;
      }
      options.onProgress?.({ phase: 'evaluate', done: Math.min(i + 32, heldout.length), total: heldout.length });
    }
    for (const p of params) if (weights.has(p.name)) weights.set(p.name, createTensor('float32', p.dims, p.data));
    return {
      vit,
      weights,
      firstLoss,
      lastLoss,
      heldoutAccuracy: asked ? right / asked : Number.NaN,
      chance: 1 / WORLD_SHAPES.length,
      labelledPatches: { train: trainLabelled, heldout: asked },
    };
  } finally {
    await session.release();
  }
}
