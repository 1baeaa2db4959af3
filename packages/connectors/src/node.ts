/**
 * `@vlit/connectors/node`: connector checkpoints as safetensors files.
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { NotFoundError } from '@vlit/core';
import { writeSafetensorsFile } from '@vlit/core/node';
import { CONNECTOR_METADATA_KEY, loadConnector, type GraphConnector, type LoadConnectorOptions } from './connector.js';
import { toCheckpointName, type ConnectorNaming } from './naming.js';

/** Load a connector from a safetensors file (see loadConnector for Hugging Face LLaVA checkpoints). */
export async function readConnectorFile(path: string, options: Omit<LoadConnectorOptions, 'file'>): Promise<GraphConnector> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new NotFoundError(`cannot read connector file ${path}`, { cause, details: { file: path } });
  }
  return loadConnector(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { ...options, file: path });
}

/** Write a connector's weights to a safetensors file (atomically), under a naming scheme (default `vlit`). */
export async function writeConnectorFile(path: string, connector: GraphConnector, options: { naming?: ConnectorNaming } = {}): Promise<void> {
  const naming = options.naming ?? 'vlit';
  const tensors: Record<string, GraphConnector['weights'][string]> = {};
  for (const [name, t] of Object.entries(connector.weights)) tensors[toCheckpointName(name, naming, connector.config.kind)] = t;
  await writeSafetensorsFile(path, tensors, { [CONNECTOR_METADATA_KEY]: JSON.stringify(connector.config), 'vlit.naming': naming });
}
