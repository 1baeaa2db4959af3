/**
 * Splicing projected image features into text embeddings at the image spans, the step that turns a
 * language model into a vision-language model (LLaVA's `prepare_inputs_labels_for_multimodal`).
 */
import { TensorShapeError, createTensor, type Tensor } from '@vlit/core';

/** Where one image's tokens sit in a sequence: [start, end). */
export interface SpliceSpan {
  imageIndex: number;
  start: number;
  end: number;
}

function rowsOf(t: Tensor<'float32'>, name: string): { tokens: number; width: number } {
  const d = t.dims;
  if (d.length === 2) return { tokens: d[0], width: d[1] };
  if (d.length === 3 && d[0] === 1) return { tokens: d[1], width: d[2] };
  throw new TensorShapeError(`${name} must be [tokens, width] or [1, tokens, width], got [${d.join(', ')}]`, { details: { field: name } });
}

/**
 * Copy `embeds` ([1, seq, hidden]) and overwrite each span with its image's features
 * (`features[span.imageIndex]`, [tokens, hidden] or [1, tokens, hidden]). A span whose length is not
 * the image's token count, a span outside the sequence, overlapping spans, or a width that is not
 * `hidden` is a TensorShapeError naming the image.
 */
export function spliceImageFeatures(embeds: Tensor<'float32'>, spans: readonly SpliceSpan[], features: readonly Tensor<'float32'>[]): Tensor<'float32'> {
  if (embeds.dims.length !== 3 || embeds.dims[0] !== 1) {
    throw new TensorShapeError(`text embeddings must be [1, seq, hidden], got [${embeds.dims.join(', ')}]`, { details: { field: 'embeds' } });
  }
  const [, seq, hidden] = embeds.dims;
  const out = new Float32Array(embeds.data);
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  let covered = 0;
  for (const span of sorted) {
    const field = `images.${span.imageIndex}`;
    const f = features[span.imageIndex];
    if (!f) throw new TensorShapeError(`no features for image ${span.imageIndex}`, { details: { field } });
    const { tokens, width } = rowsOf(f, field);
    if (width !== hidden) {
      throw new TensorShapeError(`image ${span.imageIndex} features have width ${width}, the embeddings ${hidden}`, {
        details: { field, left: width, right: hidden },
      });
    }
    if (span.end - span.start !== tokens) {
      throw new TensorShapeError(
        `image ${span.imageIndex} has ${tokens} feature tokens but its span [${span.start}, ${span.end}) holds ${span.end - span.start}`,
        {
          details: { field, left: tokens, right: span.end - span.start },
        },
      );
    }
    if (span.start < covered || span.end > seq || span.start < 0) {
      throw new TensorShapeError(
        `span [${span.start}, ${span.end}) of image ${span.imageIndex} overlaps another span or leaves the sequence of ${seq} tokens`,
        {
          details: { field },
        },
      );
    }
    out.set(f.data.subarray(0, tokens * hidden), span.start * hidden);
    covered = span.end;
  }
  return createTensor('float32', [1, seq, hidden], out);
}
