/**
 * An OpenAI-compatible HTTP server over any VisionLanguageModel, on node:http: `/v1/chat/completions`
 * (JSON or SSE streaming, images as data URLs or files under an allowed root) and `/v1/models`.
 * Binds 127.0.0.1 unless told otherwise; a bearer token unless auth is switched off explicitly;
 * bounded queue (429); bodies streamed under a size limit (413), a deadline (408) and a shared byte
 * budget (503); prompts checked against the context before tokenising; a deadline per request (504);
 * close() that ends within a grace period whatever is in flight. This module admits requests (auth, body,
 * queue, deadline, images); parse.ts reads the body, complete.ts and stream.ts write the two forms of reply.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  InvalidArgumentError,
  type BatchGenerationItem,
  type GenerationOptions,
  type GenerationResult,
  type ImageCodec,
  type RawImage,
  type VisionLanguageModel,
  type VisionLanguageRequest,
} from '@vlit/core';
import { BodyBudget, CLIENT_CLOSED, readBody } from './body.js';
import { sendCompletion } from './complete.js';
import { HttpError, toHttpError } from './errors.js';
import { DEFAULT_MAX_IMAGE_BYTES, loadImage } from './images.js';
import { parseChatRequest, type PreparedRequest, type RequestLimits } from './parse.js';
import { promptLimitsFor, type PromptLimits } from './prompt-limits.js';
import { BoundedQueue, type QueueStats, type Release, type Ticket } from './queue.js';
import { sendJson, untilAborted, type CompletionRun } from './reply.js';
import type { ModelListResponse } from './schema.js';
import { streamCompletion } from './stream.js';

/** One finished request, for access logs. Holds no headers, bodies or credentials. */
export interface ServerLogEntry {
  method: string;
  path: string;
  status: number;
  durationMs: number;
  model?: string;
  stream?: boolean;
  /** The error code of a failed request (`queue_full`, `invalid_api_key`, ...), or `client_closed` when the client left first. */
  code?: string;
}

/** Options of createOpenAIServer. */
export interface OpenAIServerOptions {
  /** The model(s) to serve; a request's `model` picks one by id (absent: the first). */
  models: VisionLanguageModel | readonly VisionLanguageModel[];
  /** Decodes request images (from `@vlit/runtime/node`'s runtime, e.g. `runtime.images`). */
  images: ImageCodec;
  /** Directory that image file paths must stay inside; without it only data URLs are accepted. */
  imageRoot?: string;
  /** Interface to bind (default `127.0.0.1`; binding elsewhere is the caller's explicit choice). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /**
   * Every request needs `Authorization: Bearer <apiKey>` (401 otherwise). Never logged. Required: a
   * missing, empty or blank key refuses to start the server unless `allowUnauthenticated` is true, so an
   * unset environment variable never switches authentication off silently.
   */
  apiKey?: string;
  /** Serve without authentication when no `apiKey` is given (default false). A given key is still enforced. */
  allowUnauthenticated?: boolean;
  /** Largest request body in bytes (default 20 MiB); larger is 413, refused by `Content-Length` before reading. */
  maxBodyBytes?: number;
  /**
   * Bytes of request bodies held at once by the whole server (default 48 MiB, and at least `maxBodyBytes`),
   * plus an eighth more for the first 64 KiB of each body; beyond it 503.
   */
  maxBufferedBytes?: number;
  /** Time for a request's whole body to arrive, in ms (default 30000); slower is 408 and the connection is closed. */
  bodyTimeoutMs?: number;
  /** Time from a complete body to the end of the reply (queue, images, generation), in ms (default 300000); later is 504. */
  requestTimeoutMs?: number;
  /** Time close() lets in-flight replies finish before it destroys their connections, in ms (default 5000). */
  closeGraceMs?: number;
  /** Largest image file read from `imageRoot`, in bytes (default 32 MiB). */
  maxImageBytes?: number;
  /**
   * Most characters of message text (default: the context length × the tokenizer's longest token when the
   * model exposes both, as a composed model does; else 1 Mi characters). Longer prompts are 400 without tokenising.
   */
  maxPromptChars?: number;
  /** Most tokens of message text (default: the language model's `maxContext` when the model exposes it). */
  maxPromptTokens?: number;
  /** Most images in one request (default 8). */
  maxImages?: number;
  /** Requests generating at once (default 1: one model, one decoding loop at a time). */
  concurrency?: number;
  /** Requests allowed to wait for a slot (default 8); one more is answered 429 at once. */
  maxQueue?: number;
  /**
   * Most requests run as one batched generation (default 8; 1 switches batching off). Requests for a
   * model with `generateBatch` that wait in the queue when a slot frees run together; each still gets
   * (and streams) exactly its own tokens, and a client hanging up ends only its own row.
   */
  maxBatchSize?: number;
  /** `max_tokens` when a request leaves it out (default 256). */
  defaultMaxTokens?: number;
  /** Upper bound on `max_tokens` (default 4096). */
  maxTokensLimit?: number;
  /** Called once per finished request. */
  onLog?: (entry: ServerLogEntry) => void;
}

/** A server ready to listen. */
export interface OpenAIServer {
  /** The node:http server. */
  readonly server: Server;
  /** The request handler, to mount in another node:http server. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Start listening (default host and port from the options); resolves with the bound address. */
  listen(port?: number, host?: string): Promise<{ host: string; port: number; url: string }>;
  /**
   * Stop accepting connections, abort queued and running requests (they are answered 503), then wait at
   * most `closeGraceMs` for replies in flight before destroying the remaining connections.
   */
  close(): Promise<void>;
  /** Current queue load. */
  stats(): QueueStats;
}

/** How much of a refused body is read and dropped, and for how long, before its connection is cut. */
const LINGER_BYTES = 1024 * 1024;
const LINGER_MS = 1000;
/** How long after a refusal its connection is cut at the latest (the client has read its answer by then). */
const LINGER_MAX_MS = 15_000;

function positive(value: number | undefined, fallback: number, name: string, allowZero = false): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new InvalidArgumentError(`server option ${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${String(v)}`, {
      details: { field: name },
    });
  }
  return v;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, err.body(), err.headers);
}

/**
 * A client still sending a body the server refused gets its answer first (no `connection: close`, which
 * would reset the connection under unread bytes and lose the answer). Up to LINGER_BYTES or LINGER_MS of
 * the rest is read and dropped; then the server half-closes (a FIN after the answer) and stops reading, so
 * the client reads the answer at its own pace and nothing more is read, held or turned into garbage. The
 * connection is cut when the client closes it, or LINGER_MAX_MS after the refusal: cutting a socket that
 * still has unread bytes sends a reset, and a reset makes the client's kernel discard an answer it has
 * not read yet, so the cut waits until the client has had time to read it.
 */
function linger(req: IncomingMessage): void {
  const socket = req.socket;
  let dropped = 0;
  let halfClosed = false;
  const onData = (chunk: Buffer): void => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) halfClose();
  };
  const done = (): void => {
    clearTimeout(soft);
    clearTimeout(hard);
  };
  const halfClose = (): void => {
    if (halfClosed) return;
    halfClosed = true;
    clearTimeout(soft);
    req.off('data', onData);
    req.pause();
    socket?.end();
  };
  const soft = setTimeout(halfClose, LINGER_MS);
  soft.unref();
  const hard = setTimeout(() => socket?.destroy(), LINGER_MAX_MS);
  hard.unref();
  req.on('data', onData);
  req.once('end', done);
  socket?.once('close', done);
  req.resume();
}

/** The bearer token to require, or undefined where serving without one was asked for explicitly. */
function checkApiKey(options: OpenAIServerOptions): string | undefined {
  const apiKey = options.apiKey;
  if (apiKey !== undefined && typeof apiKey !== 'string') {
    throw new InvalidArgumentError('server option apiKey must be a string', { details: { field: 'apiKey' } });
  }
  if (apiKey !== undefined && apiKey.trim() === '') {
    throw new InvalidArgumentError(
      'server option apiKey is empty; set a real token, or pass allowUnauthenticated: true (and no apiKey) to serve without authentication',
      {
        details: { field: 'apiKey' },
      },
    );
  }
  if (apiKey === undefined && options.allowUnauthenticated !== true) {
    throw new InvalidArgumentError(
      'the server needs an apiKey (for example from an environment variable that is set); pass allowUnauthenticated: true to serve without authentication on purpose',
      { details: { field: 'apiKey' } },
    );
  }
  return apiKey;
}

/** Create the server (not yet listening). */
export function createOpenAIServer(options: OpenAIServerOptions): OpenAIServer {
  const models = Array.isArray(options.models) ? [...(options.models as readonly VisionLanguageModel[])] : [options.models as VisionLanguageModel];
  if (models.length === 0) throw new InvalidArgumentError('no model to serve', { details: { field: 'models' } });
  if (new Set(models.map((m) => m.id)).size !== models.length) {
    throw new InvalidArgumentError('served models must have distinct ids', { details: { field: 'models' } });
  }
  const apiKey = checkApiKey(options);
  const maxBodyBytes = positive(options.maxBodyBytes, 20 * 1024 * 1024, 'maxBodyBytes');
  const maxBufferedBytes = positive(options.maxBufferedBytes, Math.max(48 * 1024 * 1024, maxBodyBytes), 'maxBufferedBytes');
  if (maxBufferedBytes < maxBodyBytes) {
    throw new InvalidArgumentError(`server option maxBufferedBytes (${maxBufferedBytes}) must be at least maxBodyBytes (${maxBodyBytes})`, {
      details: { field: 'maxBufferedBytes' },
    });
  }
  const bodyBudget = new BodyBudget(maxBufferedBytes);
  const bodyTimeoutMs = positive(options.bodyTimeoutMs, 30_000, 'bodyTimeoutMs');
  const requestTimeoutMs = positive(options.requestTimeoutMs, 300_000, 'requestTimeoutMs');
  const closeGraceMs = positive(options.closeGraceMs, 5_000, 'closeGraceMs', true);
  const maxImageBytes = positive(options.maxImageBytes, DEFAULT_MAX_IMAGE_BYTES, 'maxImageBytes');
  if (options.maxPromptChars !== undefined) positive(options.maxPromptChars, 0, 'maxPromptChars');
  if (options.maxPromptTokens !== undefined) positive(options.maxPromptTokens, 0, 'maxPromptTokens');
  const promptLimits = new Map<VisionLanguageModel, PromptLimits>(
    models.map((m) => [m, promptLimitsFor(m, { maxPromptChars: options.maxPromptChars, maxPromptTokens: options.maxPromptTokens })]),
  );
  const maxImages = positive(options.maxImages, 8, 'maxImages', true);
  const maxBatchSize = positive(options.maxBatchSize, 8, 'maxBatchSize');
  const queue = new BoundedQueue(positive(options.concurrency, 1, 'concurrency'), positive(options.maxQueue, 8, 'maxQueue', true), maxBatchSize);
  const limits: RequestLimits = {
    models,
    promptLimits,
    maxImages,
    defaultMaxTokens: positive(options.defaultMaxTokens, 256, 'defaultMaxTokens'),
    maxTokensLimit: positive(options.maxTokensLimit, 4096, 'maxTokensLimit'),
  };
  const keyDigest = apiKey !== undefined ? digest(apiKey) : null;
  const created = Math.floor(Date.now() / 1000);
  // Every request being read, queued or generating, so close() can stop them all.
  const active = new Set<AbortController>();
  let closing = false;
  let closed: Promise<void> | undefined;

  function authorize(req: IncomingMessage): void {
    if (!keyDigest) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m || !timingSafeEqual(digest(m[1].trim()), keyDigest)) {
      throw new HttpError(401, 'authentication_error', 'invalid_api_key', 'missing or invalid bearer token', null, { 'www-authenticate': 'Bearer' });
    }
  }

  const shuttingDown = (): HttpError =>
    new HttpError(503, 'server_error', 'server_shutting_down', 'the server is shutting down', null, { connection: 'close' });
  const timedOut = (): HttpError => new HttpError(504, 'server_error', 'request_timeout', `the request did not complete within ${requestTimeoutMs} ms`);

  /** Read and parse the body in a frame of its own, so the raw bytes are garbage once parsed. */
  async function receive(req: IncomingMessage, signal: AbortSignal): Promise<{ prepared: PreparedRequest; release: () => void }> {
    const read = await readBody(req, { limit: maxBodyBytes, budget: bodyBudget, timeoutMs: bodyTimeoutMs, signal });
    try {
      return { prepared: parseChatRequest(read.text, limits), release: read.release };
    } catch (err) {
      read.release();
      throw err;
    }
  }

  async function completions(req: IncomingMessage, res: ServerResponse, log: Partial<ServerLogEntry>): Promise<void> {
    // One controller per request, from the first byte of its body to the end of its reply: the client
    // leaving, the deadline and close() all abort it, and every path below ends in the same finally.
    const controller = new AbortController();
    let clientGone = false;
    res.on('close', () => {
      if (res.writableFinished) return;
      clientGone = true;
      controller.abort(new HttpError(400, 'invalid_request_error', CLIENT_CLOSED, 'the client closed the connection'));
    });
    if (closing) throw shuttingDown();
    active.add(controller);
    let release: Release | undefined;
    let releaseBody: (() => void) | undefined;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    try {
      const received = await receive(req, controller.signal);
      // The reservation is held until the reply is done: the parsed request (text, data URLs) lives as long.
      releaseBody = received.release;
      const p = received.prepared;
      log.model = p.model.id;
      log.stream = p.stream;
      if (controller.signal.aborted) throw controller.signal.reason;
      deadline = setTimeout(() => controller.abort(timedOut()), requestTimeoutMs);

      const batchable = maxBatchSize > 1 && typeof p.model.generateBatch === 'function';
      const slot = queue.tryJoin(controller.signal, batchable ? p.model.id : undefined);
      if (!slot) {
        const { running: r, waiting } = queue.stats();
        throw new HttpError(
          429,
          'rate_limit_error',
          'queue_full',
          `the server is busy: ${r} request(s) running and ${waiting} waiting, the most it queues; retry later`,
          null,
          {
            'retry-after': '1',
          },
        );
      }
      const ticket: Ticket = await slot;
      release = () => ticket.release();
      // Requests granted one slot together run as one batch; a request alone takes the plain path.
      const generate = (request: VisionLanguageRequest, generation: GenerationOptions): Promise<GenerationResult> =>
        ticket.size > 1 && p.model.generateBatch
          ? ticket.join({ request, options: generation }, (items: BatchGenerationItem[]) => p.model.generateBatch!(items))
          : p.model.generate(request, generation);
      const images: RawImage[] = [];
      for (const { url, param } of p.imageUrls) {
        images.push(await untilAborted(loadImage(url, { images: options.images, imageRoot: options.imageRoot, maxImageBytes }, param), controller.signal));
      }
      const run: CompletionRun = {
        prepared: p,
        request: { messages: p.messages, images },
        generate,
        signal: controller.signal,
        id: `chatcmpl-${randomBytes(12).toString('hex')}`,
        created: Math.floor(Date.now() / 1000),
      };
      if (p.stream) {
        await streamCompletion(res, run, {
          clientGone: () => clientGone,
          failed: (code) => {
            log.code = code;
          },
        });
      } else {
        await sendCompletion(res, run);
      }
    } catch (err) {
      if (clientGone) {
        log.code = CLIENT_CLOSED;
        return;
      }
      throw err;
    } finally {
      clearTimeout(deadline);
      active.delete(controller);
      release?.();
      releaseBody?.();
    }
  }

  function listModels(res: ServerResponse): void {
    const list: ModelListResponse = { object: 'list', data: models.map((m) => ({ id: m.id, object: 'model', created, owned_by: 'vlit' })) };
    sendJson(res, 200, list);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const log: Partial<ServerLogEntry> = {};
    res.on('close', () => {
      if (!res.writableFinished && log.code === undefined) log.code = 'client_closed';
      try {
        options.onLog?.({ method: req.method ?? '', path, status: res.statusCode, durationMs: Date.now() - started, ...log });
      } catch {
        // A failing log sink must not take the server down with it.
      }
    });
    const fail = (err: unknown): void => {
      const e = toHttpError(err);
      log.code = e.code;
      if (res.headersSent) {
        res.end();
        return;
      }
      if (e.code === CLIENT_CLOSED) {
        res.destroy();
        return;
      }
      sendError(res, e);
      if (!req.complete) linger(req);
    };
    try {
      const routes: Record<string, string> = { '/v1/models': 'GET', '/v1/chat/completions': 'POST' };
      const method = routes[path];
      if (!method) throw new HttpError(404, 'not_found_error', 'not_found', `no route ${path}; this server has /v1/models and /v1/chat/completions`);
      authorize(req);
      if (req.method !== method) {
        throw new HttpError(405, 'invalid_request_error', 'method_not_allowed', `${path} takes ${method}`, null, { allow: method });
      }
      if (path === '/v1/models') {
        listModels(res);
        return;
      }
      completions(req, res, log).catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  const server = createServer(handle);
  // Node's own timers back up the body deadline (they also cover headers that never finish arriving).
  server.headersTimeout = Math.min(bodyTimeoutMs, 60_000);
  server.requestTimeout = bodyTimeoutMs + server.headersTimeout;
  // Errors on one socket (a reset, a malformed request) must never take the process down.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });

  return {
    server,
    handle,
    stats: () => queue.stats(),
    listen(port = options.port ?? 0, host = options.host ?? '127.0.0.1') {
      return new Promise((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          const a = server.address() as AddressInfo;
          const shownHost = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve({ host: a.address, port: a.port, url: `http://${shownHost}:${a.port}` });
        });
      });
    },
    close() {
      if (closed) return closed;
      closing = true;
      for (const c of active) c.abort(shuttingDown());
      closed = new Promise<void>((resolve) => {
        // Replies in flight get the grace period; connections still open after it (a stalled upload, a
        // model that ignores its abort signal) are destroyed, so close() always ends.
        const force = setTimeout(() => server.closeAllConnections(), closeGraceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}

/** Create the server and start listening; resolves once it is bound (127.0.0.1 unless `host` says otherwise). */
export async function startOpenAIServer(options: OpenAIServerOptions): Promise<OpenAIServer & { url: string; port: number; host: string }> {
  const s = createOpenAIServer(options);
  const address = await s.listen();
  return Object.assign(s, address);
}
