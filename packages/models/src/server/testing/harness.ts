/**
 * Helpers of the server's reliability tests and soak (not exported from the package): a real server
 * process from `serve-child.mjs`, raw HTTP clients that misbehave on purpose (stalled, oversized,
 * chunked bodies), and the memory of a process as Linux reports it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';

/** A data URL of PNG bytes. */
export const dataUrl = (bytes: Uint8Array): string => `data:image/png;base64,${Buffer.from(bytes).toString('base64')}`;

/** A one-image chat request. */
export function chatBody(url: string, extra: Record<string, unknown> = {}, text = 'What is in the picture?'): Record<string, unknown> {
  return {
    model: 'vlit-tiny',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url } },
          { type: 'text', text },
        ],
      },
    ],
    max_tokens: 4,
    ...extra,
  };
}

/** POST a chat completion with fetch. */
export async function post(base: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

/** What a raw exchange ended with: the status and body of a reply, or how the connection ended without one. */
export interface RawOutcome {
  status?: number;
  body?: string;
  /** Set when no reply came: 'reset', 'closed'. */
  ended?: string;
}

/**
 * Send a request over a raw socket: `head` lines (request line and headers), then `body` pieces
 * written one after another, then, when `stall`, nothing more (the socket stays open until the server
 * answers or closes it). Resolves with the parsed reply or how the connection ended.
 */
export function rawExchange(url: string, head: string[], body: Array<string | Buffer> = [], options: { stall?: boolean } = {}): Promise<RawOutcome> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (o: RawOutcome): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(o);
    };
    const tryParse = (final: boolean): void => {
      const text = data.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) {
        if (final) finish({ ended: data.length ? 'garbled' : 'closed' });
        return;
      }
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1];
      const rest = data.subarray(end + 4);
      if (length !== undefined && rest.length >= Number(length)) finish({ status, body: rest.subarray(0, Number(length)).toString('utf8') });
      else if (final) finish({ status, body: rest.toString('utf8') });
    };
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      tryParse(false);
    });
    socket.on('error', () => (data.length ? tryParse(true) : finish({ ended: 'reset' })));
    socket.on('close', () => tryParse(true));
    socket.on('connect', () => {
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
      const pieces = [...body];
      const next = (): void => {
        if (done) return;
        const piece = pieces.shift();
        if (piece === undefined) {
          if (!options.stall) socket.end();
          return;
        }
        // Keep writing until the server answers or cuts the connection (errors end in 'close').
        if (socket.write(piece)) setImmediate(next);
        else socket.once('drain', next);
      };
      next();
    });
  });
}

/** Request head lines for a POST to /v1/chat/completions. */
export function postHead(url: string, headers: Record<string, string>): string[] {
  const { host } = new URL(url);
  return ['POST /v1/chat/completions HTTP/1.1', `host: ${host}`, 'content-type: application/json', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
}

/** Stream `total` bytes of `fill` through http.request with chunked encoding (no Content-Length); resolves with the status, or how it ended. */
export function chunkedUpload(url: string, total: number, headers: Record<string, string> = {}): Promise<RawOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const req = httpRequest(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        settled = true;
        resolve({ status: res.statusCode, body });
        req.destroy();
      });
      res.on('error', () => {
        settled = true;
        resolve({ status: res.statusCode, body });
      });
    });
    req.on('error', () => {
      if (!settled) resolve({ ended: 'reset' });
    });
    const piece = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const write = (): void => {
      while (!settled && !req.destroyed && sent < total) {
        sent += piece.length;
        if (!req.write(piece)) {
          req.once('drain', write);
          return;
        }
      }
      if (!settled && !req.destroyed) req.end();
    };
    write();
  });
}

/** Resident memory of a process from /proc: current (VmRSS) and peak (VmHWM), in bytes. */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** A `vlit serve`-like child process (see serve-child.mjs). */
export interface ServerProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Send a stdin command and resolve with the next JSON line it prints. */
  command(line: string): Promise<Record<string, unknown>>;
  /** SIGTERM, and resolve with the exit code (null if it had to be killed after `killAfterMs`). */
  stop(killAfterMs?: number): Promise<number | null>;
}

/** Poll `condition` every 10 ms for up to `timeoutMs`. */
export async function waitUntil(condition: () => boolean, timeoutMs = 60_000): Promise<boolean> {
  for (let i = 0; i < timeoutMs / 10 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  return condition();
}

/** Start serve-child.mjs; rejects with its stderr when it exits before printing its address. */
export async function spawnServer(
  imageRoot: string,
  apiKey: string,
  options: Record<string, unknown> = {},
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const script = fileURLToPath(new URL('./serve-child.mjs', import.meta.url));
  const child = spawn(process.execPath, [...nodeArgs, script, imageRoot, apiKey, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitUntil(() => out.includes('\n') || child.exitCode !== null, 120_000);
  if (!out.includes('\n')) {
    child.kill('SIGKILL');
    throw new Error(`server process did not start (exit ${child.exitCode}): ${err}`);
  }
  const { url, pid } = JSON.parse(out.split('\n')[0]) as { url: string; pid: number };
  return {
    child,
    url,
    pid,
    stdout: () => out,
    stderr: () => err,
    async command(line) {
      const before = out.length;
      child.stdin.write(`${line}\n`);
      await waitUntil(() => out.slice(before).includes('\n'));
      return JSON.parse(out.slice(before).split('\n')[0]) as Record<string, unknown>;
    },
    async stop(killAfterMs = 120_000) {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
