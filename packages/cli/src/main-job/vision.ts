/**
 * The main job's frozen vision tower: Vlit's tiny ViT (CLIP layout, so the checkpoint folder carries it as
 * a CLIPVisionModel) whose embedding weights are set by hand to compute patch statistics, as the trainer's
 * learning test does with a fixed encoder. Features are hidden state 0 (the pre-LayerNorm embeddings;
 * feature layer -2 of a one-layer tower): per patch, the mean colour of each 2x2-pixel cell, the patch's row
 * and column as one-hot vectors, and constant anchor channels that keep brightness after the LayerNorm.
 * Random ViT weights were measured too weak here: the same training reached the same accuracy with blank
 * images as with real ones (the model learnt only the language prior).
 */
import { InvalidArgumentError, createTensor } from '@vlit/core';
import { createVitWeights, resolveVitConfig, type VitConfig, type VitWeights } from '@vlit/encoders';

/** Side in pixels of the cells whose mean colour each token carries. */
const CELL = 2;
/** Anchor channels (constant 1) that make the LayerNorm keep absolute brightness. */
const ANCHORS = 8;

/** The tower's configuration for an image side and patch side: width = colour cells + row + column + anchors. */
export function patchStatisticsVitConfig(imageSize: number, patchSize: number): VitConfig {
  if (patchSize % CELL !== 0) throw new InvalidArgumentError(`patchSize ${patchSize} must be a multiple of ${CELL}`, { details: { field: 'patchSize' } });
  const grid = imageSize / patchSize;
  const cells = patchSize / CELL;
  const hidden = cells * cells * 3 + 2 * grid + ANCHORS;
  // One layer: feature layer -2 is hidden state 0, so the layer's (seeded) weights never touch the features.
  return resolveVitConfig({ imageSize, patchSize, hiddenSize: hidden, numLayers: 1, numHeads: hidden % 4 === 0 ? 4 : 1, hiddenAct: 'quick_gelu' });
}

/** Deterministic weights: hand-set embeddings and pre-LayerNorm, seeded values for the (unused) layer. */
export function patchStatisticsVitWeights(config: VitConfig, seed: string): VitWeights {
  const weights = createVitWeights(config, seed);
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
  return weights;
}
