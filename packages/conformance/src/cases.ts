/**
 * The conformance cases: small graphs built with @vlit/graph, with deterministic inputs and weights
 * and float64 expectations from plain TypeScript references (./reference.ts over @vlit/test-kit). Every runtime must
 * reproduce every expectation within the case's tolerance.
 */
import { createRng, createTensor, type Rng, type Tensor } from '@vlit/core';
import { createGraph, encodeModel } from '@vlit/graph';
import { layerNorm, patchEmbed } from '@vlit/test-kit';
import { attentionReference, mlpReference } from './reference.js';

/** One conformance case: a model, feeds, and the expected value of each output. */
export interface ConformanceCase {
  name: string;
  model: Uint8Array;
  feeds: Record<string, Tensor>;
  /** Expected outputs in float64, row-major, with their dims. */
  expected: Record<string, { dims: number[]; data: Float64Array }>;
  /** Largest absolute difference allowed between a runtime's output and the expectation. */
  tolerance: number;
  /** Every tensor involved (inputs and weights), for independent references in other languages. */
  tensors: Record<string, Tensor<'float32'>>;
}

function randomTensor(rng: Rng, dims: number[], std: number): Tensor<'float32'> {
  const t = createTensor('float32', dims);
  rng.fillNormal(t.data, std);
  return t;
}

/** LLaVA-style two-layer MLP projector: MatMul + Add + Gelu + MatMul + Add. */
export function mlpCase(options: { tokens?: number; dIn?: number; dHidden?: number; dOut?: number; seed?: number } = {}): ConformanceCase {
  const { tokens = 24, dIn = 64, dHidden = 256, dOut = 48, seed = 1 } = options;
  const rng = createRng(seed);
  const x = randomTensor(rng, [tokens, dIn], 1);
  const w1 = randomTensor(rng, [dIn, dHidden], 1 / Math.sqrt(dIn));
  const b1 = randomTensor(rng, [dHidden], 0.1);
  const w2 = randomTensor(rng, [dHidden, dOut], 1 / Math.sqrt(dHidden));
  const b2 = randomTensor(rng, [dOut], 0.1);
  const g = createGraph({ name: 'mlp-projector' });
  const input = g.input('features', 'float32', ['tokens', dIn]);
  const h = g.gelu(g.add(g.matMul(input, g.initializer('w1', w1)), g.initializer('b1', b1)));
  g.output(g.add(g.matMul(h, g.initializer('w2', w2)), g.initializer('b2', b2)), 'projected');
  return {
    name: 'mlp: MatMul + Add + Gelu',
    model: encodeModel(g.toModel()),
    feeds: { features: x },
    expected: { projected: { dims: [tokens, dOut], data: mlpReference(x.data, w1.data, b1.data, w2.data, b2.data, tokens, dIn, dHidden, dOut) } },
    tolerance: 1e-5,
    tensors: { 'mlp.x': x, 'mlp.w1': w1, 'mlp.b1': b1, 'mlp.w2': w2, 'mlp.b2': b2 },
  };
}

/** ViT patch embedding: Conv with kernel = stride = patch, then tokens [patches, channels]. */
export function patchEmbedCase(options: { size?: number; patch?: number; channels?: number; outChannels?: number; seed?: number } = {}): ConformanceCase {
  const { size = 32, patch = 8, channels = 3, outChannels = 32, seed = 2 } = options;
  const rng = createRng(seed);
  const image = randomTensor(rng, [1, channels, size, size], 1);
  const weight = randomTensor(rng, [outChannels, channels, patch, patch], 1 / Math.sqrt(channels * patch * patch));
  const bias = randomTensor(rng, [outChannels], 0.1);
  const grid = Math.floor(size / patch);
  const g = createGraph({ name: 'patch-embedding' });
  const pixels = g.input('pixels', 'float32', [1, channels, size, size]);
  const conv = g.conv(pixels, g.initializer('weight', weight), g.initializer('bias', bias), {
    strides: [patch, patch],
    kernelShape: [patch, patch],
  });
  // [1, C, gh, gw] -> [1, C, gh*gw] -> [1, gh*gw, C] -> [gh*gw, C]
  const tokens = g.reshape(g.transpose(g.reshape(conv, [1, outChannels, grid * grid]), [0, 2, 1]), [grid * grid, outChannels]);
  g.output(tokens, 'tokens');
  return {
    name: 'patch embedding: Conv',
    model: encodeModel(g.toModel()),
    feeds: { pixels: image },
    expected: {
      tokens: {
        dims: [grid * grid, outChannels],
        data: patchEmbed(image.data, weight.data, bias.data, channels, size, size, outChannels, patch),
      },
    },
    tolerance: 1e-5,
    tensors: { 'patch.image': image, 'patch.weight': weight, 'patch.bias': bias },
  };
}

/** LayerNormalization over the last axis. */
export function layerNormCase(options: { rows?: number; width?: number; epsilon?: number; seed?: number } = {}): ConformanceCase {
  const { rows = 16, width = 96, epsilon = 1e-5, seed = 3 } = options;
  const rng = createRng(seed);
  const x = randomTensor(rng, [rows, width], 2);
  // A shifted row checks that the mean is removed before the variance is taken.
  for (let i = 0; i < width; i++) x.data[i] += 10;
  const scale = randomTensor(rng, [width], 1);
  const bias = randomTensor(rng, [width], 0.5);
  const g = createGraph({ name: 'layer-norm' });
  const input = g.input('x', 'float32', ['rows', width]);
  g.output(g.layerNormalization(input, g.initializer('scale', scale), g.initializer('bias', bias), { axis: -1, epsilon }), 'y');
  return {
    name: 'LayerNormalization',
    model: encodeModel(g.toModel()),
    feeds: { x },
    expected: { y: { dims: [rows, width], data: layerNorm(x.data, rows, width, scale.data, bias.data, epsilon) } },
    tolerance: 1e-5,
    tensors: { 'ln.x': x, 'ln.scale': scale, 'ln.bias': bias, 'ln.eps': createTensor('float32', [1], [epsilon]) },
  };
}

/** Multi-head self-attention: projections, per-head scaled dot products, Softmax, output projection. */
export function attentionCase(options: { tokens?: number; dim?: number; heads?: number; seed?: number } = {}): ConformanceCase {
  const { tokens = 20, dim = 64, heads = 4, seed = 4 } = options;
  const rng = createRng(seed);
  const dh = dim / heads;
  const x = randomTensor(rng, [tokens, dim], 1);
  const names = ['wq', 'bq', 'wk', 'bk', 'wv', 'bv', 'wo', 'bo'] as const;
  const w = Object.fromEntries(
    names.map((n) => [n, n.startsWith('w') ? randomTensor(rng, [dim, dim], 1 / Math.sqrt(dim)) : randomTensor(rng, [dim], 0.1)]),
  ) as Record<(typeof names)[number], Tensor<'float32'>>;
  const g = createGraph({ name: 'attention' });
  const input = g.input('x', 'float32', [tokens, dim]);
  const project = (wn: (typeof names)[number], bn: (typeof names)[number]) => g.add(g.matMul(input, g.initializer(wn, w[wn])), g.initializer(bn, w[bn]));
  // [T, D] -> [T, H, dh] -> [H, T, dh]
  const heads3 = (v: ReturnType<typeof project>) => g.transpose(g.reshape(v, [tokens, heads, dh]), [1, 0, 2]);
  const q = heads3(project('wq', 'bq'));
  const k = heads3(project('wk', 'bk'));
  const v = heads3(project('wv', 'bv'));
  const scores = g.div(g.matMul(q, g.transpose(k, [0, 2, 1])), Math.sqrt(dh));
  const context = g.matMul(g.softmax(scores, { axis: -1 }), v);
  const merged = g.reshape(g.transpose(context, [1, 0, 2]), [tokens, dim]);
  g.output(g.add(g.matMul(merged, g.initializer('wo', w.wo)), g.initializer('bo', w.bo)), 'y');
  const tensors: Record<string, Tensor<'float32'>> = { 'attn.x': x, 'attn.heads': createTensor('float32', [1], [heads]) };
  for (const n of names) tensors[`attn.${n}`] = w[n];
  return {
    name: 'attention: MatMul + Softmax',
    model: encodeModel(g.toModel()),
    feeds: { x },
    expected: {
      y: {
        dims: [tokens, dim],
        data: attentionReference(
          x.data,
          { wq: w.wq.data, bq: w.bq.data, wk: w.wk.data, bk: w.bk.data, wv: w.wv.data, bv: w.bv.data, wo: w.wo.data, bo: w.bo.data },
          tokens,
          dim,
          heads,
        ),
      },
    },
    tolerance: 1e-5,
    tensors,
  };
}

/** Every case of the suite, in a stable order. */
export function conformanceCases(): ConformanceCase[] {
  return [mlpCase(), patchEmbedCase(), layerNormCase(), attentionCase()];
}
