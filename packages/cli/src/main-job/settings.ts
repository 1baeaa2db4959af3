/**
 * Sizes of the trained main job: `quick` (a couple of minutes on a 2-core machine) and `full`
 * (under fifteen). The same decoder, projector and data for both; the full job also pretrains the
 * tower's learned channels (stage 0) and trains and evaluates on more.
 */
import type { AdaptTask } from '@vlit/data';
import type { VisionPretrainSettings } from './vision-pretrain.js';

/** Everything the job's size depends on. */
export interface MainJobSettings {
  /** Training scenes rendered (instruction data comes from them). */
  trainScenes: number;
  /** Held-out scenes rendered (the benchmark is asked about them only). */
  heldoutScenes: number;
  /** Image side in pixels; the ViT takes the image at this size, so no resampling happens. */
  imageSize: number;
  /** ViT patch side: (imageSize / patchSize)² visual tokens per image. */
  patchSize: number;
  /** Instruction and answer texts sampled for the data-quality report's similarity columns. */
  similarityTexts: number;
  /** Annotation adaption's records per image per task (VQA: every question the scene can pose). */
  tasks: Partial<Record<AdaptTask, number>>;
  /** Language model width (also the projector's output). */
  hidden: number;
  /** Decoder layers. */
  layers: number;
  /** Stage 1 (projector only, captions, plain template). */
  stage1: { steps: number; batchSize: number; lr: number };
  /** Stage 2 (projector + language model, instruction data, conversation template). */
  stage2: { steps: number; batchSize: number; lr: number };
  /** Longest training sample in tokens (image tokens included); longer ones are rejects. */
  maxLength: number;
  /**
   * Stage 0: pretrain the tower's learned channels on rendered scenes with shape labels before LLaVA's
   * stages (`pretrainWorldTower`); null or absent keeps the hand-set tower alone (one layer, features = hidden state 0).
   */
  visionPretrain?: VisionPretrainSettings | null;
}

/**
 * The `--quick` job: small enough for a CI test, still clearly above chance. It has no stage 0: the
 * hand-set tower alone (16 visual tokens), as the pretraining alone would take most of its time budget.
 */
export const QUICK_SETTINGS: MainJobSettings = {
  trainScenes: 300,
  heldoutScenes: 40,
  imageSize: 64,
  patchSize: 16,
  similarityTexts: 300,
  tasks: { caption: 1, vqa: 16, counting: 1, existence: 1, negative: 1, location: 1, region: 1, spatial: 1, ocr: 1, dialogue: 1 },
  hidden: 64,
  layers: 2,
  stage1: { steps: 40, batchSize: 16, lr: 3e-3 },
  stage2: { steps: 3000, batchSize: 16, lr: 3e-3 },
  maxLength: 96,
  visionPretrain: null,
};

/** A size of the job: how many scenes are rendered and how many optimiser steps each stage takes. */
export interface MainJobSize {
  trainScenes: number;
  heldoutScenes: number;
  stage1Steps: number;
  stage2Steps: number;
  /** Texts sampled for the similarity columns (default: one per training scene). */
  similarityTexts?: number;
}

/** The quick settings at another size: the same world, tasks, model (no stage 0), batch sizes and learning rates. */
export function sizedSettings(size: MainJobSize): MainJobSettings {
  return {
    ...QUICK_SETTINGS,
    trainScenes: size.trainScenes,
    heldoutScenes: size.heldoutScenes,
    similarityTexts: size.similarityTexts ?? size.trainScenes,
    stage1: { ...QUICK_SETTINGS.stage1, steps: size.stage1Steps },
    stage2: { ...QUICK_SETTINGS.stage2, steps: size.stage2Steps },
  };
}

/**
 * Stage 0 of the full job: 3000 rendered scenes (the instruction data's 800 among them), 3000 steps of
 * batch 32, 64 learned channels over 2 layers at 8 px patches (about 2.5 minutes on 2 cores).
 */
export const FULL_VISION_PRETRAIN: VisionPretrainSettings = {
  scenes: 3000,
  heldoutScenes: 200,
  steps: 3000,
  batchSize: 32,
  lr: 2e-3,
  shift: 8,
  width: 64,
  layers: 2,
  intermediate: 128,
};

/**
 * The full job: more scenes, more steps, a five times larger benchmark, and stage 0 (the tower pretrained
 * at 8 px patches, so 64 visual tokens per image and room for them in the longest sample).
 */
export const FULL_SETTINGS: MainJobSettings = {
  ...sizedSettings({
    trainScenes: 800,
    heldoutScenes: 200,
    similarityTexts: 1000,
    stage1Steps: 100,
    stage2Steps: 10000,
  }),
  patchSize: 8,
  maxLength: 144,
  visionPretrain: FULL_VISION_PRETRAIN,
};
