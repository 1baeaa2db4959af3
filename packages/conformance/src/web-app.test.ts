// examples/web in real Chromium: a tiny LLaVA folder written by Vlit's own saver, the app built by Vite and
// served on 127.0.0.1 (COOP/COEP), driven by playwright-core. The answer streams and equals what the folder
// loader gives in Node for the same image and question; the in-page connector training lowers the loss;
// the bundle holds no Node-only module and the app's production dependencies pull no native binary.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VisionLanguageRequest } from '@vlit/core';
import { createMlpConnector } from '@vlit/connectors';
import { createHfVisionEncoder, createVitWeights, resolveVitConfig } from '@vlit/encoders';
import { composeVisionLanguageModel, createLlamaDecoder, tinyLlamaConfig } from '@vlit/models';
import { loadVisionLanguageModel, saveLlavaCheckpoint, vitAsHfVisionTower } from '@vlit/models/node';
import { createNodeRuntime } from '@vlit/runtime/node';
import { buildWordLevelTokenizer, createJinjaChatTemplate } from '@vlit/templates';
import { CHROMIUM_FLAGS, CHROMIUM_PATH, writePng } from '@vlit/test-kit/node';
import { PAIRS, TRAIN_PROMPT } from '../../../examples/web/src/pairs.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '../../..');
const appDir = join(repo, 'examples/web');
const artifacts = join(here, '../test-artifacts/web-app');
const TEMPLATE =
  "<s>{% for message in messages %}{% if message['role'] == 'user' %}USER: {{ message['content'] }} {% else %}ASSISTANT: {{ message['content'] }}</s>{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}";
const QUESTION = 'what colour is the shape ?';
const STEPS = 24;

let work: string;
let site: string;
let modelDir: string;
let server: Server;
let browser: Browser;
let page: Page;
let baseUrl: string;
const pageErrors: string[] = [];
const consoleErrors: string[] = [];
const workers: string[] = [];
const notFound: string[] = [];
// A 40x40 RGB PNG: a red disc on a grey-blue gradient (opaque, so every decoder gives the same pixels).
const probePng = writePng(40, 40, 3, (x, y) => ((x - 20) ** 2 + (y - 20) ** 2 < 144 ? [210, 30, 40] : [90 + x * 2, 100, 120 + y * 2]));

/** A deterministic tiny LLaVA (CLIP-layout ViT, MLP projector, Llama decoder, word-level tokenizer) saved as a folder. */
async function writeTinyLlava(dir: string): Promise<void> {
  const runtime = createNodeRuntime();
  const corpus = [...PAIRS.map((p) => p.caption), TRAIN_PROMPT, QUESTION, 'USER: ASSISTANT:', 'red green blue yellow grey shape square circle disc'];
  const tokenizer = buildWordLevelTokenizer({
    corpus,
    specialTokens: ['<pad>', '<s>', '</s>', '<unk>', '<image>'],
    roles: { bos: '<s>', eos: '</s>', pad: '<pad>' },
  });
  const vit = resolveVitConfig({ imageSize: 32, patchSize: 8, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, hiddenAct: 'quick_gelu' });
  const { spec, weights } = vitAsHfVisionTower(vit, createVitWeights(vit, 'web-app-vit'));
  const tower = await createHfVisionEncoder({ backend: runtime.backend, spec, weights, featureLayer: -2, selectStrategy: 'default' });
  const connector = createMlpConnector({ inputDim: 32, hiddenDim: 48, outputDim: 48 }, { backend: runtime.backend, seed: 'web-app-projector' });
  const languageModel = await createLlamaDecoder({
    config: tinyLlamaConfig({
      hiddenSize: 48,
      vocabSize: tokenizer.vocabSize,
      intermediateSize: 96,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      bosTokenId: tokenizer.tokenToId('<s>'),
      eosTokenId: tokenizer.tokenToId('</s>'),
    }),
    seed: 'web-app-llama',
    backend: runtime.backend,
  });
  const template = createJinjaChatTemplate({ source: TEMPLATE, name: 'web-app', imageToken: '<image>', contentFormat: 'string' });
  const vlm = composeVisionLanguageModel({ encoder: tower, connector, languageModel, template, tokenizer });
  await saveLlavaCheckpoint(dir, vlm, {
    imageTokenId: tokenizer.tokenToId('<image>') as number,
    imageToken: '<image>',
    chatTemplate: TEMPLATE,
    files: tokenizer.hfTokenizerFiles(),
  });
  await tower.release();
  await connector.dispose();
  await languageModel.dispose();
}

/**
 * Node-only modules a bundle imports: static, dynamic and require-style specifiers (bundlers rename
 * require, so any call with such a name counts). The one exception is onnxruntime-web's own thread count,
 * `typeof navigator > 'u' ? require('node:os')`, which a browser never runs.
 */
function nodeOnlyImports(text: string): string[] {
  const nodeOnly = /^(node:.*|fs|fs\/promises|path|os|child_process|worker_threads|module|url|crypto|stream|util|onnxruntime-node|sharp|@img\/.*)$/;
  const found: string[] = [];
  const specifiers = [
    ...text.matchAll(/\bfrom\s*["'`]([^"'`]+)["'`]/g),
    ...text.matchAll(/\bimport\s*["'`]([^"'`]+)["'`]/g),
    ...text.matchAll(/\bimport\(\s*["'`]([^"'`]+)["'`]\s*\)/g),
  ].map((m) => m[1]);
  for (const spec of specifiers) if (nodeOnly.test(spec)) found.push(spec);
  for (const m of text.matchAll(/([\w$]+)\(\s*["'`]([^"'`]+)["'`]\s*\)/g)) {
    if (m[1] === 'import' || !nodeOnly.test(m[2])) continue;
    const before = text.slice(Math.max(0, (m.index ?? 0) - 30), m.index);
    if (m[2] === 'node:os' && /typeof navigator\s*>\s*["'`]u["'`]\s*\?\s*$/.test(before)) continue;
    found.push(m[0]);
  }
  return found;
}

/** A package's production dependency closure (devDependencies of the root too, when asked), resolved as Node does, and the packages in it that carry a native binary (.node files, binding.gyp, gypfile, node-pre-gyp). */
async function dependencyClosure(rootPackageJson: string, withDev: boolean): Promise<{ names: string[]; native: string[] }> {
  const seen = new Set<string>();
  const native: string[] = [];
  const resolvePackage = async (name: string, from: string): Promise<string | undefined> => {
    for (let dir = from; ; dir = dirname(dir)) {
      const candidate = join(dir, 'node_modules', name, 'package.json');
      if (await exists(candidate)) return candidate;
      if (dirname(dir) === dir) return undefined;
    }
  };
  const hasNativeFiles = async (dir: string): Promise<boolean> => {
    if ((await exists(join(dir, 'binding.gyp'))) || (await exists(join(dir, 'prebuilds')))) return true;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith('.node')) return true;
      if (e.isDirectory() && e.name !== 'node_modules' && (await hasNativeFiles(join(dir, e.name)))) return true;
    }
    return false;
  };
  type Manifest = {
    dependencies?: Record<string, string>;
    optionalDependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
    gypfile?: boolean;
    binary?: unknown;
  };
  const walk = async (pkgJson: string, dev: boolean): Promise<void> => {
    const pkg = JSON.parse(await readFile(pkgJson, 'utf8')) as Manifest;
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...(dev ? pkg.devDependencies : {}) })) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      const found = await resolvePackage(dep, dirname(pkgJson));
      if (!found) continue;
      const manifest = JSON.parse(await readFile(found, 'utf8')) as Manifest;
      if (manifest.gypfile || manifest.binary || (await hasNativeFiles(dirname(found)))) native.push(dep);
      await walk(found, false);
    }
  };
  await walk(rootPackageJson, withDev);
  return { names: [...seen], native };
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.css': 'text/css',
};

function serve(roots: Record<string, string>): Server {
  return createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    const prefix = Object.keys(roots)
      .sort((a, b) => b.length - a.length)
      .find((p) => url.pathname.startsWith(p));
    if (!prefix) return res.writeHead(404, headers).end();
    const root = roots[prefix];
    const rel = decodeURIComponent(url.pathname.slice(prefix.length)) || 'index.html';
    const file = normalize(join(root, rel));
    if (!file.startsWith(root + sep) && file !== root) return res.writeHead(403, headers).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404, headers).end();
    }
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vlit-web-app-'));
  site = join(work, 'site');
  modelDir = join(work, 'model');
  await writeTinyLlava(modelDir);
  await build({
    root: appDir,
    configFile: join(appDir, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: site, emptyOutDir: true, reportCompressedSize: false },
  });
  server = serve({ '/model/': modelDir, '/': site });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  await mkdir(artifacts, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_FLAGS] });
  page = await browser.newPage({ viewport: { width: 900, height: 1100 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('worker', (w) => workers.push(w.url()));
  page.on('response', (r) => {
    if (r.status() === 404) notFound.push(new URL(r.url()).pathname);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  if (work) await rm(work, { recursive: true, force: true });
});

async function waitForState(state: string, timeout = 240_000): Promise<void> {
  await page.waitForFunction((s) => document.body.dataset.state === s || document.body.dataset.state === 'error', state, { timeout, polling: 200 });
  const got = await page.evaluate(() => ({ state: document.body.dataset.state, status: document.getElementById('status')?.textContent }));
  if (got.state !== state) throw new Error(`the page says: ${got.status}; errors: ${[...pageErrors, ...consoleErrors].join('; ')}`);
}

describe('examples/web in Chromium', () => {
  it('loads the model folder by URL, answers about an uploaded PNG with streamed tokens, the same answer as Node', async () => {
    await page.goto(`${baseUrl}/?model=/model/&threads=2`);
    await waitForState('loaded');
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    // Drag-and-drop first (a 24x24 PNG dropped on the drop zone), then the file picker replaces it.
    const dropped = Array.from(writePng(24, 24, 3, (x, y) => [x * 10, y * 10, 128]));
    await page.evaluate((bytes) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
      document.getElementById('drop')?.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }, dropped);
    await page.waitForFunction(() => document.body.dataset.image === '24x24', undefined, { timeout: 60_000 });
    await page.setInputFiles('#image', { name: 'probe.png', mimeType: 'image/png', buffer: Buffer.from(probePng) });
    await page.waitForFunction(() => document.body.dataset.image === '40x40', undefined, { timeout: 60_000 });
    await page.fill('#question', QUESTION);
    // Count how many times the answer's text changes while it is generated.
    await page.evaluate(() => {
      const el = document.getElementById('answer') as HTMLElement & { textChanges?: number };
      el.textChanges = 0;
      new MutationObserver(() => (el.textChanges = (el.textChanges ?? 0) + 1)).observe(el, { childList: true, characterData: true, subtree: true });
    });
    await page.click('#ask');
    await page.waitForFunction(() => document.getElementById('answer')?.dataset.done === 'true' || document.body.dataset.state === 'error', undefined, {
      timeout: 240_000,
    });
    const got = await page.evaluate(() => {
      const el = document.getElementById('answer') as HTMLElement & { textChanges?: number };
      return { text: el.textContent ?? '', updates: Number(el.dataset.updates), changes: el.textChanges ?? 0 };
    });
    await page.screenshot({ path: join(artifacts, '1-answer.png'), fullPage: true });

    // The independent check: the folder loader of @vlit/models/node, on onnxruntime-node and sharp.
    const runtime = createNodeRuntime();
    const model = await loadVisionLanguageModel(modelDir, { runtime });
    const image = await runtime.images.decode(probePng, { channels: 3 });
    const request: VisionLanguageRequest = { messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: QUESTION }] }], images: [image] };
    const native = await model.generate(request, { temperature: 0, maxNewTokens: 16 });
    await model.dispose();
    await writeFile(join(artifacts, 'answer.json'), `${JSON.stringify({ page: got, node: native.text, workers: workers.length }, null, 2)}\n`);
    expect(native.tokenIds.length).toBeGreaterThan(1);
    expect(got.text).toBe(native.text);
    expect(got.text.length).toBeGreaterThan(0);
    // Streamed: one update per token piece, and the text changed more than once before the end.
    expect(got.updates).toBeGreaterThan(1);
    expect(got.changes).toBeGreaterThan(2);
    expect(pageErrors).toEqual([]);
    // Two wasm threads: onnxruntime-web started worker(s) from the app's own bundle, and the page survived them.
    expect(workers.length).toBeGreaterThan(0);
    // The app asks the model URL for each optional file of a checkpoint folder; the absent ones are the only 404s.
    for (const path of notFound)
      expect(path).toMatch(
        /^\/model\/(generation_config\.json|special_tokens_map\.json|chat_template\.json|processor_config\.json|preprocessor_config\.json|model\.safetensors\.index\.json|chat_template\.jinja)$/,
      );
    expect(consoleErrors.filter((t) => !t.includes('status of 404'))).toEqual([]);
    expect(consoleErrors.length).toBe(notFound.length);
  }, 400_000);

  it('trains the connector in the page: the loss falls and the chart is drawn', async () => {
    await page.fill('#steps', String(STEPS));
    await page.click('#train');
    await page.waitForFunction(() => JSON.parse(document.body.dataset.losses ?? '[]').length >= 3, undefined, { timeout: 240_000 });
    await page.screenshot({ path: join(artifacts, '2-training.png'), fullPage: true });
    await waitForState('trained', 400_000);
    const losses = JSON.parse(await page.evaluate(() => document.body.dataset.losses ?? '[]')) as number[];
    await page.screenshot({ path: join(artifacts, '3-trained.png'), fullPage: true });
    expect(losses).toHaveLength(STEPS);
    for (const l of losses) expect(Number.isFinite(l)).toBe(true);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)));
    const points = await page.evaluate(() => document.querySelector('#chart polyline')?.getAttribute('points')?.trim().split(/\s+/).length ?? 0);
    expect(points).toBe(STEPS);
    // The trained model still answers.
    await page.click('#ask');
    await page.waitForFunction(() => document.getElementById('answer')?.dataset.done === 'true', undefined, { timeout: 240_000 });
    await writeFile(join(artifacts, 'losses.json'), `${JSON.stringify(losses)}\n`);
  }, 600_000);

  it('loads the same folder through the folder picker (<input webkitdirectory>)', async () => {
    const picker = await browser.newPage();
    try {
      await picker.goto(`${baseUrl}/`);
      await picker.setInputFiles('#folder', modelDir);
      await picker.waitForFunction(() => document.body.dataset.state === 'loaded' || document.body.dataset.state === 'error', undefined, {
        timeout: 240_000,
        polling: 200,
      });
      const status = await picker.evaluate(() => `${document.body.dataset.state}: ${document.getElementById('status')?.textContent}`);
      expect(status).toBe(
        `loaded: Loaded model (llava, vocabulary ${JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8')).text_config.vocab_size}).`,
      );
    } finally {
      await picker.close();
    }
  }, 300_000);

  it('the built bundle holds no Node-only module', async () => {
    const assets = join(site, 'assets');
    // The scanner itself: it flags each form of a Node-only import, and not onnxruntime-web's guarded one.
    expect(nodeOnlyImports('import{readFile as a}from"node:fs";import("sharp");const p=Xy(`onnxruntime-node`);import"path";')).toEqual([
      'node:fs',
      'path',
      'sharp',
      'Xy(`onnxruntime-node`)',
    ]);
    expect(
      nodeOnlyImports('let t=typeof navigator>"u"?Tn("node:os").cpus().length:navigator.hardwareConcurrency;const u=new URL("x",import.meta.url)'),
    ).toEqual([]);
    const js = (await readdir(assets)).filter((f) => f.endsWith('.js') || f.endsWith('.mjs'));
    expect(js.length).toBeGreaterThan(0);
    const found: string[] = [];
    for (const f of js) for (const hit of nodeOnlyImports(await readFile(join(assets, f), 'utf8'))) found.push(`${f}: ${hit}`);
    expect(found).toEqual([]);
  });

  it("examples/web's production dependency closure holds no package with a native binary (and the detector finds @vlit/runtime's dev ones)", async () => {
    const app = await dependencyClosure(join(appDir, 'package.json'), false);
    expect(app.names).toContain('@vlit/runtime');
    expect(app.names).toContain('onnxruntime-web');
    expect(app.names.filter((n) => n === 'onnxruntime-node' || n === 'sharp' || n.startsWith('@img/'))).toEqual([]);
    expect(app.native).toEqual([]);
    // The same walk over @vlit/runtime with its devDependencies (what this monorepo installs) finds them.
    const dev = await dependencyClosure(join(repo, 'packages/runtime/package.json'), true);
    expect(dev.native).toEqual(expect.arrayContaining(['onnxruntime-node', expect.stringMatching(/^@img\/sharp-/)]));
  });
});
