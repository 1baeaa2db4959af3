/**
 * Compatibility checks between the parts of a composed vision-language model. Each mismatch is a
 * CompatibilityError whose `details.left` / `details.right` name both components, the fact that was
 * compared and its value, so the message says which piece to change.
 */
import {
  CompatibilityError,
  isVlitError,
  type ChatTemplate,
  type Connector,
  type ImageSize,
  type LanguageModel,
  type Tokenizer,
  type VisionEncoder,
} from '@vlit/core';

/** Which part of a composed model a fact belongs to. */
export type ComponentKind = 'encoder' | 'connector' | 'languageModel' | 'template' | 'tokenizer' | 'imageTokens';

/** One side of a compatibility check: the component, its id, the fact compared and its value. */
export interface ComponentFact {
  component: ComponentKind;
  id: string;
  field: string;
  value: unknown;
}

/**
 * Tokens each image placeholder is expanded to in the text: a fixed count, or a function of the
 * image size (as the data was prepared for training, e.g. `encodeBatch`'s `imageTokens`).
 */
export type ImageTokenExpansion = number | ((size: ImageSize) => number);

/** The parts whose fit is checked. */
export interface FitParts {
  encoder: VisionEncoder;
  connector: Connector;
  languageModel: LanguageModel;
  template: ChatTemplate;
  tokenizer: Tokenizer;
  /** The template's image-token expansion to check against the encoder + connector (absent: derived from them, nothing to check). */
  imageTokens?: ImageTokenExpansion;
}

/** What the fit check established, used by the composed model. */
export interface FitReport {
  /** Id of the template's image token in the tokenizer. */
  imageTokenId: number;
  /** Visual tokens in the language model's sequence for an image of the checked size. */
  imageTokensAtCheckSize: number;
  /** The size the token counts were checked at. */
  checkSize: ImageSize;
}

function fact(component: ComponentKind, id: string, field: string, value: unknown): ComponentFact {
  return { component, id, field, value };
}

function describeFact(f: ComponentFact): string {
  return `${f.component} ${f.id} ${f.field} ${JSON.stringify(f.value)}`;
}

/** A CompatibilityError naming both sides of a failed check. */
export function mismatch(left: ComponentFact, right: ComponentFact, why: string, cause?: unknown): CompatibilityError {
  return new CompatibilityError(`${describeFact(left)} does not fit ${describeFact(right)}: ${why}`, {
    ...(cause !== undefined ? { cause } : {}),
    details: { field: `${left.component}.${left.field}`, left, right },
  });
}

/**
 * Visual tokens the language model sees for an image of this size:
 * `connector.outputTokens(encoder.tokensPerImage(size))`. A connector that cannot take the encoder's
 * token count (a pooling connector on a grid with a CLS token, say) is a CompatibilityError.
 */
export function visualTokenCount(encoder: VisionEncoder, connector: Connector, size: ImageSize): number {
  const encoderTokens = encoder.tokensPerImage(size);
  let out: number;
  try {
    out = connector.outputTokens(encoderTokens);
  } catch (err) {
    if (!isVlitError(err)) throw err;
    throw mismatch(
      fact('encoder', encoder.id, `tokensPerImage(${size.width}x${size.height})`, encoderTokens),
      fact('connector', connector.id, 'outputTokens', 'refused'),
      `the connector cannot take ${encoderTokens} tokens (${err.message})`,
      err,
    );
  }
  if (!Number.isInteger(out) || out < 1) {
    throw mismatch(
      fact('encoder', encoder.id, `tokensPerImage(${size.width}x${size.height})`, encoderTokens),
      fact('connector', connector.id, `outputTokens(${encoderTokens})`, out),
      'the connector must emit a positive whole number of tokens',
    );
  }
  return out;
}

/** Expansion count the template was prepared with for an image of this size. */
export function expansionAt(imageTokens: ImageTokenExpansion, size: ImageSize): number {
  return typeof imageTokens === 'function' ? imageTokens(size) : imageTokens;
}

/** Check that the template's image-token expansion equals what encoder + connector produce at this size. */
export function checkImageTokens(parts: Pick<FitParts, 'encoder' | 'connector' | 'template' | 'imageTokens'>, size: ImageSize): number {
  const produced = visualTokenCount(parts.encoder, parts.connector, size);
  if (parts.imageTokens === undefined) return produced;
  const expected = expansionAt(parts.imageTokens, size);
  if (expected !== produced) {
    throw mismatch(
      fact('imageTokens', parts.template.name, `expansion of '${parts.template.imageToken}' at ${size.width}x${size.height}`, expected),
      fact('connector', `${parts.encoder.id} -> ${parts.connector.id}`, `outputTokens(tokensPerImage(${size.width}x${size.height}))`, produced),
      'each image placeholder must expand to exactly the number of visual tokens the encoder and connector produce',
    );
  }
  return produced;
}

/**
 * Check that the parts of a vision-language model fit: encoder.outputDim = connector.inputDim,
 * connector.outputDim = languageModel.hiddenSize, the template's image token is one token of the
 * tokenizer, the tokenizer's ids are inside the model's vocabulary, and the template's image-token
 * expansion (when given) equals connector.outputTokens(encoder.tokensPerImage(size)) at `checkSize`.
 * Throws CompatibilityError naming both sides.
 */
export function checkComponentsFit(parts: FitParts, checkSize: ImageSize): FitReport {
  const { encoder, connector, languageModel, template, tokenizer } = parts;
  if (encoder.outputDim !== connector.inputDim) {
    throw mismatch(
      fact('encoder', encoder.id, 'outputDim', encoder.outputDim),
      fact('connector', connector.id, 'inputDim', connector.inputDim),
      "the connector must accept the encoder's feature width",
    );
  }
  if (connector.outputDim !== languageModel.hiddenSize) {
    throw mismatch(
      fact('connector', connector.id, 'outputDim', connector.outputDim),
      fact('languageModel', languageModel.id, 'hiddenSize', languageModel.hiddenSize),
      "projected image features must have the width of the language model's token embeddings",
    );
  }
  if (tokenizer.vocabSize > languageModel.vocabSize) {
    throw mismatch(
      fact('tokenizer', tokenizer.id, 'vocabSize', tokenizer.vocabSize),
      fact('languageModel', languageModel.id, 'vocabSize', languageModel.vocabSize),
      'the tokenizer can produce ids the language model has no embedding for',
    );
  }
  const imageTokenId = tokenizer.tokenToId(template.imageToken);
  const encoded = tokenizer.encode(template.imageToken, { addSpecialTokens: false }).ids;
  if (imageTokenId === undefined || encoded.length !== 1 || encoded[0] !== imageTokenId) {
    throw mismatch(
      fact('template', template.name, 'imageToken', template.imageToken),
      fact('tokenizer', tokenizer.id, 'encode(imageToken)', encoded),
      'the image token must be a single token of the tokenizer so that its positions mark the image spans',
    );
  }
  const imageTokensAtCheckSize = checkImageTokens(parts, checkSize);
  return { imageTokenId, imageTokensAtCheckSize, checkSize };
}
