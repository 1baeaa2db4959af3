/**
 * @vlit/runtime/node: Vlit's runtime for Node.js, over onnxruntime-node and sharp.
 * Import this entry to run natively; import `@vlit/runtime/web` for onnxruntime-web.
 * @packageDocumentation
 */
import { readFile, stat } from 'node:fs/promises';
import { NotFoundError, type DecodeOptions, type ImageCodec, type InferenceBackend, type RawImage, type SessionOptions, type VlitRuntime } from '@vlit/core';
import { createOrtBackend, type OrtModuleLike } from './shared/ort-adapter.js';
import { checkRawImage, imageDecodeError } from './shared/image.js';
import { renderSvgToPng } from './svg-node.js';
import { requireOnnxNode, requireSharp } from './node-deps.js';

export { renderSvgToPng, MAX_SVG_PIXELS } from './svg-node.js';
export { NODE_RUNTIME_PACKAGES } from './node-deps.js';

/** Options of the node runtime. */
export interface NodeRuntimeOptions {
  /** Defaults for every session (execution providers default to `['cpu']`). */
  session?: SessionOptions;
}

/** Create an InferenceBackend over onnxruntime-node. Models given as paths keep their external data beside them. */
export function createOnnxNodeBackend(defaults: SessionOptions = {}): InferenceBackend {
  const ort = requireOnnxNode();
  return createOrtBackend(ort as unknown as OrtModuleLike, 'onnxruntime-node', 'node', { executionProviders: ['cpu'], ...defaults }, async (path) => {
    try {
      const s = await stat(path);
      if (!s.isFile()) throw new Error('not a file');
    } catch (err) {
      throw new NotFoundError(`model file not found: ${path}`, { cause: err, details: { file: path } });
    }
    return path;
  });
}

/** Create an ImageCodec over sharp (with `svgToPng`). Like PIL's `convert('RGB')`, 3-channel decoding drops alpha and EXIF orientation is not applied. */
export function createSharpCodec(): ImageCodec {
  const sharp = requireSharp();
  return {
    name: 'sharp',
    async decode(bytes, options = {}) {
      const channels = options.channels ?? 3;
      try {
        // One top-to-bottom pass over the pixels, so libvips may decode sequentially (less buffering).
        let pipeline = sharp(bytes, { failOn: 'error', sequentialRead: true }).toColourspace('srgb');
        pipeline = channels === 4 ? pipeline.ensureAlpha() : pipeline.removeAlpha();
        const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
        return {
          width: info.width,
          height: info.height,
          channels: info.channels as RawImage['channels'],
          data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        };
      } catch (err) {
        throw imageDecodeError(err, options.source);
      }
    },
    async encode(image, format, options = {}) {
      checkRawImage(image, 'encode');
      const pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } });
      const out =
        format === 'png'
          ? await pipeline.png().toBuffer()
          : format === 'jpeg'
            ? await pipeline.jpeg({ quality: options.quality ?? 90 }).toBuffer()
            : await pipeline.webp({ quality: options.quality ?? 90 }).toBuffer();
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    },
    svgToPng: renderSvgToPng,
  };
}

/** Read and decode an image file with sharp; errors name the file. */
export async function readImageFile(path: string, options: Omit<DecodeOptions, 'source'> = {}): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new NotFoundError(`image file not found: ${path}`, { cause: err, details: { file: path } });
  }
  return createSharpCodec().decode(bytes, { ...options, source: path });
}

/** Create the node runtime: onnxruntime-node sessions and sharp images. */
export function createNodeRuntime(options: NodeRuntimeOptions = {}): VlitRuntime {
  return { platform: 'node', backend: createOnnxNodeBackend(options.session), images: createSharpCodec() };
}
