/**
 * Where model files come from: memory, HTTP (fetch) or, at `@vlit/models/node`, a directory.
 */
import { BackendError } from '@vlit/core';
import { OPTIMUM_FILES } from './optimum-layout.js';

/** A folder of model files, abstracted over where it lives. */
export interface ModelFileSource {
  /** Name for error messages (a directory, a URL, `memory`). */
  readonly name: string;
  /** The bytes of a file, or undefined when the source has no such file. */
  read(file: string): Promise<Uint8Array | undefined>;
  /**
   * What to give `InferenceBackend.createSession` for an ONNX file, or undefined when absent. A
   * directory returns the path, so onnxruntime finds external-data files beside the model.
   */
  sessionInput(file: string): Promise<Uint8Array | string | undefined>;
}

/** A source over files held in memory (strings are UTF-8 text, e.g. config.json). */
export function createMemorySource(files: Readonly<Record<string, Uint8Array | string>>, name = 'memory'): ModelFileSource {
  const read = async (file: string): Promise<Uint8Array | undefined> => {
    const f = files[file];
    return typeof f === 'string' ? new TextEncoder().encode(f) : f;
  };
  return { name, read, sessionInput: read };
}

/**
 * The source of a decoder built from a checkpoint folder: the Optimum layout's config.json and
 * generation_config.json from the given JSON, the ONNX files from `sessionInput`.
 */
export function createBuiltDecoderSource(
  name: string,
  json: { config: unknown; generationConfig: unknown },
  sessionInput: ModelFileSource['sessionInput'],
): ModelFileSource {
  const text: Record<string, string> = {
    [OPTIMUM_FILES.config]: JSON.stringify(json.config),
    [OPTIMUM_FILES.generationConfig]: JSON.stringify(json.generationConfig),
  };
  return {
    name,
    async read(file) {
      return file in text ? new TextEncoder().encode(text[file]) : undefined;
    },
    sessionInput,
  };
}

/** A source over HTTP(S): files are fetched from `baseUrl` + name; a 404 means absent. External data is not fetched. */
export function createFetchSource(baseUrl: string, options: { fetch?: typeof fetch; headers?: Record<string, string> } = {}): ModelFileSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const doFetch = options.fetch ?? globalThis.fetch;
  const read = async (file: string): Promise<Uint8Array | undefined> => {
    const url = new URL(file, base).toString();
    let response: Response;
    try {
      response = await doFetch(url, { headers: options.headers });
    } catch (cause) {
      throw new BackendError(`cannot fetch ${url}`, { cause, details: { file: url } });
    }
    if (response.status === 404) return undefined;
    if (!response.ok) throw new BackendError(`cannot fetch ${url}: HTTP ${response.status}`, { details: { file: url, status: response.status } });
    return new Uint8Array(await response.arrayBuffer());
  };
  return { name: base, read, sessionInput: read };
}
