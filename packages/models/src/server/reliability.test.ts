/**
 * Issue 13, server items, each reproduced as the issue reports it: a FIFO or a huge file under the image
 * root (3), bodies and prompts that drove memory and blocked the loop (4), authentication switched off by
 * an unset variable (5), and their siblings (per-request deadline, client aborts, close() with requests in
 * flight, stalled bodies, the shared body budget).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVlitError, type GenerationOptions, type Tokenizer, type VisionLanguageModel, type VisionLanguageRequest } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import type { ComposedVisionLanguageModel } from '../compose/index.js';
import { SPECIALS, CORPUS, testComposedModel, testImage, testTokenizer } from '../compose/testing/fixtures.js';
import type { LlamaDecoder } from '../decoder/llama.js';
import { createOpenAIServer, startOpenAIServer, type OpenAIServer, type OpenAIServerOptions } from './index.js';
import { maxCharsPerToken, promptLimitsFor } from './prompt-limits.js';
import { chatBody, chunkedUpload, dataUrl, post, postHead, rawExchange, spawnServer, waitUntil } from './testing/harness.js';

const node = createNodeRuntime({ session: { intraOpThreads: 1 } });
const base = testTokenizer();
const TOKEN = 'sk-reliability-5d1e';
const auth = { authorization: `Bearer ${TOKEN}` };

/** Characters the model's tokenizer has been asked to encode (instrumentation around the real tokenizer). */
let encodedChars = 0;
const counting: Tokenizer = {
  get id() {
    return base.id;
  },
  vocabSize: base.vocabSize,
  specialTokens: base.specialTokens,
  encode: (text, options) => {
    encodedChars += text.length;
    return base.encode(text, options);
  },
  decode: (ids, options) => base.decode(ids, options),
  tokenToId: (t) => base.tokenToId(t),
  idToToken: (id) => base.idToToken(id),
};

let model: ComposedVisionLanguageModel;
let lm: LlamaDecoder;
let dir: string;
let root: string;
let png: Uint8Array;
const servers: OpenAIServer[] = [];

beforeAll(async () => {
  ({ model, languageModel: lm } = await testComposedModel(node, { tokenizer: counting, id: 'vlit-tiny' }));
  png = await node.images.encode(testImage(40, 32, 7), 'png');
  dir = mkdtempSync(join(tmpdir(), 'vlit-serve-rel-'));
  root = join(dir, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(root, 'ok.png'), png);
  execFileSync('mkfifo', [join(root, 'pipe.png')]);
  symlinkSync(join(root, 'pipe.png'), join(root, 'pipe-link.png'));
  symlinkSync('/dev/zero', join(root, 'zero.png'));
  // 800 MB, sparse: what the attacker left under the root.
  execFileSync('truncate', ['-s', '800M', join(root, 'huge.png')]);
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await lm.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function start(options: Partial<OpenAIServerOptions> = {}) {
  const s = await startOpenAIServer({ models: model, images: node.images, imageRoot: root, apiKey: TOKEN, ...options });
  servers.push(s);
  return s;
}

async function errorOf(res: Response): Promise<{ code: string; message: string; param: string | null; vlit_code?: string }> {
  return ((await res.json()) as { error: { code: string; message: string; param: string | null; vlit_code?: string } }).error;
}

/** A model that never answers and ignores its abort signal (a wedged backend). */
function stuckModel(id: string, entered: { count: number }): VisionLanguageModel {
  return {
    id,
    generate: (_request: VisionLanguageRequest, _options?: GenerationOptions) => {
      entered.count++;
      return new Promise(() => undefined);
    },
    score: () => new Promise(() => undefined),
  };
}

describe('item 3: non-regular and huge files under the image root', () => {
  it('refuses a FIFO (directly and through a symlink) at once, releases the slot, and keeps serving; more FIFO requests than libuv threads do not wedge it', async () => {
    const s = await start({ concurrency: 1, maxQueue: 16 });
    for (const name of ['pipe.png', 'pipe-link.png']) {
      const res = await post(s.url, chatBody(name), auth);
      expect(res.status, name).toBe(400);
      const e = await errorOf(res);
      expect(e.code).toBe('invalid_image_file');
      expect(e.param).toBe('messages[0].content[0].image_url');
      expect(e.message).not.toContain(root);
      expect(s.stats()).toMatchObject({ running: 0, waiting: 0 });
    }
    // The thread pool has 4 threads: a blocking read per FIFO would have taken them all.
    const many = await Promise.all(Array.from({ length: 8 }, () => post(s.url, chatBody('pipe.png'), auth)));
    expect(many.map((r) => r.status)).toEqual(Array(8).fill(400));
    await Promise.all(many.map((r) => r.text()));
    expect(s.stats()).toMatchObject({ running: 0, waiting: 0 });
    const ok = await post(s.url, chatBody('ok.png'), auth);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { object: string }).object).toBe('chat.completion');
  });

  it('refuses a symlink to /dev/zero (outside the root) and a directory', async () => {
    const s = await start();
    const zero = await post(s.url, chatBody('zero.png'), auth);
    expect(zero.status).toBe(403);
    expect((await errorOf(zero)).code).toBe('path_outside_root');
    const folder = await post(s.url, chatBody('sub'), auth);
    expect(folder.status).toBe(400);
    expect(['image_not_found', 'invalid_image_file']).toContain((await errorOf(folder)).code);
  });

  it('refuses an 800 MB file by its size without reading it, and honours a configured cap', async () => {
    const s = await start();
    const before = process.memoryUsage().rss;
    const res = await post(s.url, chatBody('huge.png'), auth);
    expect(res.status).toBe(400);
    const e = await errorOf(res);
    expect(e.code).toBe('image_too_large');
    expect(e.vlit_code).toBe('VLIT_LIMIT_EXCEEDED');
    expect(e.message).toContain(String(32 * 1024 * 1024));
    // Reading it would have added 800 MB.
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    const size = statSync(join(root, 'ok.png')).size;
    const capped = await start({ maxImageBytes: size - 1 });
    const refused = await post(capped.url, chatBody('ok.png'), auth);
    expect(refused.status).toBe(400);
    expect((await errorOf(refused)).code).toBe('image_too_large');
    const exact = await start({ maxImageBytes: size });
    expect((await post(exact.url, chatBody('ok.png'), auth)).status).toBe(200);
  });

  it('answers 504 when a request outlives its deadline, running or waiting, and the slot is released for the next request', async () => {
    const entered = { count: 0 };
    // Answers at once with no I/O, so it finishes within any deadline however busy the machine is.
    const instant: VisionLanguageModel = {
      id: 'instant',
      generate: async () => ({ text: 'ok', tokenIds: [1], finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 1 } }),
      score: async () => [],
    };
    const s = await start({ models: [stuckModel('stuck', entered), instant], concurrency: 1, maxQueue: 4, requestTimeoutMs: 300 });
    const text = (m: string): Record<string, unknown> => ({ model: m, messages: [{ role: 'user', content: 'hello' }], max_tokens: 2 });
    const running = post(s.url, text('stuck'), auth);
    await waitUntil(() => entered.count === 1);
    const waiting = post(s.url, text('stuck'), auth);
    const replies = await Promise.all([running, waiting]);
    expect(replies.map((r) => r.status)).toEqual([504, 504]);
    for (const r of replies) expect((await errorOf(r)).code).toBe('request_timeout');
    expect(s.stats()).toMatchObject({ running: 0, waiting: 0 });
    const next = await post(s.url, text('instant'), auth);
    expect(next.status).toBe(200);
    expect(((await next.json()) as { choices: Array<{ message: { content: string } }> }).choices[0].message.content).toBe('ok');
  });

  it('releases the slot when the client aborts while its request runs or waits', async () => {
    const entered = { count: 0 };
    const s = await start({ models: [stuckModel('stuck', entered), model], concurrency: 1, maxQueue: 4 });
    const running = new AbortController();
    const waiting = new AbortController();
    const a = post(s.url, chatBody(dataUrl(png), { model: 'stuck' }), auth, running.signal).catch((e: unknown) => e);
    await waitUntil(() => entered.count === 1);
    const b = post(s.url, chatBody(dataUrl(png), { model: 'stuck' }), auth, waiting.signal).catch((e: unknown) => e);
    expect(await waitUntil(() => s.stats().waiting === 1)).toBe(true);
    waiting.abort();
    running.abort();
    await Promise.all([a, b]);
    expect(await waitUntil(() => s.stats().running === 0 && s.stats().waiting === 0)).toBe(true);
    expect((await post(s.url, chatBody(dataUrl(png)), auth)).status).toBe(200);
  });

  it('close() ends with a wedged request and a stalled upload in flight: the request gets 503, the sockets are closed', async () => {
    const entered = { count: 0 };
    const s = await start({ models: stuckModel('stuck', entered), closeGraceMs: 200 });
    const wedged = post(s.url, chatBody(dataUrl(png), { model: 'stuck' }), auth);
    await waitUntil(() => entered.count === 1);
    const stalled = rawExchange(s.url, postHead(s.url, { ...auth, 'content-length': '5000' }), ['{"messages": ['], { stall: true });
    await new Promise((r) => setTimeout(r, 50));
    await s.close();
    const res = await wedged;
    expect(res.status).toBe(503);
    expect((await errorOf(res)).code).toBe('server_shutting_down');
    const outcome = await stalled;
    expect(outcome.status === 503 || outcome.ended !== undefined).toBe(true);
    expect(s.server.listening).toBe(false);
  });

  it('a server process with a FIFO request, a wedged generation and a stalled upload in flight exits on SIGTERM', async () => {
    const proc = await spawnServer(root, TOKEN, { closeGraceMs: 500, maxQueue: 4 });
    try {
      const fifo = await post(proc.url, chatBody('pipe.png'), auth);
      expect(fifo.status).toBe(400);
      expect((await errorOf(fifo)).code).toBe('invalid_image_file');
      expect(await proc.command('stats')).toMatchObject({ stats: { running: 0, waiting: 0 } });
      // The gated model of serve-child ignores its abort signal: this request never finishes by itself.
      const wedged = post(proc.url, chatBody(dataUrl(png)), auth).then(
        (r) => r.status,
        () => 'reset',
      );
      for (let i = 0; i < 500 && ((await proc.command('stats')) as { stats: { running: number } }).stats.running < 1; i++)
        await new Promise((r) => setTimeout(r, 10));
      const stalled = rawExchange(proc.url, postHead(proc.url, { ...auth, 'content-length': '5000' }), ['{"mess'], { stall: true });
      const code = await proc.stop();
      expect(code).toBe(0);
      expect([503, 'reset']).toContain(await wedged);
      await stalled;
    } finally {
      await proc.stop(1000);
    }
  });
});

describe('item 4: bodies and prompts cannot take the memory or the event loop', () => {
  it('refuses a declared Content-Length over the limit before reading, and an undeclared (chunked) body by its running length', async () => {
    const s = await start({ maxBodyBytes: 1024 * 1024 });
    const declared = await rawExchange(s.url, postHead(s.url, { ...auth, 'content-length': String(19 * 1024 * 1024) }), ['{"messages": ['], { stall: true });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body!).error.code).toBe('request_too_large');
    const chunked = await chunkedUpload(s.url, 64 * 1024 * 1024, auth);
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body!).error.code).toBe('request_too_large');
    expect((await post(s.url, chatBody(dataUrl(png)), auth)).status).toBe(200);
  });

  it('cuts off a body that stalls (slowloris) with 408, and one stall does not block other requests', async () => {
    const s = await start({ bodyTimeoutMs: 500 });
    const stalled = rawExchange(s.url, postHead(s.url, { ...auth, 'content-length': '100000' }), ['{"messages": [{"role": "user", '], { stall: true });
    const headersOnly = rawExchange(s.url, postHead(s.url, { ...auth, 'transfer-encoding': 'chunked' }), [], { stall: true });
    expect((await post(s.url, chatBody(dataUrl(png)), auth)).status).toBe(200);
    for (const outcome of [await stalled, await headersOnly]) {
      expect(outcome.status).toBe(408);
      expect(JSON.parse(outcome.body!).error.code).toBe('body_timeout');
    }
  });

  it('holds at most maxBufferedBytes of bodies at once (503 beyond), counting bytes received, not bytes declared', async () => {
    // The holders must still hold their bytes when the third body arrives: a deadline far longer than the
    // pause below keeps that true on a busy machine (the pause only lets their bytes be read).
    const s = await start({ maxBodyBytes: 128 * 1024, maxBufferedBytes: 256 * 1024, bodyTimeoutMs: 6000 });
    const piece = Buffer.alloc(100 * 1024, 0x20);
    // Two uploads of 100 KiB each stall holding 200 KiB; a declared-but-unsent 120 KiB holds nothing.
    const holders = [0, 1].map(() => rawExchange(s.url, postHead(s.url, { ...auth, 'content-length': String(120 * 1024) }), [piece], { stall: true }));
    const announcer = rawExchange(s.url, postHead(s.url, { ...auth, 'content-length': String(120 * 1024) }), [], { stall: true });
    await new Promise((r) => setTimeout(r, 500));
    // A third 100 KiB body would exceed 256 KiB.
    const third = await rawExchange(s.url, postHead(s.url, { ...auth, 'content-length': String(120 * 1024) }), [piece], { stall: true });
    expect(third.status).toBe(503);
    expect(JSON.parse(third.body!).error.code).toBe('server_busy');
    // Small requests still fit beside them.
    expect((await post(s.url, chatBody(dataUrl(png)), auth)).status).toBe(200);
    for (const o of [...(await Promise.all(holders)), await announcer]) expect(o.status).toBe(408);
    // All of it was given back: two 100 KiB bodies are read again.
    const again = await Promise.all([0, 1].map(() => post(s.url, `{"x": "${' '.repeat(100 * 1024)}"}`, auth)));
    expect(again.map((r) => r.status)).toEqual([400, 400]);
  });

  it('refuses a 19 MiB prompt by its length without tokenising it', async () => {
    const s = await start({ maxPromptTokens: 512 });
    // Hand-worked bound: 512 tokens × 16 characters ('<|vision_start|>', the longest vocabulary entry).
    expect(promptLimitsFor(model, { maxPromptTokens: 512 }).maxChars).toBe(512 * 16);
    const prompt = 'hello '.repeat(Math.ceil((19 * 1024 * 1024) / 6));
    encodedChars = 0;
    const res = await post(s.url, chatBody(dataUrl(png), {}, prompt), auth);
    expect(res.status).toBe(400);
    const e = await errorOf(res);
    expect(e.code).toBe('context_length_exceeded');
    expect(e.param).toBe('messages');
    expect(encodedChars).toBe(0);
    // A prompt that fits still works, and its tokens were counted.
    encodedChars = 0;
    expect((await post(s.url, chatBody(dataUrl(png)), auth)).status).toBe(200);
    expect(encodedChars).toBeGreaterThan(0);
  });

  it('stops counting tokens as soon as the context is exceeded', async () => {
    // No character bound: only the token count stands between the prompt and the model.
    const s = await start({ maxPromptTokens: 512, maxPromptChars: 64 * 1024 * 1024 });
    const prompt = 'hello '.repeat(Math.ceil((19 * 1024 * 1024) / 6));
    encodedChars = 0;
    const res = await post(s.url, chatBody(dataUrl(png), {}, prompt), auth);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('context_length_exceeded');
    // 'hello ' is one token per 6 characters, so 513 tokens are seen within the first piece (at most 8192 characters).
    expect(encodedChars).toBeGreaterThan(512 * 6);
    expect(encodedChars).toBeLessThanOrEqual(8192);
    // Just under the context: 500 words counted in full, then the model's own check and generation.
    encodedChars = 0;
    const fits = await post(s.url, chatBody(dataUrl(png), {}, 'hello '.repeat(400)), auth);
    expect(fits.status, await fits.clone().text()).toBe(200);
  });

  it('derives the character bound from the context and the longest token, and falls back to 1 Mi characters', () => {
    const longest = Math.max(...[...SPECIALS, '<unk>', ...CORPUS.join(' ').split(/\s+/)].map((w) => w.length));
    expect(maxCharsPerToken(base)).toBe(longest);
    const exposing = {
      id: 'x',
      generate: model.generate,
      score: model.score,
      tokenizer: base,
      languageModel: { maxContext: 64 },
    } as unknown as VisionLanguageModel;
    expect(promptLimitsFor(exposing, {})).toMatchObject({ maxChars: 64 * longest, maxTokens: 64 });
    const remote = { id: 'remote', generate: model.generate, score: model.score } as VisionLanguageModel;
    expect(promptLimitsFor(remote, {})).toEqual({ maxChars: 1 << 20 });
    expect(promptLimitsFor(remote, { maxPromptChars: 10 })).toEqual({ maxChars: 10 });
  });
});

describe('item 5: authentication never switches off silently', () => {
  it('refuses to start without a key, with an unset variable, or with an empty or blank key', () => {
    const unset = process.env.VLIT_TEST_SURELY_UNSET_KEY;
    expect(unset).toBeUndefined();
    for (const apiKey of [undefined, unset, '', '   ']) {
      let caught: unknown;
      try {
        createOpenAIServer({ models: model, images: node.images, ...(apiKey === undefined ? {} : { apiKey }) });
      } catch (err) {
        caught = err;
      }
      expect(isVlitError(caught), String(apiKey)).toBe(true);
      expect((caught as { code: string }).code).toBe('VLIT_INVALID_ARGUMENT');
      expect((caught as { details: { field: string } }).details.field).toBe('apiKey');
    }
    // allowUnauthenticated does not make an empty key acceptable either.
    expect(() => createOpenAIServer({ models: model, images: node.images, apiKey: '', allowUnauthenticated: true })).toThrow(/empty/);
  });

  it('serves without a token only when told to, and a given key is enforced even then', async () => {
    const open = await start({ apiKey: undefined, allowUnauthenticated: true });
    expect((await post(open.url, chatBody(dataUrl(png)))).status).toBe(200);
    const keyed = await start({ allowUnauthenticated: true });
    expect((await post(keyed.url, chatBody(dataUrl(png)))).status).toBe(401);
    expect((await post(keyed.url, chatBody(dataUrl(png)), auth)).status).toBe(200);
  });

  it('a server process started as documented with VLIT_API_KEY unset exits with the typed error instead of serving', async () => {
    // serve-child passes `apiKey: undefined` for an empty argument, as `process.env.VLIT_API_KEY` gives when unset.
    await expect(spawnServer(root, '')).rejects.toThrow(/VLIT_INVALID_ARGUMENT[\s\S]*apiKey/);
  });
});
