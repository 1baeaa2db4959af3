// SVG rasterisation through sharp (librsvg), fixed so the same SVG always gives the same PNG bytes.
import { ImageDecodeError, InvalidArgumentError, LimitExceededError, type SvgToPngOptions } from '@vlit/core';
import { requireSharp } from './node-deps.js';

/** Largest SVG canvas `renderSvgToPng` accepts (pixels), far above any training image. */
export const MAX_SVG_PIXELS = 4096 * 4096;

// At 72 dpi sharp renders an SVG whose root says width="W" height="H" as exactly W x H pixels; pinning
// it keeps geometry in the SVG equal to geometry in the PNG whatever sharp's default becomes.
const DENSITY = 72;

/** The root element's width and height in pixels, or a typed error: without them the canvas size would be guessed. */
function rootSize(svg: string, source: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/i.exec(svg)?.[0];
  if (!root) throw new ImageDecodeError('not an SVG document: no <svg> element', { details: { file: source } });
  const attr = (name: string): number | undefined => {
    const m = new RegExp(`\\s${name}\\s*=\\s*["']\\s*([0-9]+(?:\\.[0-9]+)?)\\s*(px)?\\s*["']`).exec(root);
    return m ? Number(m[1]) : undefined;
  };
  const width = attr('width');
  const height = attr('height');
  if (width === undefined || height === undefined || !Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidArgumentError('the <svg> root needs integer pixel width and height attributes (e.g. width="128" height="128")', {
      details: { file: source, field: 'width/height' },
    });
  }
  if (width * height > MAX_SVG_PIXELS) {
    throw new LimitExceededError(`SVG canvas ${width}x${height} exceeds ${MAX_SVG_PIXELS} pixels`, { details: { file: source, field: 'width/height' } });
  }
  return { width, height };
}

/**
 * Rasterise an SVG string to an 8-bit RGB PNG at 1 pixel per user unit (the root's width x height),
 * flattened onto white. Text uses the fonts fontconfig finds (install fonts-dejavu-core for `DejaVu Sans`).
 */
export async function renderSvgToPng(svg: string, options: SvgToPngOptions = {}): Promise<Uint8Array> {
  const source = options.source ?? '<svg>';
  if (typeof svg !== 'string') throw new InvalidArgumentError('svg must be a string', { details: { file: source, field: 'svg' } });
  const { width, height } = rootSize(svg, source);
  const sharp = requireSharp();
  try {
    const { data, info } = await sharp(Buffer.from(svg, 'utf8'), { density: DENSITY, failOn: 'error', limitInputPixels: MAX_SVG_PIXELS })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .png({ compressionLevel: 9, adaptiveFiltering: false, palette: false })
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height) {
      throw new ImageDecodeError(`SVG rendered at ${info.width}x${info.height}, expected ${width}x${height}`, { details: { file: source } });
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    throw new ImageDecodeError(`cannot render SVG: ${err instanceof Error ? err.message : String(err)}`, { cause: err, details: { file: source } });
  }
}
