/**
 * ONNX graphs of every connector, built with @vlit/graph. Weights are initializers under their
 * canonical names in torch layout ([out, in] for Linear), transposed inside the graph, so the graph's
 * initializer names are the checkpoint's tensor names and a trainer can find them by name.
 */
import { createTensor, type Tensor } from '@vlit/core';
import { createGraph, type GraphBuilder, type OnnxModel, type Value } from '@vlit/graph';
import { gridSide, normalizeConnectorConfig, type ConnectorConfig, type ConnectorConfigInput, type ResamplerConnectorConfig } from './config.js';

/** Name of the graph input, [images, tokens, inputDim]. */
export const CONNECTOR_INPUT = 'features';
/** Name of the graph output, [images, outputTokens, outputDim]. */
export const CONNECTOR_OUTPUT = 'projected';

type Weights = Readonly<Record<string, Tensor<'float32'>>>;

function linear(g: GraphBuilder, x: Value, w: Weights, name: string): Value {
  const weight = g.initializer(`${name}.weight`, w[`${name}.weight`]);
  const y = g.matMul(x, g.transpose(weight, [1, 0], { name: `${name}/transpose` }), { name: `${name}/matmul` });
  return g.add(y, g.initializer(`${name}.bias`, w[`${name}.bias`]), { name: `${name}/bias` });
}

function mlp(g: GraphBuilder, x: Value, w: Weights, prefix = ''): Value {
  const h = g.gelu(linear(g, x, w, `${prefix}linear_1`), { name: `${prefix}gelu` });
  return linear(g, h, w, `${prefix}linear_2`);
}

function layerNorm(g: GraphBuilder, x: Value, w: Weights, name: string, epsilon: number): Value {
  return g.layerNormalization(x, g.initializer(`${name}.weight`, w[`${name}.weight`]), g.initializer(`${name}.bias`, w[`${name}.bias`]), {
    axis: -1,
    epsilon,
    name,
  });
}

function int64(values: number[]): Tensor<'int64'> {
  return createTensor(
    'int64',
    [values.length],
    values.map((v) => BigInt(v)),
  );
}

function resampler(g: GraphBuilder, x: Value, w: Weights, c: ResamplerConnectorConfig): Value {
  const d = c.outputDim;
  const heads = c.numHeads;
  const dh = d / heads;
  const q = c.numQueries;
  const kvWeight = g.initializer('kv_proj.weight', w['kv_proj.weight']);
  const kv = g.matMul(x, g.transpose(kvWeight, [1, 0]), { name: 'kv_proj' });
  // Queries are shared by every image: broadcast [Q, D] to [images, Q, D].
  const batch = g.shape(x, { start: 0, end: 1, name: 'batch_size' });
  const target = g.concat([batch, g.initializer('queries_shape', int64([q, d]))], 0);
  let h = g.expand(g.initializer('queries', w.queries), target, { name: 'queries_per_image' });
  const scale = 1 / Math.sqrt(dh);
  for (let i = 0; i < c.depth; i++) {
    const p = `layers.${i}`;
    const hq = layerNorm(g, h, w, `${p}.norm_q`, c.epsilon);
    const hk = layerNorm(g, kv, w, `${p}.norm_kv`, c.epsilon);
    // [B, n, D] -> [B, heads, n, dh]
    const split = (v: Value, n: number | -1): Value => g.transpose(g.reshape(v, [0, n, heads, dh]), [0, 2, 1, 3]);
    const qh = split(linear(g, hq, w, `${p}.attn.q_proj`), q);
    const kh = split(linear(g, hk, w, `${p}.attn.k_proj`), -1);
    const vh = split(linear(g, hk, w, `${p}.attn.v_proj`), -1);
    const scores = g.mul(g.matMul(qh, g.transpose(kh, [0, 1, 3, 2])), scale, { name: `${p}.attn/scores` });
    const ctx = g.matMul(g.softmax(scores, { axis: -1 }), vh);
    const merged = g.reshape(g.transpose(ctx, [0, 2, 1, 3]), [0, q, d]);
    h = g.add(h, linear(g, merged, w, `${p}.attn.o_proj`), { name: `${p}/attn_residual` });
    const f = layerNorm(g, h, w, `${p}.norm_ffn`, c.epsilon);
    h = g.add(h, mlp(g, f, w, `${p}.ffn.`), { name: `${p}/ffn_residual` });
  }
  return layerNorm(g, h, w, 'norm_out', c.epsilon);
}

/**
 * Build the connector's ONNX model. Token-count-independent connectors get a symbolic token dim;
 * pooling connectors are built for a fixed token count (their grid reshapes need it).
 */
export function buildConnectorModel(input: ConnectorConfigInput, weights: Weights, tokens?: number, name = `connector-${input.kind}`): OnnxModel {
  // Defaults filled here too, so a config as users write it builds the connector createConnector would.
  const config: ConnectorConfig = normalizeConnectorConfig(input);
  const g = createGraph({ name, opset: 20 });
  const fixed = config.kind === 'avg-pool' || config.kind === 'pixel-shuffle';
  const x = g.input(CONNECTOR_INPUT, 'float32', ['images', fixed ? (tokens as number) : (tokens ?? 'tokens'), config.inputDim]);
  let y: Value;
  switch (config.kind) {
    case 'linear':
      y = linear(g, x, weights, 'linear');
      break;
    case 'mlp':
      y = mlp(g, x, weights);
      break;
    case 'resampler':
      y = resampler(g, x, weights, config);
      break;
    case 'avg-pool': {
      const side = gridSide(tokens as number, config.factor, config.kind);
      const out = side / config.factor;
      // [B, T, C] -> [B, C, side, side] (row-major patch order) -> pooled -> [B, T', C]
      const grid = g.transpose(g.reshape(x, [0, side, side, config.inputDim]), [0, 3, 1, 2]);
      const pooled = g.op(
        'AveragePool',
        [grid],
        {
          kernel_shape: { kind: 'ints', value: [config.factor, config.factor] },
          strides: { kind: 'ints', value: [config.factor, config.factor] },
        },
        { name: 'pool' },
      );
      const tokensOut = g.transpose(g.reshape(pooled, [0, config.inputDim, out * out]), [0, 2, 1]);
      y = mlp(g, tokensOut, weights);
      break;
    }
    case 'pixel-shuffle': {
      const f = config.factor;
      const side = gridSide(tokens as number, f, config.kind);
      const out = side / f;
      // [B, T, C] -> [B, out, f, out, f, C] -> [B, out, out, f, f, C] -> [B, out², f²C]
      const blocks = g.transpose(g.reshape(x, [0, out, f, out, f, config.inputDim]), [0, 1, 3, 2, 4, 5]);
      y = mlp(g, g.reshape(blocks, [0, out * out, f * f * config.inputDim]), weights);
      break;
    }
  }
  g.output(y, CONNECTOR_OUTPUT);
  return g.toModel();
}
