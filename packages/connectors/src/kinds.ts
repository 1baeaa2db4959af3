/**
 * One factory per connector kind, for callers that know the kind: the kind's own configuration type,
 * with its defaults filled in before the generic createConnector.
 */
import type { AvgPoolConnectorConfig, LinearConnectorConfig, MlpConnectorConfig, PixelShuffleConnectorConfig, ResamplerConnectorConfig } from './config.js';
import { createConnector, type ConnectorOptions, type GraphConnector } from './connector.js';

type Dims<C> = Omit<C, 'kind'>;
type WithDefaults<C, K extends keyof C> = Omit<Dims<C>, K> & Partial<Pick<C, K>>;

/** A single linear projection (LLaVA "linear"). */
export function createLinearConnector(config: Dims<LinearConnectorConfig>, options: ConnectorOptions): GraphConnector {
  return createConnector({ kind: 'linear', ...config }, options);
}

/** LLaVA-1.5's two-layer MLP with GELU (`mlp2x_gelu`); hiddenDim defaults to outputDim. */
export function createMlpConnector(config: WithDefaults<MlpConnectorConfig, 'hiddenDim'>, options: ConnectorOptions): GraphConnector {
  return createConnector({ kind: 'mlp', hiddenDim: config.outputDim, ...config }, options);
}

/** Perceiver-style resampler with `numQueries` learned queries (numHeads 1, depth 1, ffnMultiplier 4, epsilon 1e-5 by default). */
export function createResamplerConnector(
  config: WithDefaults<ResamplerConnectorConfig, 'numHeads' | 'depth' | 'ffnMultiplier' | 'epsilon'>,
  options: ConnectorOptions,
): GraphConnector {
  return createConnector({ kind: 'resampler', numHeads: 1, depth: 1, ffnMultiplier: 4, epsilon: 1e-5, ...config }, options);
}

/** factor x factor average pooling over a square patch grid, then a GELU MLP (factor 2 by default). */
export function createAvgPoolConnector(config: WithDefaults<AvgPoolConnectorConfig, 'hiddenDim' | 'factor'>, options: ConnectorOptions): GraphConnector {
  return createConnector({ kind: 'avg-pool', hiddenDim: config.outputDim, factor: 2, ...config }, options);
}

/** Space-to-depth pixel shuffle over a square patch grid, then a GELU MLP (factor 2 by default). */
export function createPixelShuffleConnector(
  config: WithDefaults<PixelShuffleConnectorConfig, 'hiddenDim' | 'factor'>,
  options: ConnectorOptions,
): GraphConnector {
  return createConnector({ kind: 'pixel-shuffle', hiddenDim: config.outputDim, factor: 2, ...config }, options);
}
