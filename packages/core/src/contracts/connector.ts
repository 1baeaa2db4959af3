import type { Tensor } from '../tensor.js';

/** Projects vision features into the language model's embedding space. */
export interface Connector {
  readonly id: string;
  /** Feature width it accepts (must equal the encoder's outputDim). */
  readonly inputDim: number;
  /** Width it produces (must equal the language model's hiddenSize). */
  readonly outputDim: number;
  /** Tokens it emits for a given number of input tokens (identity for MLPs, fixed for resamplers). */
  outputTokens(inputTokens: number): number;
  /** Project [images, tokens, inputDim] to [images, outputTokens(tokens), outputDim]. */
  project(features: Tensor<'float32'>): Promise<Tensor<'float32'>>;
}
