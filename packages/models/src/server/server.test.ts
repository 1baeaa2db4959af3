import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage, GenerationOptions, VisionLanguageModel, VisionLanguageRequest } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import type { ComposedVisionLanguageModel } from '../compose/index.js';
import { testComposedModel, testImage } from '../compose/testing/fixtures.js';
import type { LlamaDecoder } from '../decoder/llama.js';
import { startOpenAIServer, type OpenAIServer, type ServerLogEntry } from './index.js';
import { chatBody as harnessChatBody, dataUrl, post } from './testing/harness.js';

// biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field against the OpenAI format
type Reply = Record<string, any>;

const node = createNodeRuntime({ session: { intraOpThreads: 1 } });
const TOKEN = 'sk-test-7f3a9c-never-logged';

let model: ComposedVisionLanguageModel;
let lm: LlamaDecoder;
let dir: string;
let pngA: Uint8Array;
let pngB: Uint8Array;
const servers: OpenAIServer[] = [];
const imageA = testImage(40, 32, 7);
const imageB = testImage(40, 32, 99);

beforeAll(async () => {
  ({ model, languageModel: lm } = await testComposedModel(node, { id: 'vlit-tiny' }));
  pngA = await node.images.encode(imageA, 'png');
  pngB = await node.images.encode(imageB, 'png');
  dir = mkdtempSync(join(tmpdir(), 'vlit-serve-'));
  mkdirSync(join(dir, 'root', 'sub'), { recursive: true });
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(dir, 'root', 'sub', 'b.png'), pngB);
  writeFileSync(join(dir, 'outside', 'secret.png'), pngA);
  symlinkSync(join(dir, 'outside', 'secret.png'), join(dir, 'root', 'link.png'));
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await lm.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function start(options: Partial<Parameters<typeof startOpenAIServer>[0]> = {}) {
  const s = await startOpenAIServer({ models: model, images: node.images, imageRoot: join(dir, 'root'), allowUnauthenticated: true, ...options });
  servers.push(s);
  return s;
}

/** The requests of this file ask for 6 new tokens. */
const chatBody = (url: string, extra: Record<string, unknown> = {}, text?: string): Record<string, unknown> =>
  harnessChatBody(url, { max_tokens: 6, ...extra }, text);

/** Parse an SSE body into its `data:` payloads. */
function sse(text: string): string[] {
  expect(text.endsWith('\n\n')).toBe(true);
  return text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => {
      expect(e.startsWith('data: ')).toBe(true);
      return e.slice('data: '.length);
    });
}

function expectOpenAiError(body: unknown, code: string, type?: string): void {
  const e = (body as { error: Record<string, unknown> }).error;
  expect(typeof e.message).toBe('string');
  expect(e.code).toBe(code);
  expect('param' in e).toBe(true);
  if (type) expect(e.type).toBe(type);
}

const messagesFor = (text = 'What is in the picture?'): ChatMessage[] => [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text }] }];

describe('OpenAI-compatible server', () => {
  it('binds 127.0.0.1 by default and lists the model', async () => {
    const s = await start();
    expect(s.host).toBe('127.0.0.1');
    const res = await fetch(`${s.url}/v1/models`);
    expect(res.status).toBe(200);
    const list = (await res.json()) as { object: string; data: Array<{ id: string; object: string; owned_by: string; created: number }> };
    expect(list.object).toBe('list');
    expect(list.data).toEqual([{ id: 'vlit-tiny', object: 'model', created: expect.any(Number), owned_by: 'vlit' }]);
  });

  it('answers concurrent streaming and non-streaming requests with images in the OpenAI format', async () => {
    const s = await start({ concurrency: 1, maxQueue: 16 });
    // Expected replies come from the model called directly (greedy, so deterministic).
    const direct = {
      a: await model.generate({ messages: messagesFor(), images: [imageA] }, { maxNewTokens: 6 }),
      b: await model.generate({ messages: messagesFor('Describe the image.'), images: [imageB] }, { maxNewTokens: 6 }),
    };
    const fileUrl = pathToFileURL(join(dir, 'root', 'sub', 'b.png')).href;
    const jobs = [
      post(s.url, chatBody(dataUrl(pngA))),
      post(s.url, chatBody('sub/b.png', {}, 'Describe the image.')),
      post(s.url, chatBody(dataUrl(pngA), { stream: true })),
      post(s.url, chatBody(fileUrl, { stream: true, stream_options: { include_usage: true } }, 'Describe the image.')),
      post(s.url, chatBody(join(dir, 'root', 'sub', 'b.png'), {}, 'Describe the image.')),
      post(s.url, chatBody(dataUrl(pngA), { stream: true })),
    ];
    const replies = await Promise.all(jobs);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const expectedFor = [direct.a, direct.b, direct.a, direct.b, direct.b, direct.a];
    // Text tokens of the prompt (16 for "What is in the picture?", 14 for "Describe the image.", counted by hand) + 16 visual tokens.
    const promptFor = [32, 30, 32, 30, 30, 32];

    for (const i of [0, 1, 4]) {
      expect(replies[i].headers.get('content-type')).toContain('application/json');
      const body = (await replies[i].json()) as Reply;
      expect(body.object).toBe('chat.completion');
      expect(body.id).toMatch(/^chatcmpl-/);
      expect(body.model).toBe('vlit-tiny');
      expect(Number.isInteger(body.created)).toBe(true);
      expect(body.choices).toHaveLength(1);
      expect(body.choices[0].index).toBe(0);
      expect(body.choices[0].message).toEqual({ role: 'assistant', content: expectedFor[i].text });
      expect(body.choices[0].finish_reason).toBe(expectedFor[i].finishReason);
      const completion = expectedFor[i].usage.completionTokens;
      expect(body.usage).toEqual({ prompt_tokens: promptFor[i], completion_tokens: completion, total_tokens: promptFor[i] + completion });
    }

    for (const i of [2, 3, 5]) {
      expect(replies[i].headers.get('content-type')).toContain('text/event-stream');
      const events = sse(await replies[i].text());
      expect(events[events.length - 1]).toBe('[DONE]');
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Reply);
      const id = chunks[0].id;
      for (const c of chunks) {
        expect(c.object).toBe('chat.completion.chunk');
        expect(c.id).toBe(id);
        expect(c.model).toBe('vlit-tiny');
      }
      expect(chunks[0].choices[0].delta.role).toBe('assistant');
      const withChoices = chunks.filter((c) => c.choices.length > 0);
      const content = withChoices.map((c) => c.choices[0].delta.content ?? '').join('');
      expect(content).toBe(expectedFor[i].text);
      const finishes = withChoices.filter((c) => c.choices[0].finish_reason !== null);
      expect(finishes).toHaveLength(1);
      expect(finishes[0].choices[0].finish_reason).toBe(expectedFor[i].finishReason);
      expect(withChoices[withChoices.length - 1]).toBe(finishes[0]);
      if (i === 3) {
        const usage = chunks[chunks.length - 1];
        expect(usage.choices).toEqual([]);
        const completion = expectedFor[i].usage.completionTokens;
        expect(usage.usage).toEqual({ prompt_tokens: promptFor[i], completion_tokens: completion, total_tokens: promptFor[i] + completion });
      }
    }
  });

  it('refuses without the bearer token (401) and never logs it', async () => {
    const logs: ServerLogEntry[] = [];
    const s = await start({ apiKey: TOKEN, onLog: (e) => logs.push(e) });
    const none = await post(s.url, chatBody(dataUrl(pngA)));
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expectOpenAiError(await none.json(), 'invalid_api_key', 'authentication_error');
    const wrong = await post(s.url, chatBody(dataUrl(pngA)), { authorization: 'Bearer sk-wrong' });
    expect(wrong.status).toBe(401);
    expect((await fetch(`${s.url}/v1/models`)).status).toBe(401);
    const ok = await post(s.url, chatBody(dataUrl(pngA)), { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect((await fetch(`${s.url}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect(logs.map((l) => l.status)).toEqual([401, 401, 401, 200, 200]);
    expect(JSON.stringify(logs)).not.toContain(TOKEN);
    expect(JSON.stringify(logs)).not.toContain('sk-wrong');
  });

  it('answers 413 for an oversized body', async () => {
    const s = await start({ maxBodyBytes: 64 * 1024 });
    const big = chatBody(dataUrl(new Uint8Array(200 * 1024).fill(7)));
    const res = await post(s.url, big);
    expect(res.status).toBe(413);
    expectOpenAiError(await res.json(), 'request_too_large');
    // A declared length far over the limit is refused before the body is read.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${s.url}/v1/chat/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(1 << 30) } },
        (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on('error', reject);
      req.write('{"messages": [');
    });
    expect(status).toBe(413);
    expect((await post(s.url, chatBody(dataUrl(pngA)))).status).toBe(200);
  });

  it('answers 429 when the queue is full, and serves the queued requests once it drains', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let entered = 0;
    const gated: VisionLanguageModel = {
      id: 'vlit-tiny',
      async generate(request: VisionLanguageRequest, options?: GenerationOptions) {
        entered++;
        await gate;
        return model.generate(request, options);
      },
      score: (request, candidates) => model.score(request, candidates),
    };
    const s = await start({ models: gated, concurrency: 1, maxQueue: 2 });
    const first = post(s.url, chatBody(dataUrl(pngA)));
    await waitFor(() => entered === 1);
    const queued = [post(s.url, chatBody(dataUrl(pngA))), post(s.url, chatBody(dataUrl(pngA), { stream: true }))];
    await waitFor(() => s.stats().waiting === 2);
    const refused = await post(s.url, chatBody(dataUrl(pngA)));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = await refused.json();
    expectOpenAiError(body, 'queue_full', 'rate_limit_error');
    expect((body as { error: { message: string } }).error.message).toContain('busy');
    const refusedStream = await post(s.url, chatBody(dataUrl(pngA), { stream: true }));
    expect(refusedStream.status).toBe(429);
    open();
    const done = await Promise.all([first, ...queued]);
    expect(done.map((r) => r.status)).toEqual([200, 200, 200]);
    await Promise.all(done.map((r) => r.text()));
    expect(s.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it('refuses image paths outside the allowed root (.., absolute, symlink out) and file paths when no root is set', async () => {
    const s = await start();
    for (const url of [
      '../outside/secret.png',
      join(dir, 'outside', 'secret.png'),
      pathToFileURL(join(dir, 'outside', 'secret.png')).href,
      'link.png',
      'sub/../../outside/secret.png',
    ]) {
      const res = await post(s.url, chatBody(url));
      expect(res.status, url).toBe(403);
      const body = (await res.json()) as { error: { code: string; param: string; message: string } };
      expectOpenAiError(body, 'path_outside_root', 'permission_error');
      expect(body.error.param).toBe('messages[0].content[0].image_url');
      // The reply names neither the root nor the file's real location.
      expect(body.error.message).not.toContain(dir);
    }
    const missing = await post(s.url, chatBody('sub/none.png'));
    expect(missing.status).toBe(400);
    expectOpenAiError(await missing.json(), 'image_not_found');
    const noRoot = await start({ imageRoot: undefined });
    const res = await post(noRoot.url, chatBody('sub/b.png'));
    expect(res.status).toBe(403);
    expectOpenAiError(await res.json(), 'file_images_disabled');
  });

  it('answers bad requests with typed OpenAI errors and keeps serving', async () => {
    const logs: ServerLogEntry[] = [];
    const s = await start({ onLog: (e) => logs.push(e) });
    const cases: Array<[string | Record<string, unknown>, number, string]> = [
      ['{"messages": [', 400, 'invalid_json'],
      [{ messages: [] }, 400, 'invalid_request'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 400, 'invalid_request'],
      [chatBody(dataUrl(pngA), { model: 'gpt-4o' }), 404, 'model_not_found'],
      [chatBody(dataUrl(pngA), { n: 2 }), 400, 'unsupported'],
      [chatBody('https://example.com/cat.png'), 400, 'unsupported_image_url'],
      [chatBody('data:image/png;base64,AAAA'), 400, 'invalid_image'],
      [chatBody('data:text/plain;base64,AAAA'), 400, 'invalid_image_url'],
      [chatBody(dataUrl(pngA), {}, 'What <|image_pad|> is it?'), 400, 'invalid_format'],
      [chatBody(dataUrl(pngA), { max_tokens: 100000 }), 400, 'invalid_argument'],
    ];
    for (const [body, status, code] of cases) {
      const res = await post(s.url, body);
      expect(res.status, code).toBe(status);
      expectOpenAiError(await res.json(), code);
    }
    const get = await fetch(`${s.url}/v1/chat/completions`);
    expect(get.status).toBe(405);
    expectOpenAiError(await get.json(), 'method_not_allowed');
    const nowhere = await fetch(`${s.url}/v2/else`);
    expect(nowhere.status).toBe(404);
    expectOpenAiError(await nowhere.json(), 'not_found');
    // A client that hangs up mid-stream or mid-body does not disturb the server.
    const streaming = await post(s.url, chatBody(dataUrl(pngA), { stream: true, max_tokens: 50 }));
    await streaming.body?.cancel();
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.write('{"mess', () => {
        req.destroy();
        resolve();
      });
    });
    const after = await post(s.url, chatBody(dataUrl(pngA)));
    expect(after.status).toBe(200);
    expect(logs.every((l) => l.path.startsWith('/v'))).toBe(true);
  });
});

describe('a server process (as `vlit serve` runs it)', () => {
  it('survives concurrent image requests, 401, 413, 429, paths outside the root and hang-ups, and keeps serving', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./testing/serve-child.mjs', import.meta.url)), join(dir, 'root'), TOKEN], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor(() => stdout.includes('\n') || child.exitCode !== null, 60_000);
      expect(child.exitCode, stderr).toBeNull();
      const { url, host } = JSON.parse(stdout.split('\n')[0]) as { url: string; host: string };
      expect(host).toBe('127.0.0.1');
      const auth = { authorization: `Bearer ${TOKEN}` };

      expect((await post(url, chatBody(dataUrl(pngA)))).status).toBe(401);
      expect((await post(url, chatBody(dataUrl(new Uint8Array(300 * 1024))), auth)).status).toBe(413);
      expect((await post(url, chatBody('../outside/secret.png'), auth)).status).toBe(403);
      expect((await post(url, chatBody('link.png'), auth)).status).toBe(403);
      expect((await post(url, '{"messages": [', auth)).status).toBe(400);

      // One request generates (held at the gate), one waits, the rest are refused at once.
      const load = async (): Promise<{ running: number; waiting: number }> => {
        const before = stdout.length;
        child.stdin.write('stats\n');
        await waitFor(() => stdout.slice(before).includes('\n'));
        return (JSON.parse(stdout.slice(before).split('\n')[0]) as { stats: { running: number; waiting: number } }).stats;
      };
      const running = post(url, chatBody(dataUrl(pngA)), auth);
      for (let i = 0; i < 500 && (await load()).running < 1; i++) await new Promise((r) => setTimeout(r, 10));
      const waiting = post(url, chatBody('sub/b.png', { stream: true }), auth);
      for (let i = 0; i < 500 && (await load()).waiting < 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await load()).toMatchObject({ running: 1, waiting: 1 });
      const refused = await Promise.all([post(url, chatBody(dataUrl(pngA)), auth), post(url, chatBody(dataUrl(pngA), { stream: true }), auth)]);
      expect(refused.map((r) => r.status)).toEqual([429, 429]);
      child.stdin.write('release\n');
      const [a, b] = await Promise.all([running, waiting]);
      expect(a.status).toBe(200);
      expect(((await a.json()) as { object: string }).object).toBe('chat.completion');
      expect(b.status).toBe(200);
      const events = sse(await b.text());
      expect(events[events.length - 1]).toBe('[DONE]');

      // Concurrent streaming and non-streaming requests with images, then a hang-up mid-body.
      const mixed = await Promise.all([post(url, chatBody(dataUrl(pngB)), auth), post(url, chatBody(dataUrl(pngA), { stream: true }), auth)]);
      expect(mixed.map((r) => r.status)).toEqual([200, 200]);
      await Promise.all(mixed.map((r) => r.text()));
      await new Promise<void>((resolve) => {
        const req = httpRequest(`${url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-length': '5000' } });
        req.on('error', () => resolve());
        req.write('{"messages": [', () => {
          req.destroy();
          resolve();
        });
      });

      expect(child.exitCode).toBeNull();
      const models = await fetch(`${url}/v1/models`, { headers: auth });
      expect(models.status).toBe(200);
      const final = await post(url, chatBody(dataUrl(pngA)), auth);
      expect(final.status).toBe(200);
      const logged = stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as ServerLogEntry);
      expect(logged.map((l) => l.status)).toEqual(expect.arrayContaining([401, 413, 403, 400, 429, 200]));
      expect(stdout + stderr).not.toContain(TOKEN);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  for (let i = 0; i < timeoutMs / 10 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}
