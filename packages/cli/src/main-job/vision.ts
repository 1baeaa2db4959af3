/**
 * The main job's frozen vision tower: Vlit's tiny ViT (CLIP layout, so the checkpoint folder carries it as
 * a CLIPVisionModel) whose embedding weights are set by hand to compute patch statistics, as the trainer's
 * learning test does with a fixed encoder. Features are hidden state 0 (the pre-LayerNorm embeddings;
 * feature layer -2 of a one-layer tower): per patch, the mean colour of each 2x2-pixel cell, the patch's row
 * and column as one-hot vectors, and constant anchor channels that keep brightness after the LayerNorm.
 * Random ViT weights were measured too weak here: the same training reached the same accuracy with blank
 * images as with real ones (the model learnt only the language prior).
 *
 * With learned channels (the full job's stage 0, `pretrainWorldTower`), the tower is wider and deeper: the
 * hand-set channels come first, learned ones follow, and `pinnedEntries` names what training must leave as
 * it is so that the layers only ever write the learned channels; the features are then the last layer's output.
 */
import { InvalidArgumentError, createTensor } from '@vlit/core';
import { createVitWeights, resolveVitConfig, type VitConfig, type VitWeights } from '@vlit/encoders';

/** Side in pixels of the cells whose mean colour each token carries. */
const CELL = 2;
/** Anchor channels (constant 1) that make the LayerNorm keep absolute brightness. */
const ANCHORS = 8;

/** A tower with learned channels beside the hand-set ones (what `pretrainWorldTower` trains). */
export interface LearnedChannels {
  /** Channels after the hand-set ones, written only by the learned patch embedding and the layers. */
  width: number;
  /** Encoder layers (features are the last layer's output). */
  layers: number;
  /** MLP width of each layer. */
  intermediate: number;
}

/** Width of the hand-set channels for an image side and patch side: colour cells + row + column + anchors. */
export function handSetWidth(imageSize: number, patchSize: number): number {
  if (patchSize % CELL !== 0) throw new InvalidArgumentError(`patchSize ${patchSize} must be a multiple of ${CELL}`, { details: { field: 'patchSize' } });
  const cells = patchSize / CELL;
  return cells * cells * 3 + 2 * (imageSize / patchSize) + ANCHORS;
}

/**
 * The tower's configuration for an image side and patch side. Without `learned`: the hand-set channels
 * only and one layer whose (seeded) weights never touch the features (feature layer -2 is hidden state 0).
 * With `learned`: the hand-set channels plus `learned.width` learned ones and `learned.layers` layers.
 */
export function patchStatisticsVitConfig(imageSize: number, patchSize: number, learned?: LearnedChannels): VitConfig {
  const hand = handSetWidth(imageSize, patchSize);
  const hidden = hand + (learned?.width ?? 0);
  const numHeads = hidden % 4 === 0 ? 4 : 1;
  if (!learned) return resolveVitConfig({ imageSize, patchSize, hiddenSize: hidden, numLayers: 1, numHeads, hiddenAct: 'quick_gelu' });
  return resolveVitConfig({
    imageSize,
    patchSize,
    hiddenSize: hidden,
    numLayers: learned.layers,
    numHeads,
    intermediateSize: learned.intermediate,
    hiddenAct: 'quick_gelu',
  });
}

/** Deterministic weights: hand-set embeddings and pre-LayerNorm, seeded values for the layers (unused without learned channels). */
export function patchStatisticsVitWeights(config: VitConfig, seed: string): VitWeights {
  const weights = createVitWeights(config, seed);
  const seededConv = weights.get('vision_model.embeddings.patch_embedding.weight')?.data as Float32Array;
  const seededPosition = weights.get('vision_model.embeddings.position_embedding.weight')?.data as Float32Array;
  const D = config.hiddenSize;
  const P = config.patchSize;
  const C = config.numChannels;
  const grid = config.imageSize / P;
  const CELLS = P / CELL;
  const cell = CELL;
  const conv = createTensor('float32', [D, C, P, P]);
  for (let cy = 0; cy < CELLS; cy++) {
    for (let cx = 0; cx < CELLS; cx++) {
      for (let c = 0; c < C; c++) {
        const d = (cy * CELLS + cx) * C + c;
        for (let y = cy * cell; y < (cy + 1) * cell; y++) {
          for (let x = cx * cell; x < (cx + 1) * cell; x++) conv.data[((d * C + c) * P + y) * P + x] = 1 / (cell * cell);
        }
      }
    }
  }
  const colourDims = CELLS * CELLS * C;
  const tokens = grid * grid + 1;
  const position = createTensor('float32', [tokens, D]);
  for (let t = 0; t < tokens; t++) {
    for (let a = 0; a < ANCHORS; a++) position.data[t * D + colourDims + 2 * grid + a] = 1;
    if (t === 0) continue; // the class token, dropped by LLaVA's `default` selection
    const row = Math.floor((t - 1) / grid);
    const col = (t - 1) % grid;
    position.data[t * D + colourDims + row] = 1;
    position.data[t * D + colourDims + grid + col] = 1;
  }
  weights.set('vision_model.embeddings.patch_embedding.weight', conv);
  weights.set('vision_model.embeddings.position_embedding.weight', position);
  weights.set('vision_model.embeddings.class_embedding', createTensor('float32', [D]));
  weights.set('vision_model.pre_layrnorm.weight', createTensor('float32', [D], new Float32Array(D).fill(1)));
  weights.set('vision_model.pre_layrnorm.bias', createTensor('float32', [D]));
  const hand = handSetWidth(config.imageSize, P);
  if (D > hand) {
    // Learned channels: the seeded patch-embedding rows stay; their position columns start small; the
    // layers' output rows (and biases) of the hand-set channels start at zero, so those pass through.
    const per = C * P * P;
    conv.data.set(seededConv.subarray(hand * per), hand * per);
    for (let t = 0; t < tokens; t++) for (let d = hand; d < D; d++) position.data[t * D + d] = 0.1 * seededPosition[t * D + d];
    for (const [name, mask] of pinnedEntries(config)) {
      if (!name.includes('.encoder.')) continue;
      const t = weights.get(name)?.data as Float32Array;
      for (let i = 0; i < mask.length; i++) if (mask[i]) t[i] = 0;
    }
  }
  return weights;
}

/**
 * Entries that pretraining keeps at their values so the hand-set channels reach the features as hidden state 0 has them:
 * the hand-set rows of the patch embedding, their position columns, and the hand-set output rows (and
 * biases) of every layer's attention output and MLP output. Returns a 0/1 mask per tensor name.
 */
export function pinnedEntries(config: VitConfig): Map<string, Uint8Array> {
  const D = config.hiddenSize;
  const hand = handSetWidth(config.imageSize, config.patchSize);
  const out = new Map<string, Uint8Array>();
  const rows = (name: string, rowsTotal: number, per: number): void => {
    const m = new Uint8Array(rowsTotal * per);
    m.fill(1, 0, hand * per);
    out.set(name, m);
  };
  rows('vision_model.embeddings.patch_embedding.weight', D, config.numChannels * config.patchSize * config.patchSize);
  const tokens = (config.imageSize / config.patchSize) ** 2 + 1;
  const position = new Uint8Array(tokens * D);
  for (let t = 0; t < tokens; t++) position.fill(1, t * D, t * D + hand);
  out.set('vision_model.embeddings.position_embedding.weight', position);
  for (let l = 0; l < config.numLayers; l++) {
    const L = `vision_model.encoder.layers.${l}`;
    rows(`${L}.self_attn.out_proj.weight`, D, D);
    rows(`${L}.self_attn.out_proj.bias`, D, 1);
    rows(`${L}.mlp.fc2.weight`, D, config.intermediateSize);
    rows(`${L}.mlp.fc2.bias`, D, 1);
  }
  return out;
}
