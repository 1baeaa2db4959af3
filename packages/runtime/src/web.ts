/**
 * @vlit/runtime/web: Vlit's runtime for browsers (and any host with WebAssembly), over
 * onnxruntime-web and the browser's image APIs (createImageBitmap, OffscreenCanvas).
 * @packageDocumentation
 */
import * as ort from 'onnxruntime-web';
import { BackendError, UnsupportedError, type ImageCodec, type InferenceBackend, type SessionOptions, type VlitRuntime } from '@vlit/core';
import { createOrtBackend, type OrtModuleLike } from './shared/ort-adapter.js';
import { checkRawImage, imageDecodeError } from './shared/image.js';

/** WebAssembly settings. They are process-wide in onnxruntime-web and fixed by the first session created. */
export interface WasmOptions {
  /** Worker threads for wasm kernels (needs cross-origin isolation in browsers, else 1 is used). */
  numThreads?: number;
  /** Where the .wasm files are served from, when bundling moves them. */
  wasmPaths?: string;
  /** Use a proxy worker so inference does not block the main thread. */
  proxy?: boolean;
}

/** Options of the web runtime. */
export interface WebRuntimeOptions {
  /** Defaults for every session (execution providers default to `['wasm']`; `['webgpu', 'wasm']` where available). */
  session?: SessionOptions;
  wasm?: WasmOptions;
  /** A codec to use instead of the browser image APIs (e.g. in a worker without OffscreenCanvas). */
  images?: ImageCodec;
}

function applyWasmOptions(wasm: WasmOptions | undefined): void {
  if (!wasm) return;
  if (wasm.numThreads !== undefined) ort.env.wasm.numThreads = wasm.numThreads;
  if (wasm.wasmPaths !== undefined) ort.env.wasm.wasmPaths = wasm.wasmPaths;
  if (wasm.proxy !== undefined) ort.env.wasm.proxy = wasm.proxy;
}

async function fetchModel(url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new BackendError(`cannot fetch model ${url}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      details: { file: url },
    });
  }
  if (!response.ok) {
    throw new BackendError(`cannot fetch model ${url}: HTTP ${response.status}`, { details: { file: url, status: response.status } });
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** Create an InferenceBackend over onnxruntime-web. Models given as strings are fetched as URLs. */
export function createOnnxWebBackend(defaults: SessionOptions = {}, wasm?: WasmOptions): InferenceBackend {
  applyWasmOptions(wasm);
  return createOrtBackend(ort as unknown as OrtModuleLike, 'onnxruntime-web', 'web', { executionProviders: ['wasm'], ...defaults }, fetchModel);
}

interface CanvasLike {
  getContext(
    kind: '2d',
    options?: Record<string, unknown>,
  ): {
    drawImage(image: unknown, x: number, y: number): void;
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
    putImageData(data: unknown, x: number, y: number): void;
  } | null;
  convertToBlob(options: { type: string; quality?: number }): Promise<Blob>;
}

function browserApis(): {
  createImageBitmap: (blob: Blob, options?: Record<string, unknown>) => Promise<{ width: number; height: number; close(): void }>;
  OffscreenCanvas: new (w: number, h: number) => CanvasLike;
  ImageData: new (data: Uint8ClampedArray, w: number, h: number) => unknown;
} {
  const g = globalThis as Record<string, unknown>;
  if (typeof g.createImageBitmap !== 'function' || typeof g.OffscreenCanvas !== 'function' || typeof g.ImageData !== 'function') {
    throw new UnsupportedError(
      'the browser image codec needs createImageBitmap, OffscreenCanvas and ImageData; pass `images` to createWebRuntime on hosts without them',
    );
  }
  return g as never;
}

/**
 * Create an ImageCodec over createImageBitmap and OffscreenCanvas; like PIL's `convert('RGB')`, 3 channels drops alpha.
 * Browsers keep 2D canvases premultiplied, so the colour of translucent pixels may differ by one step from sharp/PIL;
 * opaque pixels are exact.
 */
export function createBrowserImageCodec(): ImageCodec {
  return {
    name: 'browser',
    async decode(bytes, options = {}) {
      const api = browserApis();
      const channels = options.channels ?? 3;
      let bitmap: { width: number; height: number; close(): void };
      try {
        // Without these flags the canvas premultiplies alpha and converts colour spaces, changing pixel values.
        bitmap = await api.createImageBitmap(new Blob([bytes as BlobPart]), {
          premultiplyAlpha: 'none',
          colorSpaceConversion: 'none',
        });
      } catch (err) {
        throw imageDecodeError(err, options.source);
      }
      const { width, height } = bitmap;
      const canvas = new api.OffscreenCanvas(width, height);
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      if (!ctx) throw new UnsupportedError('OffscreenCanvas has no 2d context');
      ctx.drawImage(bitmap, 0, 0);
      bitmap.close();
      const rgba = ctx.getImageData(0, 0, width, height).data;
      if (channels === 4) return { width, height, channels: 4, data: new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.length) };
      const rgb = new Uint8Array(width * height * 3);
      for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
        rgb[j] = rgba[i];
        rgb[j + 1] = rgba[i + 1];
        rgb[j + 2] = rgba[i + 2];
      }
      return { width, height, channels: 3, data: rgb };
    },
    async encode(image, format, options = {}) {
      checkRawImage(image, 'encode');
      const api = browserApis();
      const { width, height, channels, data } = image;
      const rgba = new Uint8ClampedArray(width * height * 4);
      for (let p = 0; p < width * height; p++) {
        const s = p * channels;
        const grey = channels <= 2;
        rgba[p * 4] = data[s];
        rgba[p * 4 + 1] = grey ? data[s] : data[s + 1];
        rgba[p * 4 + 2] = grey ? data[s] : data[s + 2];
        rgba[p * 4 + 3] = channels === 2 ? data[s + 1] : channels === 4 ? data[s + 3] : 255;
      }
      const canvas = new api.OffscreenCanvas(width, height);
      const ctx = canvas.getContext('2d');
      if (!ctx) throw new UnsupportedError('OffscreenCanvas has no 2d context');
      ctx.putImageData(new api.ImageData(rgba, width, height), 0, 0);
      const blob = await canvas.convertToBlob({ type: `image/${format}`, quality: (options.quality ?? 90) / 100 });
      return new Uint8Array(await blob.arrayBuffer());
    },
  };
}

/** Create the web runtime: onnxruntime-web sessions and browser image decoding. */
export function createWebRuntime(options: WebRuntimeOptions = {}): VlitRuntime {
  return {
    platform: 'web',
    backend: createOnnxWebBackend(options.session, options.wasm),
    images: options.images ?? createBrowserImageCodec(),
  };
}
