/**
 * Server soak (issue 13, second Must-show): a real server process on loopback takes rounds of hostile
 * requests (oversized bodies with and without a declared length, stalled bodies, malformed and deeply
 * nested JSON, 19 MiB prompts, path escapes, a FIFO and an 800 MB file as images, bad tokens, hang-ups)
 * and the burst of 24 parallel 19 MiB bodies, while ordinary requests run beside them; every
 * ordinary request must succeed. Memory is read from /proc: the peak (VmHWM, and VmRSS sampled every
 * 50 ms) must stay under the baseline + 512 MB and the resident size must come back within the
 * baseline + 96 MB after a forced GC (the issue measured +2.1 GB peak and +1 GB held).
 * Bounded in count (ROUNDS) and not in time: nothing here asserts how long anything took.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '@vlit/runtime/node';
import { testImage } from '../compose/testing/fixtures.js';
import {
  chatBody,
  chunkedUpload,
  dataUrl,
  post,
  postHead,
  processMemory,
  rawExchange,
  spawnServer,
  type RawOutcome,
  type ServerProcess,
} from './testing/harness.js';

const TOKEN = 'sk-soak-0b7c41';
const auth = { authorization: `Bearer ${TOKEN}` };
const MB = 1024 * 1024;
/**
 * The stated bounds (also in docs/models.md): the peak may hold the 48 MiB body budget up to about ten
 * times over (raw bytes, decoded text, parsed strings, and garbage V8 has not collected yet: the collector
 * runs late, more so on a busy machine); after a forced GC the process is within 96 MB of where it
 * started. Measured: peak +149..156 MB on the dev box, +247 MB in a fresh-clone CI run, +308 MB with two
 * CI runs on 2 cores (before refused bodies stopped being drained); settled +24..64 MB.
 */
const PEAK_OVER_BASELINE = 512 * MB;
const SETTLED_OVER_BASELINE = 96 * MB;
const ROUNDS = 6;
const BURST = 24;

let dir: string;
let root: string;
let png: Uint8Array;
let server: ServerProcess | undefined;

beforeAll(async () => {
  const node = createNodeRuntime();
  png = await node.images.encode(testImage(40, 32, 11), 'png');
  dir = mkdtempSync(join(tmpdir(), 'vlit-soak-'));
  root = join(dir, 'root');
  mkdirSync(root, { recursive: true });
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(root, 'ok.png'), png);
  writeFileSync(join(dir, 'outside', 'secret.png'), png);
  symlinkSync(join(dir, 'outside', 'secret.png'), join(root, 'link.png'));
  execFileSync('mkfifo', [join(root, 'pipe.png')]);
  execFileSync('truncate', ['-s', '800M', join(root, 'huge.png')]);
});

afterAll(async () => {
  await server?.stop(5_000);
  rmSync(dir, { recursive: true, force: true });
});

/** A valid request whose prompt is `bytes` long (the 19 MiB body). */
function hugePrompt(bytes: number): string {
  return JSON.stringify({ model: 'vlit-tiny', messages: [{ role: 'user', content: 'hello '.repeat(Math.ceil(bytes / 6)) }], max_tokens: 4 });
}

/** Nested arrays `depth` deep where the messages should be. */
function deepJson(depth: number): string {
  return `{"messages": ${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

async function outcome(p: Promise<Response>): Promise<RawOutcome> {
  try {
    const res = await p;
    return { status: res.status, body: await res.text() };
  } catch {
    return { ended: 'reset' };
  }
}

function codeOf(o: RawOutcome): string | undefined {
  try {
    return (JSON.parse(o.body ?? '') as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

describe('server soak on loopback', () => {
  it('keeps serving every ordinary request through rounds of hostile ones, with peak and settled RSS within the stated bounds', {
    timeout: 600_000,
  }, async ({ annotate }) => {
    server = await spawnServer(
      root,
      TOKEN,
      // The library defaults (20 MiB bodies, 48 MiB body budget, 32 MiB image files), a queue deep enough
      // for the ordinary requests, the tiny decoder's context, and a short body deadline so stalls end soon.
      { gated: false, concurrency: 1, maxQueue: 64, maxBodyBytes: 20 * MB, bodyTimeoutMs: 5_000, maxPromptTokens: 512 },
      ['--expose-gc'],
      // glibc otherwise raises its mmap and trim thresholds after the first large free and keeps freed
      // request buffers in the process (measured without it: settled +93..119 MB); see docs/models.md.
      { MALLOC_MMAP_THRESHOLD_: '131072' },
    );
    const url = server.url;
    const normal = (): Array<Promise<RawOutcome>> => [
      outcome(post(url, chatBody(dataUrl(png)), auth)),
      outcome(post(url, chatBody('ok.png', { stream: true }), auth)),
      outcome(post(url, chatBody(dataUrl(png), { stream: true, stream_options: { include_usage: true } }), auth)),
      outcome(post(url, { messages: [{ role: 'user', content: 'Describe the image .' }], max_tokens: 3 }, auth)),
    ];
    // Warm up (sessions, allocator, JIT), then take the baseline after a full collection.
    for (const o of await Promise.all(normal())) expect(o.status).toBe(200);
    expect(await server.command('gc')).toEqual({ gc: true });
    await new Promise((r) => setTimeout(r, 500));
    const baseline = processMemory(server.pid).rss;

    const ordinary: RawOutcome[] = [];
    const hostile: Array<{ kind: string; outcome: RawOutcome }> = [];
    let sampledPeak = baseline;
    const sampler = setInterval(() => {
      try {
        sampledPeak = Math.max(sampledPeak, processMemory(server!.pid).rss);
      } catch {
        // The process is gone; the assertions below say so.
      }
    }, 50);
    const big = hugePrompt(19 * MB);
    const bigBuffer = Buffer.from(big);
    const pieces = (b: Buffer): Buffer[] => Array.from({ length: Math.ceil(b.length / MB) }, (_, i) => b.subarray(i * MB, (i + 1) * MB));
    const deep = deepJson(100_000);
    const attack = (kind: string, p: Promise<RawOutcome>): Promise<void> => p.then((o) => void hostile.push({ kind, outcome: o }));
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const hang = new AbortController();
        const jobs: Array<Promise<unknown>> = [
          ...normal().map((p) => p.then((o) => ordinary.push(o))),
          attack(
            'declared-oversize',
            rawExchange(url, postHead(url, { ...auth, 'content-length': String(1024 * MB) }), [Buffer.alloc(64 * 1024, 0x20)], { stall: true }),
          ),
          attack('chunked-oversize', chunkedUpload(url, 24 * MB, auth)),
          attack(
            'stalled-body',
            rawExchange(url, postHead(url, { ...auth, 'content-length': '100000' }), ['{"messages": [{"role": "user", "content": "hel'], { stall: true }),
          ),
          attack('stalled-headers-only', rawExchange(url, postHead(url, { ...auth, 'content-length': '1000' }), [], { stall: true })),
          attack('malformed-json', outcome(post(url, '{"messages": [{"role": "user", "content": ', auth))),
          attack('deep-json', outcome(post(url, deep, auth))),
          attack('huge-prompt', outcome(post(url, big, auth))),
          attack('path-escape', outcome(post(url, chatBody('../outside/secret.png'), auth))),
          attack('path-escape', outcome(post(url, chatBody('link.png'), auth))),
          attack('path-escape', outcome(post(url, chatBody('/etc/passwd'), auth))),
          attack('fifo-image', outcome(post(url, chatBody('pipe.png'), auth))),
          attack('huge-image', outcome(post(url, chatBody('huge.png'), auth))),
          // Raw, so the 401 is seen while the 19 MiB body is still being sent (fetch reports only the reset).
          attack(
            'bad-auth-big-body',
            rawExchange(url, postHead(url, { authorization: 'Bearer sk-wrong', 'content-length': String(bigBuffer.length) }), pieces(bigBuffer)),
          ),
          attack('bad-auth', outcome(post(url, chatBody(dataUrl(png))))),
          attack('hang-up', outcome(post(url, chatBody(dataUrl(png), { stream: true, max_tokens: 50 }), auth, hang.signal))),
        ];
        setTimeout(() => hang.abort(), 20);
        await Promise.all(jobs);
      }
      // The burst: 24 parallel 19 MiB valid bodies, with ordinary requests beside them.
      // Raw, from one shared buffer, so the client side does not copy 24 × 19 MiB before sending.
      const burst = Array.from({ length: BURST }, () =>
        attack('burst-19MiB', rawExchange(url, postHead(url, { ...auth, 'content-length': String(bigBuffer.length) }), pieces(bigBuffer))),
      );
      await Promise.all([...burst, ...normal().map((p) => p.then((o) => ordinary.push(o)))]);
      // How many of the burst were read in full before the budget or their deadline refused them depends on the
      // machine's pace; one such body alone, after the burst, must be read and refused by its length.
      await attack('alone-19MiB', rawExchange(url, postHead(url, { ...auth, 'content-length': String(bigBuffer.length) }), pieces(bigBuffer)));
    } finally {
      clearInterval(sampler);
    }
    const peak = Math.max(sampledPeak, processMemory(server.pid).hwm);

    // Memory: the peak stayed under the bound, and after a forced GC the process is back near its baseline.
    expect(await server.command('gc')).toEqual({ gc: true });
    await new Promise((r) => setTimeout(r, 1_000));
    await server.command('gc');
    const settled = processMemory(server.pid).rss;
    const tally: Record<string, Record<string, number>> = {};
    for (const { kind, outcome: o } of hostile) {
      const key = String(o.status ?? o.ended);
      tally[kind] = { ...tally[kind], [key]: (tally[kind]?.[key] ?? 0) + 1 };
    }
    const stats = (await server.command('stats')) as { stats: { running: number; waiting: number } };
    await annotate(
      `soak: ${ordinary.length} ordinary requests (all 200), ${hostile.length} hostile ${JSON.stringify(tally)}; ` +
        `RSS baseline ${(baseline / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB (+${((peak - baseline) / MB).toFixed(0)}), ` +
        `settled ${(settled / MB).toFixed(0)} MB (+${((settled - baseline) / MB).toFixed(0)})`,
    );
    // Every ordinary request succeeded.
    expect(ordinary.length).toBe(ROUNDS * 4 + 4);
    expect(ordinary.filter((o) => o.status !== 200)).toEqual([]);
    for (const o of ordinary) expect(o.body).toMatch(/"object":"chat\.completion(\.chunk)?"/);

    // Every hostile request got its typed answer (or, for the hang-up, went away); none got a 5xx other than a busy 503.
    const expected: Record<string, Array<number | string>> = {
      'declared-oversize': [413],
      // On a busy machine a 64 MiB upload can also miss its body deadline (408) before reaching the cap.
      'chunked-oversize': [413, 408, 'reset'],
      'stalled-body': [408],
      'stalled-headers-only': [408],
      'malformed-json': [400],
      'deep-json': [400],
      'huge-prompt': [400, 503],
      'path-escape': [403],
      'fifo-image': [400],
      'huge-image': [400],
      'bad-auth': [401],
      // Refused before its body is read; the rest is dropped for a moment, then the connection is cut,
      // which can reset the connection before the client has read the 401.
      'bad-auth-big-body': [401, 'reset'],
      'hang-up': [200, 'reset'],
      // Under the burst a body may also miss its deadline (408) on a busy machine, or its refusal be lost
      // to the reset that ends a client still sending after it (see linger in server.ts).
      'burst-19MiB': [400, 408, 503, 'reset'],
      'alone-19MiB': [400],
    };
    for (const { kind, outcome: o } of hostile) {
      expect(expected[kind], `${kind}: ${String(o.status ?? o.ended)} ${o.body ?? ''}`).toContain(o.status ?? o.ended);
    }
    const codes = (kind: string): string[] => [...new Set(hostile.filter((h) => h.kind === kind && h.outcome.status).map((h) => codeOf(h.outcome)!))];
    expect(codes('huge-prompt').every((c) => c === 'context_length_exceeded' || c === 'server_busy')).toBe(true);
    expect(codes('burst-19MiB').every((c) => ['context_length_exceeded', 'server_busy', 'body_timeout'].includes(c))).toBe(true);
    expect(codes('alone-19MiB')).toEqual(['context_length_exceeded']);
    expect(codes('fifo-image')).toEqual(['invalid_image_file']);
    expect(codes('huge-image')).toEqual(['image_too_large']);
    expect(codes('stalled-body')).toEqual(['body_timeout']);
    expect(codes('deep-json')).toEqual(['invalid_request']);
    expect(codes('bad-auth-big-body')).toEqual(['invalid_api_key']);
    expect(hostile.length).toBe(ROUNDS * 15 + BURST + 1);

    expect(stats.stats).toMatchObject({ running: 0, waiting: 0 });
    expect(peak - baseline).toBeLessThan(PEAK_OVER_BASELINE);
    expect(settled - baseline).toBeLessThan(SETTLED_OVER_BASELINE);
    expect(await server.stop()).toBe(0);
  });
});
