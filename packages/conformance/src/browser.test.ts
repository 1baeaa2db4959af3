// The web runtime in a real browser: Debian's Chromium driven by playwright-core, loading a page
// served on 127.0.0.1 (with COOP/COEP so onnxruntime-web may use threads).
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clipProcessorSettings, preprocessBackend, preprocessImage } from '@vlit/encoders';
import { createNodeRuntime } from '@vlit/runtime/node';
import { maxAbsDiff } from '@vlit/test-kit';
import { CHROMIUM_FLAGS, CHROMIUM_PATH, writePng } from '@vlit/test-kit/node';
import { conformanceCases, runCase } from './index.js';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// The onnxruntime-web that @vlit/runtime resolves; every entry of the package sits in its dist/ folder.
const ortDist = dirname(require.resolve('onnxruntime-web', { paths: [dirname(fileURLToPath(import.meta.resolve('@vlit/runtime/web')))] }));

/** Gradients, a disc and seeded noise at 0 and 255 (so the filter's over- and undershoot reach the clipping). */
function sceneRgb(width: number, height: number): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(width * height * 3);
  let seed = 7;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      seed = (seed * 1103515245 + 12345) >>> 0;
      const disc = (x - 300) ** 2 + (y - 200) ** 2 < 120 ** 2;
      data[o] = disc ? 255 - (x * 255) / width : (x * 255) / width;
      data[o + 1] = (y * 255) / height;
      data[o + 2] = x % 97 < 40 ? (seed >>> 24 < 128 ? 0 : 255) : (x ^ y) & 255;
    }
  }
  return { width, height, data };
}

let server: Server;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  const bundle = await build({
    entryPoints: [join(here, '../browser/entry.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    external: ['onnxruntime-web'],
    write: false,
    target: 'es2022',
  });
  const js = bundle.outputFiles[0].text;
  const html = `<!doctype html><meta charset="utf-8"><title>loading</title>
<script type="importmap">{"imports":{"onnxruntime-web":"/ort/ort.bundle.min.mjs"}}</script>
<script type="module" src="/bundle.js"></script>`;
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers: Record<string, string> = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    if (url.pathname === '/') return res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(html);
    if (url.pathname === '/bundle.js') return res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' }).end(js);
    if (url.pathname.startsWith('/ort/')) {
      const file = normalize(join(ortDist, url.pathname.slice(5)));
      if (!file.startsWith(ortDist)) return res.writeHead(403).end();
      try {
        const body = await readFile(file);
        const type = file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
        return res.writeHead(200, { ...headers, 'Content-Type': type }).end(body);
      } catch {
        return res.writeHead(404).end();
      }
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_FLAGS] });
  page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page
    .waitForFunction(() => document.title === 'ready', undefined, { timeout: 30_000 })
    .catch(() => {
      throw new Error(`page did not load: ${errors.join('; ')}`);
    });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe('@vlit/runtime/web in Chromium', () => {
  it('page is cross-origin isolated, so onnxruntime-web may use threads', async () => {
    expect(await page.evaluate(() => (globalThis as unknown as { vlit: { crossOriginIsolated: boolean } }).vlit.crossOriginIsolated)).toBe(true);
  });

  it('passes every conformance case within 1e-5 and matches the native runtime', async () => {
    const results = await page.evaluate(() =>
      (
        globalThis as unknown as {
          vlit: {
            runConformance(): Promise<Array<{ case: string; maxAbsDiff: Record<string, number>; problems: string[]; outputs: Record<string, number[]> }>>;
          };
        }
      ).vlit.runConformance(),
    );
    const cases = conformanceCases();
    expect(results.map((r) => r.case)).toEqual(cases.map((c) => c.name));
    const native = createNodeRuntime({ session: { intraOpThreads: 1 } });
    for (let i = 0; i < cases.length; i++) {
      expect(results[i].problems, results[i].case).toEqual([]);
      for (const d of Object.values(results[i].maxAbsDiff)) expect(d).toBeLessThanOrEqual(1e-5);
      const n = await runCase(native.backend, cases[i]);
      for (const [name, t] of Object.entries(n.outputs)) {
        expect(maxAbsDiff(t.data as Float32Array, results[i].outputs[name]), `${cases[i].name} ${name}`).toBeLessThanOrEqual(1e-5);
      }
    }
  }, 60_000);

  it('the browser codec decodes a hand-written RGBA PNG: opaque pixels exactly, translucent within one step', async () => {
    const px = (x: number, y: number) => [x * 50, y * 80, 200, x === 0 ? 128 : 255];
    const png = Array.from(writePng(4, 3, 4, px)); // RGBA, 8-bit, from the PNG specification
    const vlit = 'vlit' as const;
    const img4 = await page.evaluate(
      ([b]) =>
        (
          globalThis as unknown as Record<
            typeof vlit,
            { decode(b: number[], c: number): Promise<{ data: number[]; width: number; height: number; channels: number }> }
          >
        ).vlit.decode(b, 4),
      [png] as const,
    );
    expect([img4.width, img4.height, img4.channels]).toEqual([4, 3, 4]);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 4; x++) {
        const got = img4.data.slice((y * 4 + x) * 4, (y * 4 + x) * 4 + 4);
        // Chromium's 2D canvas stores premultiplied alpha, so colour under alpha < 255 may round by one.
        if (x === 0) got.forEach((v, i) => expect(Math.abs(v - px(x, y)[i])).toBeLessThanOrEqual(1));
        else expect(got).toEqual(px(x, y));
      }
    }
    const img3 = await page.evaluate(
      ([b]) =>
        (globalThis as unknown as Record<typeof vlit, { decode(b: number[], c: number): Promise<{ data: number[]; channels: number }> }>).vlit.decode(b, 3),
      [png] as const,
    );
    expect(img3.channels).toBe(3);
    expect(img3.data.slice(3, 6)).toEqual(px(1, 0).slice(0, 3)); // alpha dropped, colour kept (as PIL's convert('RGB'))
  });

  it('preprocesses on the WebAssembly SIMD kernel in Chromium, bit-identical to Node on a 640x480 image', async () => {
    const { width, height, data } = sceneRgb(640, 480);
    const got = await page.evaluate(
      ([w, h, d]) =>
        (globalThis as unknown as { vlit: { preprocess(w: number, h: number, d: number[]): { backend: string; bits: number[] } } }).vlit.preprocess(w, h, d),
      [width, height, Array.from(data)] as const,
    );
    expect(got.backend).toBe('wasm-simd');
    const native = preprocessImage({ width, height, channels: 3, data }, clipProcessorSettings(336));
    expect(preprocessBackend()).toBe('wasm-simd');
    expect(got.bits).toEqual(Array.from(new Uint32Array(native.data.buffer, native.data.byteOffset, native.data.length)));
  }, 60_000);

  it('encodes PNG losslessly and gives a typed error for bytes that are not an image', async () => {
    const data = Array.from({ length: 5 * 2 * 3 }, (_, i) => (i * 41) % 256);
    const back = await page.evaluate(
      ([d]) => (globalThis as unknown as { vlit: { roundTrip(w: number, h: number, d: number[]): Promise<number[]> } }).vlit.roundTrip(5, 2, d),
      [data] as const,
    );
    expect(back).toEqual(data);
    const bad = [...new TextEncoder().encode('not an image at all')];
    const err = await page.evaluate(
      ([b]) => (globalThis as unknown as { vlit: { decode(b: number[], c: number): Promise<{ code?: string; message: string }> } }).vlit.decode(b, 3),
      [bad] as const,
    );
    expect(err.code).toBe('VLIT_IMAGE_DECODE');
    expect(err.message).toContain('page-image.png');
  });
});
