// onnxruntime-node and sharp are optional peers: without them, @vlit/runtime/node still imports, and using it
// is a typed error naming the missing package. A child Node process hides them with a module resolve hook.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const dist = pathToFileURL(join(here, '../dist/node.js')).href;

const HOOK = `export async function resolve(specifier, context, next) {
  if (specifier === 'sharp' || specifier === 'onnxruntime-node') {
    const err = new Error('Cannot find package ' + specifier);
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  return next(specifier, context);
}`;

async function runWithout(body: string): Promise<Record<string, unknown>> {
  const script = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}));
const m = await import(${JSON.stringify(dist)});
const out = {};
const capture = (name, f) => { try { f(); out[name] = 'ok'; } catch (e) { out[name] = { name: e.name, code: e.code, message: e.message, details: e.details }; } };
${body}
console.log(JSON.stringify(out));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: here });
  return JSON.parse(stdout.trim()) as Record<string, unknown>;
}

describe('@vlit/runtime/node without its optional native packages', () => {
  it('imports, and each use is a NotFoundError naming the missing package and how to install it', async () => {
    const out = await runWithout(`
out.exports = typeof m.createNodeRuntime;
capture('backend', () => m.createOnnxNodeBackend());
capture('codec', () => m.createSharpCodec());
capture('runtime', () => m.createNodeRuntime());
try { await m.renderSvgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"/>'); out.svg = 'ok'; } catch (e) { out.svg = { code: e.code, details: e.details }; }`);
    expect(out.exports).toBe('function');
    const backend = out.backend as { code: string; message: string; details: Record<string, unknown> };
    expect(backend.code).toBe('VLIT_NOT_FOUND');
    expect(backend.message).toContain("'onnxruntime-node'");
    expect(backend.message).toContain('npm install onnxruntime-node@1.30.0');
    expect(backend.details).toEqual({ field: 'onnxruntime-node', package: 'onnxruntime-node', version: '1.30.0' });
    const codec = out.codec as { code: string; message: string; details: Record<string, unknown> };
    expect(codec.code).toBe('VLIT_NOT_FOUND');
    expect(codec.message).toContain("'sharp'");
    expect(codec.details.package).toBe('sharp');
    // The runtime needs both; the backend is made first, so it names onnxruntime-node.
    expect((out.runtime as { details: Record<string, unknown> }).details.package).toBe('onnxruntime-node');
    expect(out.svg).toEqual({ code: 'VLIT_NOT_FOUND', details: { field: 'sharp', package: 'sharp', version: '~0.35.5' } });
  });

  it('with them installed (this monorepo), the same child process builds a runtime: the hook alone made the difference', async () => {
    const script = `const m = await import(${JSON.stringify(dist)}); const r = m.createNodeRuntime(); console.log(r.platform + ' ' + r.images.name);`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: here });
    expect(stdout.trim()).toBe('node sharp');
  });
});
