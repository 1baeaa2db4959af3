/** Turns texts into fixed-width vectors, for similarity and relevance metrics. */
export interface TextEmbedder {
  /** Stable id, reported beside every number computed with it. */
  readonly id: string;
  /** Width of each embedding. */
  readonly dim: number;
  /** Embed texts; one vector of length `dim` per text. */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
}
