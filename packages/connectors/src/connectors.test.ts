import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRng, createTensor, encodeSafetensorsTensor, isVlitError, parseSafetensors, serializeSafetensors, type Tensor } from '@vlit/core';
import { listInitializers } from '@vlit/graph';
import { maxAbsDiff } from '@vlit/test-kit';
import { RUNTIME_PLATFORMS, createRuntimePair } from '@vlit/test-kit/node';
import {
  buildConnectorModel,
  connectorWeightShapes,
  createAvgPoolConnector,
  createConnector,
  createMlpConnector,
  createPixelShuffleConnector,
  createResamplerConnector,
  initConnectorWeights,
  loadConnector,
  normalizeConnectorConfig,
  type ConnectorConfig,
  type ConnectorWeights,
  type GraphConnector,
} from './index.js';
import { readConnectorFile, writeConnectorFile } from './node.js';
import { avgPoolRef, linearRef, mlpRef, pixelShuffleRef, resamplerRef } from './testing/reference.js';

const runtimes = createRuntimePair();
const platforms = RUNTIME_PLATFORMS;
const open: GraphConnector[] = [];
afterAll(async () => {
  for (const c of open) await c.dispose();
});

/** Every weight random (LayerNorm scales and biases too, so the reference checks them). */
function randomWeights(config: ConnectorConfig, seed: number): ConnectorWeights {
  const rng = createRng(seed);
  const out: ConnectorWeights = {};
  for (const [name, dims] of Object.entries(connectorWeightShapes(normalizeConnectorConfig(config)))) {
    const t = createTensor('float32', dims);
    if (/norm_[a-z]+\.weight$/.test(name)) {
      rng.fillNormal(t.data, 0.2);
      for (let i = 0; i < t.data.length; i++) t.data[i] += 1;
    } else if (name.endsWith('.bias')) rng.fillNormal(t.data, 0.1);
    else rng.fillNormal(t.data, 1 / Math.sqrt(dims[dims.length - 1]));
    out[name] = t;
  }
  return out;
}

function randomFeatures(images: number, tokens: number, dim: number, seed: number): Tensor<'float32'> {
  const t = createTensor('float32', [images, tokens, dim]);
  createRng(seed).fillNormal(t.data, 1);
  return t;
}

type Ref = (x: Float64Array, tokens: number, w: Record<string, Tensor<'float32'>>) => Float64Array;

interface Case {
  name: string;
  config: ConnectorConfig;
  tokens: number;
  ref: Ref;
}

const cases: Case[] = [
  { name: 'linear', config: { kind: 'linear', inputDim: 48, outputDim: 40 }, tokens: 9, ref: (x, t, w) => linearRef(x, t, w) },
  { name: 'mlp2x_gelu', config: { kind: 'mlp', inputDim: 48, hiddenDim: 96, outputDim: 64 }, tokens: 16, ref: (x, t, w) => mlpRef(x, t, w) },
  {
    name: 'resampler (2 layers, 4 heads, 8 queries)',
    config: { kind: 'resampler', inputDim: 40, outputDim: 32, numQueries: 8, numHeads: 4, depth: 2, ffnMultiplier: 2, epsilon: 1e-5 },
    tokens: 25,
    ref: (x, t, w) => resamplerRef(x, t, w, { outputDim: 32, numQueries: 8, numHeads: 4, depth: 2, epsilon: 1e-5 }),
  },
  {
    name: 'avg-pool 2x2 + mlp',
    config: { kind: 'avg-pool', inputDim: 24, hiddenDim: 48, outputDim: 32, factor: 2 },
    tokens: 36,
    ref: (x, t, w) => avgPoolRef(x, t, 24, 2, w),
  },
  {
    name: 'pixel-shuffle 2x2 + mlp',
    config: { kind: 'pixel-shuffle', inputDim: 24, hiddenDim: 48, outputDim: 32, factor: 2 },
    tokens: 36,
    ref: (x, t, w) => pixelShuffleRef(x, t, 24, 2, w),
  },
  {
    name: 'pixel-shuffle 3x3 + mlp',
    config: { kind: 'pixel-shuffle', inputDim: 8, hiddenDim: 40, outputDim: 16, factor: 3 },
    tokens: 36,
    ref: (x, t, w) => pixelShuffleRef(x, t, 8, 3, w),
  },
];

describe('the reference itself (hand-worked; erf, gelu and linear are tested in @vlit/test-kit)', () => {
  it('average pooling and pixel shuffle rearrange a 2x2 grid as worked by hand before the MLP', () => {
    // One channel, tokens 1 2 / 3 4: pooling by 2 gives [2.5]; the shuffle gives one token [1, 2, 3, 4].
    const x = Float64Array.from([1, 2, 3, 4]);
    const w = (inDim: number) => ({
      'linear_1.weight': { dims: [2, inDim], data: Array.from({ length: 2 * inDim }, (_, i) => (i % 3) - 1) },
      'linear_1.bias': { dims: [2], data: [0.5, -0.25] },
      'linear_2.weight': { dims: [1, 2], data: [2, -1] },
      'linear_2.bias': { dims: [1], data: [0.125] },
    });
    expect(Array.from(avgPoolRef(x, 4, 1, 2, w(1)))).toEqual(Array.from(mlpRef(Float64Array.from([2.5]), 1, w(1))));
    expect(Array.from(pixelShuffleRef(x, 4, 1, 2, w(4)))).toEqual(Array.from(mlpRef(Float64Array.from([1, 2, 3, 4]), 1, w(4))));
    // mlp2x_gelu by hand: linear_1 of [2.5] with weights [-1, 0] and bias [0.5, -0.25] is [-2, -0.25].
    expect(mlpRef(Float64Array.from([2.5]), 1, w(1))[0]).toBeCloseTo(2 * -0.04550026389635842 - -0.10032341857926907 + 0.125, 14);
  });
});

interface Projected {
  connector: GraphConnector;
  weights: ConnectorWeights;
  x: Tensor<'float32'>;
  y: Tensor<'float32'>;
}
const IMAGES = 2;
const projections = new Map<string, Promise<Projected>>();
/** One case projected on one runtime, computed once and shared, so each test can run on its own. */
function projected(platform: (typeof platforms)[number], c: Case): Promise<Projected> {
  const key = `${platform} ${c.name}`;
  let p = projections.get(key);
  if (!p) {
    p = (async () => {
      const weights = randomWeights(c.config, 11);
      const connector = createConnector(c.config, { backend: runtimes[platform].backend, weights });
      open.push(connector);
      const x = randomFeatures(IMAGES, c.tokens, c.config.inputDim, 5);
      return { connector, weights, x, y: await connector.project(x) };
    })();
    projections.set(key, p);
  }
  return p;
}

describe.each(platforms)('runtime %s', (platform) => {
  it.for(cases.map((c) => [c.name, c] as const))('%s matches the float64 TypeScript reference within 1e-5', async ([, c], { annotate }) => {
    const { connector, weights, x, y } = await projected(platform, c);
    const images = IMAGES;
    const outTokens = connector.outputTokens(c.tokens);
    expect(y.dims).toEqual([images, outTokens, c.config.outputDim]);
    const per = c.tokens * c.config.inputDim;
    let worst = 0;
    for (let i = 0; i < images; i++) {
      const expected = c.ref(Float64Array.from(x.data.subarray(i * per, (i + 1) * per)), c.tokens, weights);
      const got = y.data.subarray(i * outTokens * c.config.outputDim, (i + 1) * outTokens * c.config.outputDim);
      const diff = maxAbsDiff(got, expected);
      worst = Math.max(worst, diff);
      expect(diff, `${c.name} image ${i}`).toBeLessThanOrEqual(1e-5);
    }
    await annotate(`[${x.dims.join(', ')}] -> [${y.dims.join(', ')}], max |diff| = ${worst.toExponential(2)}`);
  });
});

describe('node and web agree', () => {
  it('every connector within 1e-5 across runtimes', async ({ annotate }) => {
    let worst = 0;
    for (const c of cases) {
      const diff = maxAbsDiff((await projected('node', c)).y.data, (await projected('web', c)).y.data);
      worst = Math.max(worst, diff);
      expect(diff, c.name).toBeLessThanOrEqual(1e-5);
    }
    await annotate(`max |node - web| over all connectors = ${worst.toExponential(2)}`);
  });
});

describe('outputTokens', () => {
  const backend = runtimes.node.backend;
  it('equals the projected token count for every kind and several grids', async () => {
    const made = [
      createMlpConnector({ inputDim: 8, outputDim: 12 }, { backend }),
      createResamplerConnector({ inputDim: 8, outputDim: 12, numQueries: 5, numHeads: 3 }, { backend }),
      createAvgPoolConnector({ inputDim: 8, outputDim: 12 }, { backend }),
      createPixelShuffleConnector({ inputDim: 8, outputDim: 12 }, { backend }),
    ];
    open.push(...made);
    // LLaVA-1.5 at 336 px has 576 patch tokens: 576 (MLP), 5 (resampler), 144 (2x2 pooling).
    expect(made.map((m) => m.outputTokens(576))).toEqual([576, 5, 144, 144]);
    for (const m of made) {
      for (const tokens of [16, 64]) {
        const y = await m.project(randomFeatures(1, tokens, 8, tokens));
        expect(y.dims, `${m.id} ${tokens}`).toEqual([1, m.outputTokens(tokens), 12]);
      }
    }
  });

  it('a grid the pooling connectors cannot take is refused with a typed error', async () => {
    const pool = createAvgPoolConnector({ inputDim: 8, outputDim: 12 }, { backend });
    open.push(pool);
    expect(() => pool.outputTokens(15)).toThrowError(expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT' }));
    expect(() => pool.outputTokens(9)).toThrowError(/divisible by 2/);
    await expect(pool.project(randomFeatures(1, 15, 8, 1))).rejects.toMatchObject({ code: 'VLIT_TENSOR_SHAPE' });
  });
});

describe('dimension mismatches are typed errors', () => {
  const backend = runtimes.node.backend;
  it('features of the wrong width give TensorShapeError naming both sides', async () => {
    const c = createMlpConnector({ inputDim: 16, outputDim: 8 }, { backend });
    open.push(c);
    const err = await c.project(randomFeatures(1, 4, 12, 1)).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_TENSOR_SHAPE')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ left: 'features [1, 4, 12]', right: expect.stringContaining('inputDim 16') });
    await expect(c.project(createTensor('float32', [4, 16]))).rejects.toMatchObject({ code: 'VLIT_TENSOR_SHAPE' });
  });

  it('weights of the wrong shape give CompatibilityError', () => {
    const w = randomWeights({ kind: 'mlp', inputDim: 16, hiddenDim: 8, outputDim: 8 }, 1);
    expect(() => createMlpConnector({ inputDim: 12, hiddenDim: 8, outputDim: 8 }, { backend, weights: w })).toThrowError(
      expect.objectContaining({ code: 'VLIT_COMPATIBILITY' }),
    );
  });

  it('a checkpoint whose shapes disagree with the requested widths gives CompatibilityError naming the tensor', () => {
    const c = createMlpConnector({ inputDim: 16, hiddenDim: 8, outputDim: 8 }, { backend });
    const bytes = c.toSafetensors({ naming: 'hf-llava' });
    const err = (() => {
      try {
        loadConnector(bytes, { backend, config: { kind: 'mlp', inputDim: 24, hiddenDim: 8, outputDim: 8 }, file: 'model.safetensors' });
      } catch (e) {
        return e;
      }
    })();
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    expect(String((err as Error).message)).toContain('multi_modal_projector.linear_1.weight');
    expect((err as { details: { file?: string } }).details.file).toBe('model.safetensors');
  });

  it('a bad resampler head count is refused', () => {
    expect(() => createResamplerConnector({ inputDim: 8, outputDim: 10, numQueries: 4, numHeads: 3 }, { backend })).toThrowError(
      expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT' }),
    );
  });
});

describe('weights: seeds, safetensors, Hugging Face LLaVA names', () => {
  const backend = runtimes.node.backend;
  const dir = mkdtempSync(join(tmpdir(), 'vlit-connectors-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the same seed gives the same weights, another seed different ones', () => {
    const a = createMlpConnector({ inputDim: 8, outputDim: 6 }, { backend, seed: 3 });
    const b = createMlpConnector({ inputDim: 8, outputDim: 6 }, { backend, seed: 3 });
    const c = createMlpConnector({ inputDim: 8, outputDim: 6 }, { backend, seed: 4 });
    expect(Array.from(a.weights['linear_2.weight'].data)).toEqual(Array.from(b.weights['linear_2.weight'].data));
    expect(Array.from(a.weights['linear_2.weight'].data)).not.toEqual(Array.from(c.weights['linear_2.weight'].data));
  });

  it("the graph's initializers carry the weights under their names, in torch layout", () => {
    const c = createMlpConnector({ inputDim: 8, hiddenDim: 5, outputDim: 6 }, { backend, seed: 1 });
    const inits = new Map(listInitializers(c.toModel()).map((i) => [i.name, i]));
    expect(inits.get('linear_1.weight')?.dims).toEqual([5, 8]);
    expect(inits.get('linear_2.bias')?.dims).toEqual([6]);
  });

  it('buildConnectorModel fills defaults as createConnector does: a resampler written without depth keeps its one layer', () => {
    const written = { kind: 'resampler', inputDim: 8, outputDim: 6, numQueries: 3 } as const;
    const weights = initConnectorWeights(normalizeConnectorConfig(written), 2);
    const names = listInitializers(buildConnectorModel(written, weights)).map((i) => i.name);
    // Every weight initConnectorWeights made for the default depth of 1 is in the graph; none is dropped.
    expect(names).toEqual(expect.arrayContaining(Object.keys(weights)));
    expect(names).toContain('layers.0.attn.q_proj.weight');
  });

  it('hf-llava names: the four tensor names, [out, in] layout, and numpy (torch semantics) agrees', async () => {
    const c = createMlpConnector(
      { inputDim: 20, hiddenDim: 24, outputDim: 24 },
      { backend, weights: randomWeights({ kind: 'mlp', inputDim: 20, hiddenDim: 24, outputDim: 24 }, 2) },
    );
    open.push(c);
    const bytes = c.toSafetensors({ naming: 'hf-llava' });
    const parsed = parseSafetensors(bytes);
    expect([...parsed.tensors.keys()].sort()).toEqual([
      'multi_modal_projector.linear_1.bias',
      'multi_modal_projector.linear_1.weight',
      'multi_modal_projector.linear_2.bias',
      'multi_modal_projector.linear_2.weight',
    ]);
    expect(parsed.get('multi_modal_projector.linear_1.weight').shape).toEqual([24, 20]);
    const x = randomFeatures(2, 6, 20, 9);
    const y = await c.project(x);
    writeFileSync(join(dir, 'ckpt.safetensors'), bytes);
    writeFileSync(join(dir, 'x.safetensors'), serializeSafetensors({ features: x }));
    const script = new URL('../parity/llava_projector.py', import.meta.url).pathname;
    execFileSync('/usr/bin/python3', [script, join(dir, 'ckpt.safetensors'), join(dir, 'x.safetensors'), join(dir, 'y.safetensors')], { stdio: 'pipe' });
    const numpy = parseSafetensors(readFileSync(join(dir, 'y.safetensors'))).get('projected');
    expect(numpy.shape).toEqual([2, 6, 24]);
    expect(maxAbsDiff(y.data, numpy.toFloat32())).toBeLessThanOrEqual(1e-5);
  });

  it('loads a Hugging Face LLaVA checkpoint (bf16, other tensors beside the projector) with widths from the shapes', async () => {
    const rng = createRng(21);
    const shapes: Record<string, number[]> = {
      'multi_modal_projector.linear_1.weight': [32, 16],
      'multi_modal_projector.linear_1.bias': [32],
      'multi_modal_projector.linear_2.weight': [32, 32],
      'multi_modal_projector.linear_2.bias': [32],
      'language_model.model.embed_tokens.weight': [10, 32],
      'vision_tower.vision_model.post_layernorm.weight': [16],
    };
    const raw: Record<string, ReturnType<typeof encodeSafetensorsTensor>> = {};
    const widened: Record<string, Float32Array> = {};
    for (const [name, dims] of Object.entries(shapes)) {
      const t = createTensor('float32', dims);
      rng.fillNormal(t.data, 0.2);
      raw[name] = encodeSafetensorsTensor(t, 'BF16');
      widened[name] = parseSafetensors(serializeSafetensors({ t: raw[name] }))
        .get('t')
        .toFloat32();
    }
    const bytes = serializeSafetensors(raw);
    const c = loadConnector(bytes, { backend, config: { kind: 'mlp' } });
    open.push(c);
    expect([c.inputDim, c.outputDim, c.config.kind === 'mlp' && c.config.hiddenDim]).toEqual([16, 32, 32]);
    const x = randomFeatures(1, 4, 16, 3);
    const y = await c.project(x);
    const w = (n: string, dims: number[]) => ({ dims, data: widened[`multi_modal_projector.${n}`] });
    const expected = mlpRef(Float64Array.from(x.data), 4, {
      'linear_1.weight': w('linear_1.weight', [32, 16]),
      'linear_1.bias': w('linear_1.bias', [32]),
      'linear_2.weight': w('linear_2.weight', [32, 32]),
      'linear_2.bias': w('linear_2.bias', [32]),
    });
    expect(maxAbsDiff(y.data, expected)).toBeLessThanOrEqual(1e-5);
  });

  it('original LLaVA names (model.mm_projector.0/2) round trip', () => {
    const c = createMlpConnector({ inputDim: 8, hiddenDim: 6, outputDim: 6 }, { backend, seed: 7 });
    const bytes = c.toSafetensors({ naming: 'llava' });
    expect([...parseSafetensors(bytes).tensors.keys()].sort()).toEqual([
      'model.mm_projector.0.bias',
      'model.mm_projector.0.weight',
      'model.mm_projector.2.bias',
      'model.mm_projector.2.weight',
    ]);
    const back = loadConnector(bytes, { backend });
    for (const name of Object.keys(c.weights)) expect(Array.from(back.weights[name].data), name).toEqual(Array.from(c.weights[name].data));
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: file round trip (vlit and hf-llava naming) gives identical outputs', async (_n, cs) => {
    const c = createConnector(cs.config, { backend, seed: 'round-trip' });
    open.push(c);
    const x = randomFeatures(1, cs.tokens, cs.config.inputDim, 4);
    const before = await c.project(x);
    for (const naming of ['vlit', 'hf-llava'] as const) {
      const path = join(dir, `${cs.config.kind}-${naming}.safetensors`);
      await writeConnectorFile(path, c, { naming });
      const back = await readConnectorFile(path, { backend });
      open.push(back);
      expect(back.config).toEqual(c.config);
      const after = await back.project(x);
      expect(Array.from(after.data)).toEqual(Array.from(before.data));
    }
  });
});
