/**
 * @vlit/connectors: projectors from vision features to a language model's embedding space (linear,
 * LLaVA-1.5 MLP, perceiver resampler, average pooling, pixel shuffle), as ONNX graphs with named
 * weights run on an injected InferenceBackend. Files are at `@vlit/connectors/node`.
 * @packageDocumentation
 */
export {
  CONNECTOR_KINDS,
  connectorOutputTokens,
  connectorWeightShapes,
  normalizeConnectorConfig,
  type AvgPoolConnectorConfig,
  type ConnectorConfig,
  type ConnectorConfigInput,
  type ConnectorKind,
  type LinearConnectorConfig,
  type MlpConnectorConfig,
  type PixelShuffleConnectorConfig,
  type ResamplerConnectorConfig,
} from './config.js';
export { buildConnectorModel, CONNECTOR_INPUT, CONNECTOR_OUTPUT } from './build.js';
export { detectNaming, fromCheckpointName, toCheckpointName, type ConnectorNaming } from './naming.js';
export {
  CONNECTOR_METADATA_KEY,
  connectorWeightsFromSafetensors,
  createConnector,
  initConnectorWeights,
  loadConnector,
  type ConnectorOptions,
  type ConnectorWeights,
  type GraphConnector,
  type LoadConnectorOptions,
} from './connector.js';
export { createAvgPoolConnector, createLinearConnector, createMlpConnector, createPixelShuffleConnector, createResamplerConnector } from './kinds.js';
