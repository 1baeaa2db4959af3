/** `vlit serve`: a checkpoint folder behind the OpenAI-compatible server, until SIGINT/SIGTERM. */
import { resolve } from 'node:path';
import { startOpenAIServer } from '@vlit/models/node';
import { defineCommand, num, str } from '../define.js';
import { openModelFolder } from '../model-source.js';
import { EXIT, positionals, UsageError } from '../shared.js';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve a model folder with the OpenAI-compatible API (token required unless --no-auth)',
  usage: 'serve MODEL_DIR [--token TOKEN | --no-auth] [--host 127.0.0.1] [--port 8000] [options]',
  description: `Load the LLaVA checkpoint folder MODEL_DIR and answer OpenAI chat completions (POST /v1/chat/completions,
GET /v1/models) until SIGINT or SIGTERM, which stop accepting connections, let replies in flight finish
briefly, and exit 0. Every request needs 'Authorization: Bearer TOKEN', the token from --token or the
VLIT_API_KEY environment variable; without one the server refuses to start unless --no-auth is given
explicitly. It binds 127.0.0.1 (this machine only) unless --host says otherwise, and prints its URL
(with --json: one JSON object {url, host, port, model, auth}). One request line per request goes to stderr.`,
  flags: [
    { name: 'token', type: 'string', arg: 'TOKEN', description: 'bearer token clients must send (default: $VLIT_API_KEY)' },
    { name: 'no-auth', type: 'boolean', description: 'serve without authentication (explicit opt-out)' },
    { name: 'host', type: 'string', arg: 'HOST', description: 'interface to bind (default 127.0.0.1)' },
    { name: 'port', type: 'integer', arg: 'PORT', default: 8000, description: 'port (0 picks a free one)' },
    { name: 'image-root', type: 'string', arg: 'DIR', description: 'folder request image paths may name (default: data URLs only)' },
    { name: 'concurrency', type: 'integer', arg: 'N', default: 1, min: 1, description: 'requests generating at once' },
    { name: 'max-queue', type: 'integer', arg: 'N', default: 8, description: 'requests waiting for a slot before 429' },
  ],
  examples: [
    { command: 'VLIT_API_KEY=s3cret vlit serve runs/demo/model --port 8000', note: 'the demo model on http://127.0.0.1:8000/v1, token from the environment' },
    { command: 'vlit serve runs/demo/model --no-auth --port 0 --json', note: 'no token (explicitly), any free port; the URL as JSON' },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    const [dir] = positionals(pos, ['MODEL_DIR']);
    const token = str(values, 'token') ?? (process.env.VLIT_API_KEY || undefined);
    const noAuth = values['no-auth'] === true;
    if (token === undefined && !noAuth) {
      throw new UsageError('refusing to serve without a token: pass --token TOKEN or set VLIT_API_KEY, or --no-auth to serve without authentication', {
        details: { field: '--token' },
      });
    }
    const port = num(values, 'port');
    if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`, { details: { field: '--port' } });
    const opened = await openModelFolder(dir);
    const imageRoot = str(values, 'image-root');
    const server = await startOpenAIServer({
      models: opened.model,
      images: opened.runtime.images,
      host: str(values, 'host') ?? '127.0.0.1',
      port,
      ...(token !== undefined ? { apiKey: token } : { allowUnauthenticated: true }),
      ...(imageRoot !== undefined ? { imageRoot: resolve(imageRoot) } : {}),
      concurrency: num(values, 'concurrency'),
      maxQueue: num(values, 'max-queue'),
      onLog: (e) => io.stderr(`${e.method} ${e.path} ${e.status} ${Math.round(e.durationMs)} ms${e.code ? ` ${e.code}` : ''}\n`),
    });
    const info = { url: `${server.url.replace(/\/$/, '')}/v1`, host: server.host, port: server.port, model: opened.model.id, auth: token !== undefined };
    if (json) io.stdout(`${JSON.stringify(info)}\n`);
    else io.stdout(`serving ${dir} (${opened.model.id}) at ${info.url}${info.auth ? '' : ' WITHOUT authentication'}; Ctrl-C stops\n`);
    const signal = await new Promise<NodeJS.Signals>((done) => {
      const on = (s: NodeJS.Signals): void => {
        process.off('SIGINT', on);
        process.off('SIGTERM', on);
        done(s);
      };
      process.on('SIGINT', on);
      process.on('SIGTERM', on);
    });
    await server.close();
    await opened.dispose();
    if (!json) io.stderr(`stopped (${signal})\n`);
    return EXIT.ok;
  },
});
