/**
 * Node-only test helpers: the native + web runtime pair every cross-runtime test starts from, and a
 * PNG writer taken from the PNG specification (independent of sharp and of the browser codecs), and
 * the one fake OpenAI-compatible chat-completions server (`startFakeOpenAIServer`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname as dirnamePath, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import type { VlitRuntime } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createWebRuntime } from '@vlit/runtime/web';

export * from './openai-server.js';

/** The two runtimes of a pair. */
export type RuntimePlatform = 'node' | 'web';

/** Both runtimes' names, in the order tests iterate them. */
export const RUNTIME_PLATFORMS: readonly RuntimePlatform[] = ['node', 'web'];

/** onnxruntime-node and onnxruntime-web, each on one thread so both run the same single-threaded kernels. */
export function createRuntimePair(): Record<RuntimePlatform, VlitRuntime> {
  return {
    node: createNodeRuntime({ session: { intraOpThreads: 1 } }),
    web: createWebRuntime({ wasm: { numThreads: 1 } }),
  };
}

/**
 * An 8-bit PNG written byte by byte from the specification: signature, IHDR, one zlib IDAT with
 * filter type 0 (None) on every scanline, IEND. channels 3 is truecolour, 4 truecolour with alpha;
 * `pixel(x, y)` gives that many samples.
 */
export function writePng(width: number, height: number, channels: 3 | 4, pixel: (x: number, y: number) => ArrayLike<number>): Uint8Array {
  const chunk = (type: string, body: Buffer): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])) >>> 0, 0);
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 4 ? 6 : 2; // colour type: truecolour (with alpha)
  // bytes 10..12: compression 0 (deflate), filter method 0, no interlace
  const stride = 1 + width * channels;
  const raw = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    raw[y * stride] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const px = pixel(x, y);
      for (let c = 0; c < channels; c++) raw[y * stride + 1 + x * channels + c] = px[c];
    }
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const png = Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/**
 * The Python that holds the reference implementations (torch, transformers, peft): `VLIT_PYTHON` when
 * set, else the repository's `.venv` that `.ci/run` (and `npm run setup:python`) builds from the local
 * wheel index. Throws with the command to run when neither exists, so a missing venv is a loud failure.
 */
export function referencePython(): string {
  const fromEnv = process.env.VLIT_PYTHON;
  if (fromEnv) return fromEnv;
  // dist/node.js sits in packages/test-kit/dist; the repository root is three levels up.
  const root = resolvePath(dirnamePath(fileURLToPath(import.meta.url)), '..', '..', '..');
  const venv = resolvePath(root, '.venv', 'bin', 'python');
  if (!existsSync(venv)) {
    throw new Error(`reference Python not found at ${venv}: run \`bash scripts/setup-python.sh\` (CI does) or set VLIT_PYTHON`);
  }
  return venv;
}

/**
 * Run a Python script with the reference Python and return its stdout. Generous default timeout (10
 * minutes) because torch's import alone can take seconds on a busy machine; stderr is included in the
 * error when the script fails.
 */
export function runReferencePython(script: string, args: readonly string[] = [], options: { timeoutMs?: number; env?: Record<string, string> } = {}): string {
  const result = spawnSync(referencePython(), [script, ...args], {
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 600_000,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1', ...options.env },
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${script} exited ${result.status ?? result.signal}:\n${result.stderr}`);
  }
  return result.stdout;
}

/** Debian's Chromium, which the browser tests drive through playwright-core (see ENVIRONMENT.md). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags of headless Chromium in the browser tests: no sandbox (containers), no GPU, no network of its own. */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
