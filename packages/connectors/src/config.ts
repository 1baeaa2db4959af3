/**
 * Connector configurations: which architecture, its widths, and the facts composition needs.
 * Every weight name below is Vlit's canonical name; Hugging Face / LLaVA names map onto them in
 * ./naming.ts.
 */
import { InvalidArgumentError } from '@vlit/core';

/** A single linear layer (LLaVA-1.0 "linear"). */
export interface LinearConnectorConfig {
  kind: 'linear';
  inputDim: number;
  outputDim: number;
}

/** Two linear layers with GELU between them (LLaVA-1.5 "mlp2x_gelu"). */
export interface MlpConnectorConfig {
  kind: 'mlp';
  inputDim: number;
  /** Width of the hidden layer (LLaVA-1.5 uses the language model's hidden size). */
  hiddenDim: number;
  outputDim: number;
}

/** Perceiver-style resampler: learned queries cross-attend to the features, then an FFN, per layer. */
export interface ResamplerConnectorConfig {
  kind: 'resampler';
  inputDim: number;
  outputDim: number;
  /** Learned queries, so the number of output tokens whatever the input count. */
  numQueries: number;
  numHeads: number;
  /** Cross-attention + FFN blocks. */
  depth: number;
  /** FFN width as a multiple of outputDim. */
  ffnMultiplier: number;
  /** LayerNorm epsilon. */
  epsilon: number;
}

/** Average-pool a square patch grid by `factor` x `factor`, then a two-layer GELU MLP. */
export interface AvgPoolConnectorConfig {
  kind: 'avg-pool';
  inputDim: number;
  hiddenDim: number;
  outputDim: number;
  /** Pooling window and stride over the patch grid. */
  factor: number;
}

/** Space-to-depth pixel shuffle of a square grid by `factor`, then a two-layer GELU MLP. */
export interface PixelShuffleConnectorConfig {
  kind: 'pixel-shuffle';
  inputDim: number;
  hiddenDim: number;
  outputDim: number;
  /** Each factor x factor block of tokens becomes one token with factor² x inputDim channels. */
  factor: number;
}

/** Any connector configuration. */
export type ConnectorConfig = LinearConnectorConfig | MlpConnectorConfig | ResamplerConnectorConfig | AvgPoolConnectorConfig | PixelShuffleConnectorConfig;

type Optional<C, K extends keyof C> = Omit<C, K> & Partial<Pick<C, K>>;

/**
 * A configuration as users write it: fields with defaults may be left out (hiddenDim = outputDim,
 * factor = 2, numHeads = 1, depth = 1, ffnMultiplier = 4, epsilon = 1e-5). normalizeConnectorConfig fills them.
 */
export type ConnectorConfigInput =
  | LinearConnectorConfig
  | Optional<MlpConnectorConfig, 'hiddenDim'>
  | Optional<ResamplerConnectorConfig, 'numHeads' | 'depth' | 'ffnMultiplier' | 'epsilon'>
  | Optional<AvgPoolConnectorConfig, 'hiddenDim' | 'factor'>
  | Optional<PixelShuffleConnectorConfig, 'hiddenDim' | 'factor'>;

/** Connector architectures by name. */
export type ConnectorKind = ConnectorConfig['kind'];

/** All known kinds. */
export const CONNECTOR_KINDS: readonly ConnectorKind[] = ['linear', 'mlp', 'resampler', 'avg-pool', 'pixel-shuffle'];

function positiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`connector ${field} must be a positive integer, got ${String(value)}`, { details: { field } });
  }
  return value;
}

/** Check a configuration and fill defaults; throws InvalidArgumentError naming the field. */
export function normalizeConnectorConfig(config: ConnectorConfigInput): ConnectorConfig {
  const c = config as ConnectorConfigInput & Record<string, unknown>;
  if (!CONNECTOR_KINDS.includes(c.kind)) {
    throw new InvalidArgumentError(`unknown connector kind '${String(c.kind)}' (known: ${CONNECTOR_KINDS.join(', ')})`, { details: { field: 'kind' } });
  }
  const inputDim = positiveInt(c.inputDim, 'inputDim');
  const outputDim = positiveInt(c.outputDim, 'outputDim');
  switch (c.kind) {
    case 'linear':
      return { kind: 'linear', inputDim, outputDim };
    case 'mlp':
      return { kind: 'mlp', inputDim, hiddenDim: positiveInt(c.hiddenDim ?? outputDim, 'hiddenDim'), outputDim };
    case 'avg-pool':
    case 'pixel-shuffle':
      return { kind: c.kind, inputDim, hiddenDim: positiveInt(c.hiddenDim ?? outputDim, 'hiddenDim'), outputDim, factor: positiveInt(c.factor ?? 2, 'factor') };
    case 'resampler': {
      const numHeads = positiveInt(c.numHeads ?? 1, 'numHeads');
      if (outputDim % numHeads !== 0) {
        throw new InvalidArgumentError(`resampler outputDim ${outputDim} is not divisible by numHeads ${numHeads}`, { details: { field: 'numHeads' } });
      }
      const epsilon = c.epsilon ?? 1e-5;
      if (typeof epsilon !== 'number' || !(epsilon > 0)) throw new InvalidArgumentError('resampler epsilon must be > 0', { details: { field: 'epsilon' } });
      return {
        kind: 'resampler',
        inputDim,
        outputDim,
        numQueries: positiveInt(c.numQueries, 'numQueries'),
        numHeads,
        depth: positiveInt(c.depth ?? 1, 'depth'),
        ffnMultiplier: positiveInt(c.ffnMultiplier ?? 4, 'ffnMultiplier'),
        epsilon,
      };
    }
  }
}

/** Shape of every weight of a configuration, by canonical name (torch layout: Linear weights are [out, in]). */
export function connectorWeightShapes(config: ConnectorConfig): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  const linear = (name: string, input: number, output: number): void => {
    shapes[`${name}.weight`] = [output, input];
    shapes[`${name}.bias`] = [output];
  };
  const norm = (name: string, dim: number): void => {
    shapes[`${name}.weight`] = [dim];
    shapes[`${name}.bias`] = [dim];
  };
  switch (config.kind) {
    case 'linear':
      linear('linear', config.inputDim, config.outputDim);
      break;
    case 'mlp':
    case 'avg-pool':
      linear('linear_1', config.inputDim, config.hiddenDim);
      linear('linear_2', config.hiddenDim, config.outputDim);
      break;
    case 'pixel-shuffle':
      linear('linear_1', config.inputDim * config.factor * config.factor, config.hiddenDim);
      linear('linear_2', config.hiddenDim, config.outputDim);
      break;
    case 'resampler': {
      const d = config.outputDim;
      shapes['kv_proj.weight'] = [d, config.inputDim];
      shapes.queries = [config.numQueries, d];
      for (let i = 0; i < config.depth; i++) {
        const p = `layers.${i}`;
        norm(`${p}.norm_q`, d);
        norm(`${p}.norm_kv`, d);
        for (const proj of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) linear(`${p}.attn.${proj}`, d, d);
        norm(`${p}.norm_ffn`, d);
        linear(`${p}.ffn.linear_1`, d, d * config.ffnMultiplier);
        linear(`${p}.ffn.linear_2`, d * config.ffnMultiplier, d);
      }
      norm('norm_out', d);
      break;
    }
  }
  return shapes;
}

/** Output tokens for an input token count; throws InvalidArgumentError for grids the connector cannot take. */
export function connectorOutputTokens(config: ConnectorConfig, inputTokens: number): number {
  if (!Number.isInteger(inputTokens) || inputTokens <= 0) {
    throw new InvalidArgumentError(`input token count must be a positive integer, got ${inputTokens}`, { details: { field: 'inputTokens' } });
  }
  switch (config.kind) {
    case 'linear':
    case 'mlp':
      return inputTokens;
    case 'resampler':
      return config.numQueries;
    case 'avg-pool':
    case 'pixel-shuffle': {
      const side = gridSide(inputTokens, config.factor, config.kind);
      return (side / config.factor) ** 2;
    }
  }
}

/** Side of the square token grid; the grid must be square and divisible by the factor. */
export function gridSide(tokens: number, factor: number, kind: string): number {
  const side = Math.round(Math.sqrt(tokens));
  if (side * side !== tokens) {
    throw new InvalidArgumentError(`${kind} connector needs a square token grid, got ${tokens} tokens`, { details: { field: 'tokens', tokens } });
  }
  if (side % factor !== 0) {
    throw new InvalidArgumentError(`${kind} connector needs a grid side divisible by ${factor}, got ${side}x${side}`, {
      details: { field: 'tokens', tokens, factor },
    });
  }
  return side;
}
