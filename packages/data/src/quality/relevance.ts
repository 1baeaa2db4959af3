import { CompatibilityError, toFloat32, type RawImage, type TextEmbedder, type VisionEncoder } from '@vlit/core';
import { cosine } from './embedder.js';

/** An image encoder and a text embedder that share one embedding space (CLIP-style). */
export interface RelevanceModels {
  encoder: VisionEncoder;
  embedder: TextEmbedder;
}

/** Throw CompatibilityError unless the encoder's features and the embedder's vectors have the same width. */
export function assertRelevancePair({ encoder, embedder }: RelevanceModels): void {
  if (encoder.outputDim !== embedder.dim) {
    throw new CompatibilityError(
      `image encoder ${encoder.id} gives ${encoder.outputDim}-wide features but text embedder ${embedder.id} gives ${embedder.dim}-wide vectors`,
      {
        details: { left: encoder.id, right: embedder.id, field: 'dim' },
      },
    );
  }
}

/** One embedding per image: the encoder's tokens mean-pooled. */
export async function embedImages(encoder: VisionEncoder, images: readonly RawImage[]): Promise<Float32Array[]> {
  if (!images.length) return [];
  const t = await encoder.encode(images);
  const [n, tokens, dim] = t.dims;
  const data = toFloat32(t);
  const out: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const v = new Float32Array(dim);
    for (let k = 0; k < tokens; k++) for (let d = 0; d < dim; d++) v[d] += data[(i * tokens + k) * dim + d] / tokens;
    out.push(v);
  }
  return out;
}

/**
 * Image–text relevance of pairs: 100 * max(0, cos(image embedding, text embedding)), the
 * CLIPScore scale without its 2.5 rescaling. One score per pair.
 */
export async function imageTextRelevance(models: RelevanceModels, images: readonly RawImage[], texts: readonly string[]): Promise<number[]> {
  assertRelevancePair(models);
  const iv = await embedImages(models.encoder, images);
  const tv = await models.embedder.embed(texts);
  return iv.map((v, i) => 100 * Math.max(0, cosine(v, tv[i])));
}
