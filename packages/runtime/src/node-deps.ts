// onnxruntime-node and sharp are optional peer dependencies of @vlit/runtime (so a browser install pulls no
// native binary); this entry loads them once, and a missing one is a typed error naming the package when used.
import { NotFoundError } from '@vlit/core';

type OrtNode = typeof import('onnxruntime-node');
type Sharp = typeof import('sharp').default;

/** The optional native packages @vlit/runtime/node needs, with the versions it is built against. */
export const NODE_RUNTIME_PACKAGES = { 'onnxruntime-node': '1.30.0', sharp: '~0.35.5' } as const;

type Loaded<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(load: () => Promise<T>): Promise<Loaded<T>> {
  try {
    return { ok: true, value: await load() };
  } catch (error) {
    return { ok: false, error };
  }
}

const ort = await settle<OrtNode>(() => import('onnxruntime-node'));
const sharp = await settle<Sharp>(async () => (await import('sharp')).default);

function missing(name: keyof typeof NODE_RUNTIME_PACKAGES, cause: unknown): NotFoundError {
  const version = NODE_RUNTIME_PACKAGES[name];
  return new NotFoundError(
    `@vlit/runtime/node needs the package '${name}', which could not be loaded: install it beside @vlit/runtime (npm install ${name}@${version}), or use @vlit/runtime/web`,
    { cause, details: { field: name, package: name, version } },
  );
}

/** onnxruntime-node, or a NotFoundError naming it when it is not installed (or its native binary fails to load). */
export function requireOnnxNode(): OrtNode {
  if (!ort.ok) throw missing('onnxruntime-node', ort.error);
  return ort.value;
}

/** sharp, or a NotFoundError naming it when it is not installed (or its native binary fails to load). */
export function requireSharp(): Sharp {
  if (!sharp.ok) throw missing('sharp', sharp.error);
  return sharp.value;
}
