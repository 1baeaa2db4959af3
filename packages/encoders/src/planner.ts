/**
 * Visual-token planning: how many tokens (and how many pixels of input) an image of a given size
 * will produce, computed from its size alone, before anything is decoded or run. This is what lets
 * a user see that a batch of high-resolution images will not fit before it runs out of memory.
 */
import { InvalidArgumentError } from '@vlit/core';
import { anyresLayout, smartResize, type HeightWidth } from './preprocess/tiling.js';
import type { ImageSize } from '@vlit/core';

/** Which tokens of a ViT's output are kept: LLaVA's `patch` drops the CLS token, `cls_patch` keeps it. */
export type FeatureSelect = 'patch' | 'cls_patch';

/** One fixed-resolution view per image (CLIP/SigLIP at their input size). */
export interface FixedTokenPlan {
  kind: 'fixed';
  /** Encoder input size. */
  inputSize: ImageSize;
  patchSize: number;
  /** Whether the encoder emits a CLS token before the patches (CLIP yes, SigLIP no). */
  clsToken: boolean;
  featureSelect: FeatureSelect;
}

/** LLaVA-NeXT anyres: a base view plus the tiles of the best grid canvas, each a fixed-size view. */
export interface AnyresTokenPlan {
  kind: 'anyres';
  tileSize: number;
  patchSize: number;
  gridPinpoints: readonly HeightWidth[];
  clsToken: boolean;
  featureSelect: FeatureSelect;
}

/** Qwen2-VL dynamic resolution: smart resize, patches of patchSize, merged mergeSize × mergeSize. */
export interface SmartTokenPlan {
  kind: 'smart';
  patchSize: number;
  mergeSize: number;
  minPixels: number;
  maxPixels: number;
}

/** Any token plan. */
export type TokenPlan = FixedTokenPlan | AnyresTokenPlan | SmartTokenPlan;

/** What an image of a given size costs. */
export interface VisualTokenEstimate {
  /** Tokens the encoder emits for the image (all views together). */
  tokens: number;
  /** Views encoded (1, or 1 + tiles for anyres). */
  views: number;
  /** Input size of each view, in order. */
  viewSize: ImageSize;
  /** Float32 input values for the image (views × 3 × height × width). */
  inputValues: number;
  /** Tokens the language model sees, where the model family adds its own (LLaVA-NeXT unpadding + newlines); else equal to tokens. */
  languageModelTokens: number;
  /** For anyres: grid rows × cols; for smart: patch grid; else the patch grid of the view. */
  grid: { rows: number; cols: number };
}

function patchGrid(size: ImageSize, patch: number, where: string): { rows: number; cols: number } {
  if (size.height % patch !== 0 || size.width % patch !== 0) {
    throw new InvalidArgumentError(`${where}: input ${size.width}x${size.height} is not a multiple of the patch size ${patch}`, {
      details: { field: 'patchSize' },
    });
  }
  return { rows: size.height / patch, cols: size.width / patch };
}

function checkSize(size: ImageSize): void {
  if (!Number.isInteger(size.width) || !Number.isInteger(size.height) || size.width <= 0 || size.height <= 0) {
    throw new InvalidArgumentError(`planVisualTokens: image size ${size.width}x${size.height} is not a positive integer size`, { details: { field: 'size' } });
  }
}

/**
 * LLaVA-NeXT's language-side count (Hugging Face `LlavaNextProcessor._get_number_of_features`):
 * base view patches, plus the tile features with the canvas padding removed, plus one newline
 * token per feature row.
 */
export function llavaNextLanguageTokens(size: ImageSize, plan: Omit<AnyresTokenPlan, 'kind'>): number {
  const layout = anyresLayout(size, { gridPinpoints: plan.gridPinpoints, tileSize: plan.tileSize });
  const p = plan.tileSize / plan.patchSize;
  let curH = p * layout.rows;
  let curW = p * layout.cols;
  const { width, height } = size;
  const round7 = (x: number) => Math.trunc(Math.round(x * 1e7) / 1e7);
  if (width / height > curW / curH) {
    const newH = round7(height * (curW / width));
    curH -= Math.floor((curH - newH) / 2) * 2;
  } else {
    const newW = round7(width * (curH / height));
    curW -= Math.floor((curW - newW) / 2) * 2;
  }
  const base = p * p + (plan.clsToken && plan.featureSelect === 'cls_patch' ? 1 : 0);
  return curH * curW + curH + base;
}

/** Predict the visual tokens and input size of one image from its size. */
export function planVisualTokens(size: ImageSize, plan: TokenPlan): VisualTokenEstimate {
  checkSize(size);
  if (plan.kind === 'fixed') {
    const g = patchGrid(plan.inputSize, plan.patchSize, 'planVisualTokens');
    const tokens = g.rows * g.cols + (plan.clsToken && plan.featureSelect === 'cls_patch' ? 1 : 0);
    return {
      tokens,
      views: 1,
      viewSize: { ...plan.inputSize },
      inputValues: 3 * plan.inputSize.width * plan.inputSize.height,
      languageModelTokens: tokens,
      grid: g,
    };
  }
  if (plan.kind === 'anyres') {
    const layout = anyresLayout(size, plan);
    const g = patchGrid({ width: plan.tileSize, height: plan.tileSize }, plan.patchSize, 'planVisualTokens');
    const perView = g.rows * g.cols + (plan.clsToken && plan.featureSelect === 'cls_patch' ? 1 : 0);
    return {
      tokens: perView * layout.views,
      views: layout.views,
      viewSize: { width: plan.tileSize, height: plan.tileSize },
      inputValues: layout.views * 3 * plan.tileSize * plan.tileSize,
      languageModelTokens: llavaNextLanguageTokens(size, plan),
      grid: { rows: layout.rows, cols: layout.cols },
    };
  }
  const resized = smartResize(size, { factor: plan.patchSize * plan.mergeSize, minPixels: plan.minPixels, maxPixels: plan.maxPixels });
  const g = patchGrid(resized, plan.patchSize, 'planVisualTokens');
  const tokens = (g.rows * g.cols) / (plan.mergeSize * plan.mergeSize);
  return { tokens, views: 1, viewSize: resized, inputValues: 3 * resized.width * resized.height, languageModelTokens: tokens, grid: g };
}

/** A batch plan: per-image estimates, totals, and the images over a token budget. */
export interface BatchTokenPlan {
  images: VisualTokenEstimate[];
  totalTokens: number;
  totalLanguageModelTokens: number;
  /** Bytes of float32 encoder input for the whole batch. */
  inputBytes: number;
  /** Indices of images whose language-model tokens exceed `maxTokensPerImage`. */
  overBudget: number[];
}

/** Plan a batch of image sizes; flags images over `maxTokensPerImage` so they can be resized or dropped first. */
export function planBatch(sizes: readonly ImageSize[], plan: TokenPlan, options: { maxTokensPerImage?: number } = {}): BatchTokenPlan {
  const images = sizes.map((s) => planVisualTokens(s, plan));
  const limit = options.maxTokensPerImage ?? Infinity;
  return {
    images,
    totalTokens: images.reduce((a, e) => a + e.tokens, 0),
    totalLanguageModelTokens: images.reduce((a, e) => a + e.languageModelTokens, 0),
    inputBytes: images.reduce((a, e) => a + e.inputValues * 4, 0),
    overBudget: images.flatMap((e, i) => (e.languageModelTokens > limit ? [i] : [])),
  };
}
