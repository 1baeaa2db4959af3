import type { DType, Tensor } from '../tensor.js';

/** How a backend should build a session. Execution providers and threads are options, never sniffed. */
export interface SessionOptions {
  /** Execution providers in order of preference, e.g. `['cpu']` (node) or `['webgpu', 'wasm']` (web). */
  executionProviders?: readonly string[];
  /** Threads used inside one operator. */
  intraOpThreads?: number;
  /** Threads used across independent operators. */
  interOpThreads?: number;
  /** Graph optimisation level applied by the backend. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

/** Name, element type and dims of a session input or output, as the model declares them. */
export interface ValueMetadata {
  name: string;
  /** Core dtype when the element type maps to one, otherwise the backend's own type name. */
  dtype?: DType | string;
  /** Dims, with symbolic names as strings and unknown dims as null; absent when the model does not say. */
  dims?: ReadonlyArray<number | string | null>;
}

/** Options of one run. */
export interface RunOptions {
  /** Fetch only these outputs (default: all). */
  outputs?: readonly string[];
}

/** A loaded model ready to run. */
export interface InferenceSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Declared inputs with types, where the backend can tell. */
  readonly inputMetadata: readonly ValueMetadata[];
  /** Declared outputs with types, where the backend can tell. */
  readonly outputMetadata: readonly ValueMetadata[];
  /** Run the model; feeds are checked against the declared inputs before the backend sees them. */
  run(feeds: Readonly<Record<string, Tensor>>, options?: RunOptions): Promise<Record<string, Tensor>>;
  /** Free native resources; the session cannot be used afterwards. */
  release(): Promise<void>;
}

/** Something that turns ONNX models into sessions: onnxruntime-node, onnxruntime-web, ... */
export interface InferenceBackend {
  /** Backend name, e.g. `onnxruntime-node`. */
  readonly name: string;
  /** Which family of platform it runs on. */
  readonly platform: 'node' | 'web';
  /** Load a model from bytes or from a path (node) / URL (web). */
  createSession(model: Uint8Array | string, options?: SessionOptions): Promise<InferenceSession>;
}
