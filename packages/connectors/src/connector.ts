/**
 * A connector as an ONNX graph with named weights, run on an injected InferenceBackend.
 */
import {
  InvalidArgumentError,
  NotFoundError,
  TensorShapeError,
  seededTensors,
  float32TensorOfShape,
  assertFloat32Weight,
  parseSafetensors,
  serializeSafetensors,
  type Connector,
  type InferenceBackend,
  type InferenceSession,
  type SafetensorsFile,
  type SessionOptions,
  type Tensor,
} from '@vlit/core';
import { encodeModel, type OnnxModel } from '@vlit/graph';
import { buildConnectorModel, CONNECTOR_INPUT, CONNECTOR_OUTPUT } from './build.js';
import { connectorOutputTokens, connectorWeightShapes, normalizeConnectorConfig, type ConnectorConfig, type ConnectorConfigInput } from './config.js';
import { detectNaming, fromCheckpointName, toCheckpointName, type ConnectorNaming } from './naming.js';

/** Metadata key under which a saved connector records its configuration. */
export const CONNECTOR_METADATA_KEY = 'vlit.connector';

/** Weights by canonical name, float32, torch layout. */
export type ConnectorWeights = Record<string, Tensor<'float32'>>;

/** Options shared by every connector factory. */
export interface ConnectorOptions {
  /** Runs the connector's graph (from `@vlit/runtime/node` or `@vlit/runtime/web`). */
  backend: InferenceBackend;
  /** Seed for deterministic initial weights (default 0); ignored for weights given in `weights`. */
  seed?: number | string;
  /** Weights by canonical name; missing ones are initialised from the seed. */
  weights?: ConnectorWeights;
  /** Id reported to composition and caches (default derived from the configuration). */
  id?: string;
  /** Session options for the backend. */
  session?: SessionOptions;
}

/** A connector built by Vlit: the core contract plus its configuration, weights and graph. */
export interface GraphConnector extends Connector {
  readonly config: ConnectorConfig;
  /** Weights by canonical name (torch layout); the graph's initializers carry these names. */
  readonly weights: Readonly<ConnectorWeights>;
  /** The ONNX model; pooling connectors need the input token count. */
  toModel(tokens?: number): OnnxModel;
  /** Weights as safetensors bytes, under a naming scheme (default `vlit`), with the configuration in the metadata. */
  toSafetensors(options?: { naming?: ConnectorNaming }): Uint8Array;
  /** Release the backend sessions. */
  dispose(): Promise<void>;
}

function describe(config: ConnectorConfig): string {
  switch (config.kind) {
    case 'linear':
      return `linear-${config.inputDim}x${config.outputDim}`;
    case 'mlp':
      return `mlp2x_gelu-${config.inputDim}x${config.hiddenDim}x${config.outputDim}`;
    case 'resampler':
      return `resampler-${config.inputDim}x${config.outputDim}-q${config.numQueries}-h${config.numHeads}-d${config.depth}`;
    case 'avg-pool':
    case 'pixel-shuffle':
      return `${config.kind}${config.factor}-${config.inputDim}x${config.hiddenDim}x${config.outputDim}`;
  }
}

/** Deterministic initial weights: Linear ~ N(0, 1/fan_in), biases ~ N(0, 0.02²), LayerNorm (1, 0), queries ~ N(0, 1). */
export function initConnectorWeights(config: ConnectorConfig, seed: number | string = 0): ConnectorWeights {
  const c = normalizeConnectorConfig(config);
  return seededTensors(connectorWeightShapes(c), seed, (name, dims) => {
    if (/(^|\.)norm_[a-z]+\.(weight|bias)$/.test(name)) return { constant: name.endsWith('.weight') ? 1 : 0 };
    if (name === 'queries') return { std: 1 };
    if (name.endsWith('.bias')) return { std: 0.02 };
    return { std: 1 / Math.sqrt(dims[dims.length - 1]) };
  });
}

function checkWeights(config: ConnectorConfig, weights: ConnectorWeights, id: string): void {
  const shapes = connectorWeightShapes(config);
  for (const [name, t] of Object.entries(weights)) {
    const dims = shapes[name];
    if (!dims) {
      throw new InvalidArgumentError(`connector ${id} has no weight named '${name}'`, { details: { field: name, known: Object.keys(shapes) } });
    }
    assertFloat32Weight(t, dims, { label: `connector weight '${name}'`, neededBy: `the ${config.kind} connector ${id}`, field: name });
  }
}

class GraphConnectorImpl implements GraphConnector {
  readonly id: string;
  readonly config: ConnectorConfig;
  readonly inputDim: number;
  readonly outputDim: number;
  readonly weights: Readonly<ConnectorWeights>;
  private readonly backend: InferenceBackend;
  private readonly sessionOptions?: SessionOptions;
  private readonly sessions = new Map<number, Promise<InferenceSession>>();

  constructor(config: ConnectorConfigInput, options: ConnectorOptions) {
    if (!options || typeof options.backend?.createSession !== 'function') {
      throw new InvalidArgumentError('a connector needs an InferenceBackend (options.backend)', { details: { field: 'backend' } });
    }
    this.config = normalizeConnectorConfig(config);
    this.id = options.id ?? describe(this.config);
    this.inputDim = this.config.inputDim;
    this.outputDim = this.config.outputDim;
    const given = options.weights ?? {};
    checkWeights(this.config, given, this.id);
    const init = initConnectorWeights(this.config, options.seed ?? 0);
    this.weights = Object.freeze({ ...init, ...given });
    this.backend = options.backend;
    this.sessionOptions = options.session;
  }

  outputTokens(inputTokens: number): number {
    return connectorOutputTokens(this.config, inputTokens);
  }

  toModel(tokens?: number): OnnxModel {
    const fixed = this.config.kind === 'avg-pool' || this.config.kind === 'pixel-shuffle';
    if (fixed && tokens === undefined) {
      throw new InvalidArgumentError(`the ${this.config.kind} connector's graph depends on the token count; pass it`, { details: { field: 'tokens' } });
    }
    if (tokens !== undefined) this.outputTokens(tokens);
    return buildConnectorModel(this.config, this.weights, tokens, this.id);
  }

  toSafetensors(options: { naming?: ConnectorNaming } = {}): Uint8Array {
    const naming = options.naming ?? 'vlit';
    const tensors: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(this.weights)) tensors[toCheckpointName(name, naming, this.config.kind)] = t;
    return serializeSafetensors(tensors, { [CONNECTOR_METADATA_KEY]: JSON.stringify(this.config), 'vlit.naming': naming });
  }

  async project(features: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    if (!features || features.dtype !== 'float32' || features.dims.length !== 3) {
      throw new TensorShapeError(
        `connector ${this.id} takes float32 features [images, tokens, ${this.inputDim}], got ${features?.dtype} [${features?.dims?.join(', ')}]`,
        {
          details: { field: 'features' },
        },
      );
    }
    const [, tokens, dim] = features.dims;
    if (dim !== this.inputDim) {
      throw new TensorShapeError(`connector ${this.id} takes features of width ${this.inputDim}, got ${dim}`, {
        details: { field: 'features', left: `features [${features.dims.join(', ')}]`, right: `${this.id} inputDim ${this.inputDim}` },
      });
    }
    try {
      this.outputTokens(tokens);
    } catch (cause) {
      throw new TensorShapeError(`connector ${this.id} cannot take ${tokens} tokens per image`, { cause, details: { field: 'features' } });
    }
    const fixed = this.config.kind === 'avg-pool' || this.config.kind === 'pixel-shuffle';
    const key = fixed ? tokens : 0;
    let session = this.sessions.get(key);
    if (!session) {
      session = this.backend.createSession(encodeModel(this.toModel(fixed ? tokens : undefined)), this.sessionOptions);
      this.sessions.set(key, session);
      session.catch(() => this.sessions.delete(key));
    }
    const out = await (await session).run({ [CONNECTOR_INPUT]: features }, { outputs: [CONNECTOR_OUTPUT] });
    return out[CONNECTOR_OUTPUT] as Tensor<'float32'>;
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s.catch(() => undefined))?.release();
  }
}

/** Create a connector of any kind; fields with defaults may be left out (see ConnectorConfigInput). */
export function createConnector(config: ConnectorConfigInput, options: ConnectorOptions): GraphConnector {
  return new GraphConnectorImpl(config, options);
}

/** Options of loadConnector. */
export interface LoadConnectorOptions extends Omit<ConnectorOptions, 'weights' | 'seed'> {
  /**
   * Configuration, needed when the file does not record one (e.g. a Hugging Face LLaVA checkpoint):
   * at least `kind`; widths of linear and MLP connectors are read from the weight shapes.
   */
  config?: Partial<ConnectorConfig> & { kind: ConnectorConfig['kind'] };
  /** Naming scheme of the file (detected from the names when absent). */
  naming?: ConnectorNaming;
  /** File name for error messages. */
  file?: string;
}

/** Weights of a connector from a parsed safetensors file under a naming scheme; other tensors are ignored. */
export function connectorWeightsFromSafetensors(file: SafetensorsFile, config: ConnectorConfig, naming?: ConnectorNaming, fileName?: string): ConnectorWeights {
  const scheme = naming ?? detectNaming(file.tensors.keys());
  const byCanonical = new Map<string, string>();
  for (const name of file.tensors.keys()) {
    const canonical = fromCheckpointName(name, scheme, config.kind);
    if (canonical !== undefined) byCanonical.set(canonical, name);
  }
  const out: ConnectorWeights = {};
  for (const [name, dims] of Object.entries(connectorWeightShapes(config))) {
    const source = byCanonical.get(name);
    if (source === undefined) {
      throw new NotFoundError(`the ${config.kind} connector needs tensor '${toCheckpointName(name, scheme, config.kind)}', which the file lacks`, {
        details: { file: fileName, field: name, naming: scheme },
      });
    }
    out[name] = float32TensorOfShape(file.get(source), dims, { neededBy: `the ${config.kind} connector`, file: fileName, field: source });
  }
  return out;
}

function inferConfig(file: SafetensorsFile, partial: NonNullable<LoadConnectorOptions['config']>, naming: ConnectorNaming, fileName?: string): ConnectorConfig {
  const shape = (canonical: string): readonly number[] => {
    const name = toCheckpointName(canonical, naming, partial.kind);
    const entry = file.tensors.get(name);
    if (!entry) {
      throw new NotFoundError(`cannot infer the ${partial.kind} connector's widths: tensor '${name}' is missing`, { details: { file: fileName, field: name } });
    }
    return entry.shape;
  };
  const p = partial as Partial<ConnectorConfig> & Record<string, unknown>;
  switch (partial.kind) {
    case 'linear': {
      const [out, input] = shape('linear.weight');
      return normalizeConnectorConfig({ kind: 'linear', inputDim: input, outputDim: out, ...p } as ConnectorConfig);
    }
    case 'mlp':
    case 'avg-pool':
    case 'pixel-shuffle': {
      const [hidden, input] = shape('linear_1.weight');
      const [out] = shape('linear_2.weight');
      const factor = (p.factor as number | undefined) ?? 2;
      const inputDim = partial.kind === 'pixel-shuffle' ? input / (factor * factor) : input;
      return normalizeConnectorConfig({ kind: partial.kind, inputDim, hiddenDim: hidden, outputDim: out, factor, ...p } as ConnectorConfig);
    }
    case 'resampler': {
      const [d, input] = shape('kv_proj.weight');
      const [q] = shape('queries');
      let depth = 0;
      while (file.tensors.has(toCheckpointName(`layers.${depth}.attn.q_proj.weight`, naming, 'resampler'))) depth++;
      const [ffn] = depth > 0 ? shape('layers.0.ffn.linear_1.weight') : [4 * d];
      return normalizeConnectorConfig({
        kind: 'resampler',
        inputDim: input,
        outputDim: d,
        numQueries: q,
        depth: Math.max(depth, 1),
        ffnMultiplier: ffn / d,
        numHeads: 1,
        epsilon: 1e-5,
        ...p,
      } as ConnectorConfig);
    }
  }
}

/**
 * Load a connector from safetensors bytes: Vlit's own files (configuration in the metadata) or a
 * checkpoint with Hugging Face LLaVA / original LLaVA names (give `config.kind`; widths come from the shapes).
 */
export function loadConnector(bytes: Uint8Array, options: LoadConnectorOptions): GraphConnector {
  const file = parseSafetensors(bytes, { file: options.file });
  const naming = options.naming ?? (file.metadata['vlit.naming'] as ConnectorNaming | undefined) ?? detectNaming(file.tensors.keys());
  let config: ConnectorConfig;
  const recorded = file.metadata[CONNECTOR_METADATA_KEY];
  if (recorded !== undefined) {
    let parsed: ConnectorConfig;
    try {
      parsed = JSON.parse(recorded) as ConnectorConfig;
    } catch (cause) {
      throw new InvalidArgumentError(`metadata '${CONNECTOR_METADATA_KEY}' is not JSON`, {
        cause,
        details: { file: options.file, field: CONNECTOR_METADATA_KEY },
      });
    }
    config = normalizeConnectorConfig({ ...parsed, ...(options.config ?? {}) } as ConnectorConfig);
  } else if (options.config) {
    config = inferConfig(file, options.config, naming, options.file);
  } else {
    throw new InvalidArgumentError('the file records no connector configuration; pass options.config (at least kind)', {
      details: { file: options.file, field: 'config' },
    });
  }
  const weights = connectorWeightsFromSafetensors(file, config, naming, options.file);
  return createConnector(config, { backend: options.backend, weights, id: options.id, session: options.session });
}
