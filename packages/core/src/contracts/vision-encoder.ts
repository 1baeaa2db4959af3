import type { RawImage } from './image-codec.js';
import type { Tensor } from '../tensor.js';

/** Options of one encode call; encoder-specific knobs live under `providerOptions`. */
export interface EncodeImagesOptions {
  providerOptions?: Record<string, unknown>;
  signal?: AbortSignal;
}

/** Turns images into a sequence of feature vectors per image. */
export interface VisionEncoder {
  /** Stable id used in cache keys and manifests (model hash + feature selection). */
  readonly id: string;
  /** Width of each output feature vector. */
  readonly outputDim: number;
  /** Visual tokens produced for an image of this size, predictable before running anything. */
  tokensPerImage(size: { width: number; height: number }): number;
  /** Encode images to float32 features shaped [images, tokens, outputDim]. */
  encode(images: readonly RawImage[], options?: EncodeImagesOptions): Promise<Tensor<'float32'>>;
}
