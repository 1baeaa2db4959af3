// Browser side of the conformance suite: bundled by esbuild in the test, with onnxruntime-web left
// to an import map so it loads its own wasm and workers exactly as in a user's app.
import { createWebRuntime } from '@vlit/runtime/web';
import { isVlitError, toFloat32 } from '@vlit/core';
import { clipProcessorSettings, preprocessBackend, preprocessImage } from '@vlit/encoders';
import { conformanceCases, runCase } from '../src/index.js';

const runtime = createWebRuntime({ wasm: { wasmPaths: '/ort/' } });

async function runConformance(): Promise<Array<{ case: string; maxAbsDiff: Record<string, number>; problems: string[]; outputs: Record<string, number[]> }>> {
  const out = [];
  for (const c of conformanceCases()) {
    const r = await runCase(runtime.backend, c);
    const outputs: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(r.outputs)) outputs[k] = Array.from(toFloat32(t));
    out.push({ case: r.case, maxAbsDiff: r.maxAbsDiff, problems: r.problems, outputs });
  }
  return out;
}

async function decode(
  bytes: number[],
  channels: 3 | 4,
): Promise<{ width: number; height: number; channels: number; data: number[] } | { error: string; code?: string; message: string }> {
  try {
    const img = await runtime.images.decode(new Uint8Array(bytes), { source: 'page-image.png', channels });
    return { width: img.width, height: img.height, channels: img.channels, data: Array.from(img.data) };
  } catch (err) {
    return { error: (err as Error).name, code: isVlitError(err) ? err.code : undefined, message: (err as Error).message };
  }
}

async function roundTrip(width: number, height: number, data: number[]): Promise<number[]> {
  const png = await runtime.images.encode({ width, height, channels: 3, data: new Uint8Array(data) }, 'png');
  const back = await runtime.images.decode(png);
  return Array.from(back.data);
}

/** CLIP-336 preprocessing of raw RGB pixels on the page's own kernel; the floats as their uint32 bit patterns. */
function preprocess(width: number, height: number, data: number[]): { backend: string; bits: number[] } {
  const x = preprocessImage({ width, height, channels: 3, data: new Uint8Array(data) }, clipProcessorSettings(336));
  return { backend: preprocessBackend(), bits: Array.from(new Uint32Array(x.data.buffer, x.data.byteOffset, x.data.length)) };
}

(globalThis as Record<string, unknown>).vlit = { runConformance, decode, roundTrip, preprocess, crossOriginIsolated: globalThis.crossOriginIsolated };
document.title = 'ready';
