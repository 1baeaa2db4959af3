/**
 * LLaVA-NeXT's image side: anyres views (the whole image at the tower's size, then the tiles of the best
 * `image_grid_pinpoints` canvas), the tower and projector over every view, and the packing transformers'
 * `pack_image_features` does: tiles stitched into one feature grid, the canvas padding cropped away
 * ("unpadding", back to the image's aspect ratio), `image_newline` after every row, the base view first.
 * The packed count is the visual-token planner's `languageModelTokens`, checked for every image. Browser-safe.
 */
import {
  CompatibilityError,
  InvalidArgumentError,
  UnsupportedError,
  createTensor,
  toFloat32,
  type Connector,
  type EncodeImagesOptions,
  type RawImage,
  type Tensor,
  type VisionEncoder,
} from '@vlit/core';
import {
  anyresLayout,
  anyresViews,
  convertToRgb,
  planVisualTokens,
  preprocessPixels,
  writeImageTensor,
  type AnyresTokenPlan,
  type HeightWidth,
  type HfVisionEncoder,
} from '@vlit/encoders';
import type { ImageSize } from '@vlit/core';

/** The geometry packing needs. */
export interface LlavaNextGeometry {
  gridPinpoints: readonly HeightWidth[];
  /** The tower's input size (side of every view). */
  tileSize: number;
  /** Feature rows per view side (tileSize / patch size). */
  patchGrid: number;
}

/** transformers' `unpad_image` bounds on a [height, width] feature grid for an image of `size`. */
export function llavaNextUnpaddedBox(size: ImageSize, gridHeight: number, gridWidth: number): { top: number; bottom: number; left: number; right: number } {
  // Python's int(round(x, 7)): round to 7 decimals, then truncate.
  const round7 = (x: number): number => Math.trunc(Math.round(x * 1e7) / 1e7);
  if (size.width / size.height > gridWidth / gridHeight) {
    const newHeight = round7(size.height * (gridWidth / size.width));
    const pad = Math.floor((gridHeight - newHeight) / 2);
    return { top: pad, bottom: gridHeight - pad, left: 0, right: gridWidth };
  }
  const newWidth = round7(size.width * (gridHeight / size.height));
  const pad = Math.floor((gridWidth - newWidth) / 2);
  return { top: 0, bottom: gridHeight, left: pad, right: gridWidth - pad };
}

/**
 * Pack one image's projected view features ([views, patchGrid², hidden]: the base view, then the tiles row by
 * row) as transformers' `pack_image_features`: base rows, then the unpadded tile grid row by row with
 * `newline` after each row. Returns [tokens, hidden].
 */
export function packLlavaNextFeatures(
  features: Tensor<'float32'>,
  size: ImageSize,
  newline: Tensor<'float32'>,
  geometry: LlavaNextGeometry,
): Tensor<'float32'> {
  const [views, perView, hidden] = features.dims;
  const p = geometry.patchGrid;
  const layout = anyresLayout(size, { gridPinpoints: geometry.gridPinpoints, tileSize: geometry.tileSize });
  if (features.dims.length !== 3 || views !== layout.views || perView !== p * p) {
    throw new CompatibilityError(
      `LLaVA-NeXT features are [${features.dims.join(', ')}] but an image of ${size.width}x${size.height} needs [${layout.views}, ${p * p}, hidden]`,
      { details: { field: 'features', left: features.dims, right: [layout.views, p * p, hidden] } },
    );
  }
  if (newline.data.length !== hidden) {
    throw new CompatibilityError(`image_newline has ${newline.data.length} values, the features ${hidden}`, {
      details: { field: 'image_newline', left: newline.data.length, right: hidden },
    });
  }
  const gridH = layout.rows * p;
  const gridW = layout.cols * p;
  const box = llavaNextUnpaddedBox(size, gridH, gridW);
  const rows = box.bottom - box.top;
  const cols = box.right - box.left;
  const out = createTensor('float32', [perView + rows * (cols + 1), hidden]);
  const src = features.data;
  out.data.set(src.subarray(0, perView * hidden), 0);
  let at = perView * hidden;
  for (let y = box.top; y < box.bottom; y++) {
    const tileRow = Math.floor(y / p);
    for (let x = box.left; x < box.right; x++) {
      const view = 1 + tileRow * layout.cols + Math.floor(x / p);
      const token = (y % p) * p + (x % p);
      const from = (view * perView + token) * hidden;
      out.data.set(src.subarray(from, from + hidden), at);
      at += hidden;
    }
    out.data.set(newline.data, at);
    at += hidden;
  }
  return out;
}

/** Options of createLlavaNextVision. */
export interface LlavaNextVisionOptions {
  /** The vision tower with LLaVA's feature selection (its processor settings preprocess every view). */
  tower: HfVisionEncoder;
  /** The projector (tower width -> language model width), applied to every view. */
  projector: Connector;
  /** `image_newline` [hidden]. */
  imageNewline: Tensor<'float32'>;
  gridPinpoints: readonly HeightWidth[];
  id?: string;
}

/** LLaVA-NeXT's whole image side as one VisionEncoder: features come out projected and packed (outputDim = the language model's width). */
export interface LlavaNextVision extends VisionEncoder {
  /** The planner's description of this model's images. */
  readonly plan: AnyresTokenPlan;
  readonly tower: HfVisionEncoder;
  readonly projector: Connector;
  readonly imageNewline: Tensor<'float32'>;
  /** The pixel views of one image, [views, channels, size, size], as LlavaNextImageProcessor makes them. */
  preprocess(image: RawImage): Tensor<'float32'>;
}

/**
 * Build LLaVA-NeXT's image side from a tower, a projector and `image_newline`. tokensPerImage is the planner's
 * `languageModelTokens`; encode checks every packed image against it.
 */
export function createLlavaNextVision(options: LlavaNextVisionOptions): LlavaNextVision {
  const { tower, projector, imageNewline } = options;
  const spec = tower.spec;
  const clsToken = spec.family === 'clip';
  const strategy = tower.selection.selectStrategy;
  // Tiles are stitched into a square patch grid: a class token kept in every view has no place in it.
  if (clsToken && strategy === 'full') {
    throw new UnsupportedError('LLaVA-NeXT with a CLIP tower needs vision_feature_select_strategy default (the class token has no place in the tile grid)', {
      details: { field: 'vision_feature_select_strategy' },
    });
  }
  const tileSize = spec.imageSize;
  const patchGrid = spec.imageSize / spec.patchSize;
  if (tower.tokens !== patchGrid * patchGrid) {
    throw new UnsupportedError(`LLaVA-NeXT needs ${patchGrid * patchGrid} features per view, the tower gives ${tower.tokens}`, {
      details: { field: 'vision_feature_select_strategy' },
    });
  }
  if (projector.inputDim !== tower.outputDim || projector.outputTokens(tower.tokens) !== tower.tokens) {
    throw new CompatibilityError(`projector ${projector.id} does not fit tower ${tower.id}`, {
      details: {
        field: 'projector',
        left: { component: 'encoder', id: tower.id, field: 'outputDim', value: tower.outputDim },
        right: { component: 'connector', id: projector.id, field: 'inputDim', value: projector.inputDim },
      },
    });
  }
  const hidden = projector.outputDim;
  const geometry: LlavaNextGeometry = { gridPinpoints: options.gridPinpoints, tileSize, patchGrid };
  const plan: AnyresTokenPlan = {
    kind: 'anyres',
    tileSize,
    patchSize: spec.patchSize,
    gridPinpoints: options.gridPinpoints,
    clsToken,
    featureSelect: strategy === 'default' ? 'patch' : 'cls_patch',
  };
  const C = spec.numChannels;
  const settings = tower.settings;

  const preprocess = (image: RawImage): Tensor<'float32'> => {
    const rgb = settings.convertRgb ? convertToRgb(image) : image;
    const views = anyresViews(rgb, { gridPinpoints: options.gridPinpoints, tileSize, resample: settings.resample });
    const out = createTensor('float32', [views.length, C, tileSize, tileSize]);
    views.forEach((v, i) => {
      // Each view then goes through the processor's own steps (resize, crop: no-ops at the tower's size; rescale, normalise).
      const px = preprocessPixels(v, { ...settings, convertRgb: false, padToSquare: null });
      if (px.width !== tileSize || px.height !== tileSize || px.channels !== C) {
        throw new InvalidArgumentError(`view ${i} becomes ${px.channels}x${px.height}x${px.width}, the tower takes ${C}x${tileSize}x${tileSize}`, {
          details: { field: 'preprocessor' },
        });
      }
      writeImageTensor(px, settings, out.data, i * C * tileSize * tileSize);
    });
    return out;
  };

  const tokensPerImage = (size: ImageSize): number => planVisualTokens(size, plan).languageModelTokens;

  return {
    id: options.id ?? `llava-next:${tower.id}+${projector.id}`,
    outputDim: hidden,
    plan,
    tower,
    projector,
    imageNewline,
    preprocess,
    tokensPerImage,
    async encode(images: readonly RawImage[], opts?: EncodeImagesOptions): Promise<Tensor<'float32'>> {
      const packed: Tensor<'float32'>[] = [];
      for (const [i, image] of images.entries()) {
        if (opts?.signal?.aborted) throw new InvalidArgumentError('encode aborted', { cause: opts.signal.reason, details: { field: 'signal' } });
        const features = await tower.encodePixels(preprocess(image));
        const projected = await projector.project(features);
        const size = { width: image.width, height: image.height };
        const one = packLlavaNextFeatures(createTensor('float32', [...projected.dims], toFloat32(projected)), size, imageNewline, geometry);
        const planned = tokensPerImage(size);
        if (one.dims[0] !== planned) {
          throw new CompatibilityError(`image ${i} packs into ${one.dims[0]} tokens but the planner predicts ${planned}`, {
            details: { record: i, field: 'images', left: one.dims[0], right: planned },
          });
        }
        packed.push(one);
      }
      const tokens = packed[0]?.dims[0] ?? 0;
      if (packed.some((t) => t.dims[0] !== tokens)) {
        throw new InvalidArgumentError('encode takes images that pack into the same token count; encode images of other sizes in separate calls', {
          details: { field: 'images' },
        });
      }
      const out = createTensor('float32', [packed.length, tokens, hidden]);
      packed.forEach((t, i) => out.data.set(t.data, i * tokens * hidden));
      return out;
    },
  };
}

/**
 * The connector after a vision part that already projects (LLaVA-NeXT's): features pass through unchanged,
 * so composition still checks widths and counts end to end.
 */
export function createPassThroughConnector(dim: number, id = `pass-through-${dim}`): Connector {
  return {
    id,
    inputDim: dim,
    outputDim: dim,
    outputTokens: (n: number) => n,
    project: async (features: Tensor<'float32'>) => features,
  };
}
