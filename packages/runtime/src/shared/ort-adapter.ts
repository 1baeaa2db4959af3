/**
 * The part of an onnxruntime backend that is the same for onnxruntime-node and onnxruntime-web:
 * both expose onnxruntime-common's API, so one adapter turns either module into core's contracts.
 * The module itself is passed in by the platform entry (never imported or sniffed here).
 */
import {
  BackendError,
  FormatError,
  NotFoundError,
  TensorShapeError,
  assertTensor,
  type DType,
  type InferenceBackend,
  type InferenceSession,
  type RunOptions,
  type SessionOptions,
  type Tensor,
  type ValueMetadata,
} from '@vlit/core';

/** Element types onnxruntime names differently from core, or that core has no dtype for. */
const ORT_TO_CORE: Record<string, DType | undefined> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  uint16: 'uint16',
  int32: 'int32',
  uint32: 'uint32',
  int64: 'int64',
  uint64: 'uint64',
  bool: 'bool',
};

/** The slice of onnxruntime-common's Tensor this adapter uses. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  dispose?(): void;
}

/** The slice of onnxruntime-common's InferenceSession this adapter uses. */
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: ReadonlyArray<{ name: string; isTensor: boolean; type?: string; shape?: ReadonlyArray<number | string> }>;
  readonly outputMetadata?: ReadonlyArray<{ name: string; isTensor: boolean; type?: string; shape?: ReadonlyArray<number | string> }>;
  run(feeds: Record<string, OrtTensorLike>, fetches?: readonly string[]): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}

/** The slice of an onnxruntime module (node or web) this adapter uses. */
export interface OrtModuleLike {
  Tensor: new (type: never, data: never, dims: readonly number[]) => OrtTensorLike;
  InferenceSession: {
    create(model: never, options?: Record<string, unknown>): Promise<OrtSessionLike>;
  };
}

function toMetadata(meta: OrtSessionLike['inputMetadata'], names: readonly string[]): ValueMetadata[] {
  if (!meta) return names.map((name) => ({ name }));
  return meta.map((m) => {
    if (!m.isTensor) return { name: m.name };
    const dtype = m.type ? (ORT_TO_CORE[m.type] ?? m.type) : undefined;
    // onnxruntime reports an undeclared shape as []: keep it unknown rather than claim a scalar.
    const dims = m.shape && m.shape.length > 0 ? m.shape.map((d) => (typeof d === 'number' && d < 0 ? null : d)) : undefined;
    return { name: m.name, dtype, dims };
  });
}

/** Classify an onnxruntime load failure: unparsable bytes are the user's file, the rest is the backend. */
export function sessionCreateError(err: unknown, source: string): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (/protobuf parsing failed|failed to load model|invalid model|no graph|is not a valid|model_path|ModelProto/i.test(message)) {
    return new FormatError(`cannot load ONNX model: ${message}`, { cause: err, details: { file: source } });
  }
  return new BackendError(`cannot create inference session: ${message}`, { cause: err, details: { file: source } });
}

function checkFeeds(feeds: Readonly<Record<string, Tensor>>, inputs: readonly ValueMetadata[], source: string): void {
  const byName = new Map(inputs.map((m) => [m.name, m]));
  for (const [name, tensor] of Object.entries(feeds)) {
    const meta = byName.get(name);
    if (!meta) {
      throw new NotFoundError(`model has no input '${name}'; inputs are: ${inputs.map((m) => m.name).join(', ')}`, {
        details: { file: source, field: name },
      });
    }
    assertTensor(tensor, `input '${name}'`);
    if (meta.dtype && tensor.dtype !== meta.dtype) {
      throw new TensorShapeError(`input '${name}' expects ${meta.dtype}, got ${tensor.dtype}`, {
        details: { file: source, field: name, expected: meta.dtype, actual: tensor.dtype },
      });
    }
    if (meta.dims) {
      const ok = meta.dims.length === tensor.dims.length && meta.dims.every((d, i) => typeof d !== 'number' || d === tensor.dims[i]);
      if (!ok) {
        throw new TensorShapeError(`input '${name}' expects dims [${meta.dims.map((d) => d ?? '?').join(', ')}], got [${tensor.dims.join(', ')}]`, {
          details: { file: source, field: name, expected: meta.dims, actual: [...tensor.dims] },
        });
      }
    }
  }
  for (const m of inputs) {
    if (!(m.name in feeds)) {
      throw new NotFoundError(`missing feed for model input '${m.name}'`, { details: { file: source, field: m.name } });
    }
  }
}

function fromOrt(t: OrtTensorLike, name: string, source: string): Tensor {
  const dtype = ORT_TO_CORE[t.type];
  if (!dtype) {
    throw new BackendError(`output '${name}' has element type ${t.type}, which Vlit tensors cannot hold`, {
      details: { file: source, field: name },
    });
  }
  let data = t.data as Tensor['data'];
  // onnxruntime hands back bool as Uint8Array already; float16 may come as Float16Array where the
  // platform has one: keep core's contract of raw half bits in a Uint16Array.
  if (dtype === 'float16' && !(data instanceof Uint16Array)) {
    const view = data as unknown as { buffer: ArrayBuffer; byteOffset: number; length: number };
    data = new Uint16Array(view.buffer, view.byteOffset, view.length).slice();
  }
  return { dtype, dims: [...t.dims], data };
}

function toOrt(ort: OrtModuleLike, tensor: Tensor): OrtTensorLike {
  let data: unknown = tensor.data;
  if (tensor.dtype === 'bool') data = tensor.data as Uint8Array;
  return new ort.Tensor(tensor.dtype as never, data as never, tensor.dims);
}

function ortSessionOptions(options: SessionOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (options.executionProviders) out.executionProviders = [...options.executionProviders];
  if (options.intraOpThreads !== undefined) out.intraOpNumThreads = options.intraOpThreads;
  if (options.interOpThreads !== undefined) out.interOpNumThreads = options.interOpThreads;
  if (options.graphOptimizationLevel) out.graphOptimizationLevel = options.graphOptimizationLevel;
  return out;
}

class OrtSession implements InferenceSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ValueMetadata[];
  readonly outputMetadata: readonly ValueMetadata[];
  private released = false;

  constructor(
    private readonly ort: OrtModuleLike,
    private readonly session: OrtSessionLike,
    private readonly source: string,
  ) {
    this.inputNames = [...session.inputNames];
    this.outputNames = [...session.outputNames];
    this.inputMetadata = toMetadata(session.inputMetadata, session.inputNames);
    this.outputMetadata = toMetadata(session.outputMetadata, session.outputNames);
  }

  async run(feeds: Readonly<Record<string, Tensor>>, options: RunOptions = {}): Promise<Record<string, Tensor>> {
    if (this.released) throw new BackendError('session was released', { details: { file: this.source } });
    checkFeeds(feeds, this.inputMetadata, this.source);
    const fetches = options.outputs ? [...options.outputs] : [...this.outputNames];
    for (const name of fetches) {
      if (!this.outputNames.includes(name)) {
        throw new NotFoundError(`model has no output '${name}'; outputs are: ${this.outputNames.join(', ')}`, {
          details: { file: this.source, field: name },
        });
      }
    }
    const ortFeeds: Record<string, OrtTensorLike> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(this.ort, t);
    let results: Record<string, OrtTensorLike>;
    try {
      results = await this.session.run(ortFeeds, fetches);
    } catch (err) {
      throw new BackendError(`inference failed: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
        details: { file: this.source },
      });
    }
    const out: Record<string, Tensor> = {};
    for (const name of fetches) {
      out[name] = fromOrt(results[name], name, this.source);
    }
    return out;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/** Build an InferenceBackend over an onnxruntime module (node or web share onnxruntime-common's API). */
export function createOrtBackend(
  ort: OrtModuleLike,
  name: string,
  platform: 'node' | 'web',
  defaults: SessionOptions,
  loadModel: (model: string) => Promise<Uint8Array | string>,
): InferenceBackend {
  return {
    name,
    platform,
    async createSession(model, options = {}) {
      const merged = { ...defaults, ...options };
      const source = typeof model === 'string' ? model : '<bytes>';
      const input = typeof model === 'string' ? await loadModel(model) : model;
      let session: OrtSessionLike;
      try {
        session = await ort.InferenceSession.create(input as never, ortSessionOptions(merged));
      } catch (err) {
        throw sessionCreateError(err, source);
      }
      return new OrtSession(ort, session, source);
    },
  };
}
