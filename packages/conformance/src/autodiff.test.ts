/**
 * Reverse-mode autodiff (@vlit/graph buildGradientModel) checked for real on onnxruntime: every
 * gradient rule against central finite differences of the forward model in float64 (float32 where
 * onnxruntime has no float64 kernel, then also against torch autograd in float64), the same gradient
 * models on the wasm runtime, and end-to-end parity with torch for an MLP projector + masked
 * cross-entropy and a Llama-style attention block.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRng, createTensor, parseSafetensors, serializeSafetensors, type InferenceSession, type Rng, type Tensor } from '@vlit/core';
import {
  addMaskedCrossEntropy,
  buildGradientModel,
  createGraph,
  encodeModel,
  listInitializers,
  listOutputs,
  promoteInitializers,
  type GraphBuilder,
  type OnnxModel,
  type Value,
} from '@vlit/graph';
import { maxAbsDiff } from '@vlit/test-kit';
import { createRuntimePair, runReferencePython } from '@vlit/test-kit/node';

/** How a case declares its values. */
export interface CaseBuilder {
  readonly g: GraphBuilder;
  readonly dtype: 'float32' | 'float64';
  /** A graph input: `dims` may be symbolic, `concrete` is what the test feeds. */
  input(name: string, dims: (number | string)[], concrete: number[], options?: { positive?: boolean }): Value;
  /** An int64 graph input with the given contents. */
  intInput(name: string, dims: (number | string)[], concrete: number[], values: number[]): Value;
  /** A bool graph input with the given contents. */
  boolInput(name: string, dims: (number | string)[], concrete: number[], values: boolean[]): Value;
  /** A random weight (an initializer, promoted to an input for the check). */
  param(name: string, dims: number[], options?: { positive?: boolean }): Value;
  /** A constant tensor the loss does not differentiate. */
  constant(name: string, dims: number[], values: number[]): Value;
}

/** One gradient check. */
export interface GradCase {
  name: string;
  /** float64 unless onnxruntime lacks the op's float64 kernel. */
  dtype?: 'float32' | 'float64';
  wrt: string[];
  build(b: CaseBuilder): Value;
  /** Key of the torch reference in py/autodiff_reference.py, for ops whose float64 kernels onnxruntime lacks. */
  torch?: string;
}

/** A case made concrete: the forward model with every weight fed, and the feeds. */
export interface PreparedCase {
  model: OnnxModel;
  feeds: Record<string, Tensor>;
}

/** Build the case's forward graph with loss `loss` = sum(sin(out)) and random feeds from `seed`. */
export function prepareCase(c: GradCase, seed: number): PreparedCase {
  const rng: Rng = createRng(`${c.name}:${seed}`);
  const dtype = c.dtype ?? 'float64';
  const g = createGraph({ name: c.name, opset: 20 });
  const feeds: Record<string, Tensor> = {};
  const params: string[] = [];
  const random = (dims: number[], positive?: boolean): Tensor => {
    const n = dims.reduce((p, q) => p * q, 1);
    const data = rng.fillNormal(new Float64Array(n));
    if (positive) for (let i = 0; i < n; i++) data[i] = 0.5 + Math.abs(data[i]);
    return dtype === 'float64' ? createTensor('float64', dims, data) : createTensor('float32', dims, Float32Array.from(data));
  };
  const b: CaseBuilder = {
    g,
    dtype,
    input(name, dims, concrete, options = {}) {
      feeds[name] = random(concrete, options.positive);
      return g.input(name, dtype, dims);
    },
    intInput(name, dims, concrete, values) {
      feeds[name] = createTensor(
        'int64',
        concrete,
        values.map((v) => BigInt(v)),
      );
      return g.input(name, 'int64', dims);
    },
    boolInput(name, dims, concrete, values) {
      feeds[name] = createTensor(
        'bool',
        concrete,
        Uint8Array.from(values, (v) => (v ? 1 : 0)),
      );
      return g.input(name, 'bool', dims);
    },
    param(name, dims, options = {}) {
      params.push(name);
      return g.initializer(name, random(dims, options.positive));
    },
    constant(name, dims, values) {
      return g.initializer(name, dtype === 'float64' ? createTensor('float64', dims, values) : createTensor('float32', dims, values));
    },
  };
  const out = c.build(b);
  g.output(g.op('ReduceSum', [g.op('Sin', [out])], { keepdims: 0 }), 'loss');
  const promoted = promoteInitializers(g.toModel(), params);
  return { model: promoted.model, feeds: { ...feeds, ...promoted.values } };
}

const T = (g: GraphBuilder, v: Value) => g.transpose(v, [1, 0]);

/** Every gradient check. */
export function gradCases(): GradCase[] {
  return [
    {
      name: 'Add with broadcasting (symbolic batch, [4] and [3, 1] weights)',
      wrt: ['x', 'w', 'b'],
      build: ({ g, input, param }) => g.add(g.add(input('x', ['batch', 3, 4], [2, 3, 4]), param('w', [4])), param('b', [3, 1])),
    },
    {
      name: 'Sub with broadcasting both ways',
      wrt: ['x', 'w'],
      build: ({ g, input, param }) => g.sub(param('w', [1, 4]), g.sub(input('x', ['batch', 3, 4], [2, 3, 4]), param('v', [3, 1]))),
    },
    {
      name: 'Mul and Div with broadcasting; x used twice (gradients summed)',
      wrt: ['x', 'w', 'v'],
      build: ({ g, input, param }) => {
        const x = input('x', ['batch', 'seq', 4], [2, 3, 4]);
        const den = g.add(g.mul(param('v', [4]), param('v2', [4])), 2);
        return g.div(g.mul(g.mul(x, param('w', [1, 1, 4])), x), den);
      },
    },
    {
      name: 'Div by a value on the gradient path',
      wrt: ['x', 'v'],
      build: ({ g, input, param }) => g.div(input('x', [3, 4], [3, 4]), param('v', [3, 1], { positive: true })),
    },
    {
      name: 'Neg, Sqrt, Sigmoid, Tanh, Exp, Log, Reciprocal, Sin, Cos, Relu chained',
      wrt: ['x'],
      build: ({ g, input }) => {
        const x = input('x', ['batch', 5], [3, 5]);
        const pos = g.add(g.mul(x, x), 0.5);
        const a = g.add(g.sqrt(pos), g.op('Log', [pos]));
        const b2 = g.add(g.sigmoid(x), g.tanh(g.neg(x)));
        const c = g.add(g.exp(g.mul(x, 0.3)), g.op('Reciprocal', [pos]));
        const d = g.add(g.op('Cos', [x]), g.op('Sin', [g.mul(x, 2)]));
        return g.add(g.add(g.mul(a, b2), c), g.add(d, g.relu(g.sub(x, 0.1))));
      },
    },
    {
      name: 'Gelu tanh approximation',
      wrt: ['x', 'w'],
      build: ({ g, input, param }) => g.gelu(g.mul(input('x', ['batch', 6], [2, 6]), param('w', [6])), { approximate: 'tanh' }),
    },
    {
      name: 'Gelu exact (float32: no float64 Erf kernel)',
      dtype: 'float32',
      torch: 'gelu',
      wrt: ['x', 'w'],
      build: ({ g, input, param }) => g.gelu(g.mul(input('x', ['batch', 6], [2, 6]), param('w', [6]))),
    },
    {
      name: 'Erf (float32: no float64 Erf kernel)',
      dtype: 'float32',
      torch: 'erf',
      wrt: ['x', 'w'],
      build: ({ g, input, param }) => g.erf(g.mul(input('x', ['batch', 6], [2, 6]), param('w', [6]))),
    },
    {
      name: 'quick-GELU decomposition x * sigmoid(1.702 x)',
      wrt: ['x'],
      build: ({ g, input }) => {
        const x = input('x', [3, 4], [3, 4]);
        return g.mul(x, g.sigmoid(g.mul(x, 1.702)));
      },
    },
    {
      name: 'MatMul 2-D',
      wrt: ['a', 'b'],
      build: ({ g, input, param }) => g.matMul(input('a', [3, 4], [3, 4]), param('b', [4, 5])),
    },
    {
      name: 'MatMul [B, S, K] x [K, N] with symbolic batch and sequence (linear layer, torch weight layout)',
      wrt: ['x', 'w'],
      build: ({ g, input, param }) => g.matMul(input('x', ['batch', 'seq', 4], [2, 3, 4]), T(g, param('w', [5, 4]))),
    },
    {
      name: 'MatMul batch broadcasting [2, 1, 3, 4] x [3, 4, 5]',
      wrt: ['a', 'b'],
      build: ({ g, input, param }) => g.matMul(input('a', [2, 1, 3, 4], [2, 1, 3, 4]), param('b', [3, 4, 5])),
    },
    {
      name: 'MatMul rank 1 on either side',
      wrt: ['v', 'a', 'u'],
      build: ({ g, input, param }) => {
        const a = input('a', ['batch', 3, 4], [2, 3, 4]);
        const left = g.matMul(param('v', [3]), a); // [batch, 4]
        return g.matMul(left, param('u', [4])); // [batch]
      },
    },
    {
      name: 'MatMul rank 5 (grouped-KV attention scores and context)',
      wrt: ['q', 'k', 'v'],
      build: ({ g, input }) => {
        // q [b, kvh, groups, s, hd] x k^T [b, kvh, 1, hd, t], then probs x v [b, kvh, 1, t, hd].
        const q = input('q', ['batch', 2, 2, 'seq', 3], [2, 2, 2, 4, 3]);
        const k = input('k', ['batch', 2, 1, 'seq', 3], [2, 2, 1, 4, 3]);
        const v = input('v', ['batch', 2, 1, 'seq', 3], [2, 2, 1, 4, 3]);
        const scores = g.mul(g.matMul(q, g.transpose(k, [0, 1, 2, 4, 3])), 1 / Math.sqrt(3));
        return g.matMul(g.softmax(scores, { axis: -1 }), v);
      },
    },
    {
      name: 'Gemm with transA, transB, alpha, beta and a broadcast C',
      wrt: ['a', 'b', 'c'],
      build: ({ g, input, param }) =>
        g.gemm(input('a', [4, 3], [4, 3]), param('b', [5, 4]), param('c', [5]), { transA: true, transB: true, alpha: 0.7, beta: 1.3 }),
    },
    {
      name: 'Transpose',
      wrt: ['x'],
      build: ({ g, input }) => {
        const x = input('x', ['batch', 3, 4], [2, 3, 4]);
        return g.mul(g.transpose(x, [2, 0, 1]), g.transpose(g.transpose(x), [0, 2, 1])); // both [4, b, 3]
      },
    },
    {
      name: 'Reshape with 0 and -1, Unsqueeze, Squeeze, Flatten',
      wrt: ['x', 'w'],
      build: ({ g, input, param }) => {
        const x = input('x', ['batch', 'seq', 6], [2, 3, 6]);
        const heads = g.transpose(g.reshape(x, [0, 0, 2, -1]), [0, 2, 1, 3]); // [b, 2, s, 3]
        const back = g.reshape(g.transpose(heads, [0, 2, 1, 3]), [0, 0, 6]);
        const u = g.squeeze(g.unsqueeze(g.mul(back, param('w', [6])), [1]), [1]);
        return g.flatten(u, { axis: 1 });
      },
    },
    {
      name: 'Slice (RoPE halves, negative start, symbolic sequence)',
      wrt: ['x'],
      build: ({ g, input }) => {
        const x = input('x', ['batch', 'seq', 6], [2, 4, 6]);
        const first = g.slice(x, { starts: [0], ends: [3], axes: [2] });
        const second = g.slice(x, { starts: [-3], ends: [6], axes: [2] });
        const tail = g.slice(x, { starts: [1], ends: [Number.MAX_SAFE_INTEGER], axes: [1] }); // [b, s-1, 6]
        const rotated = g.concat([g.neg(second), first], 2);
        return g.add(g.slice(g.mul(x, rotated), { starts: [1], ends: [Number.MAX_SAFE_INTEGER], axes: [1] }), tail);
      },
    },
    {
      name: 'Slice with an end computed at run time (position embeddings cut to the sequence length)',
      wrt: ['positions', 'x'],
      build: ({ g, input, param }) => {
        const x = input('x', ['batch', 'seq', 4], [2, 3, 4]);
        const seq = g.shape(x, { start: 1, end: 2 });
        const zero = g.constant(createTensor('int64', [1], [0n]));
        return g.add(x, g.op('Slice', [param('positions', [6, 4]), zero, seq, zero]));
      },
    },
    {
      name: 'Concat along a symbolic axis (past keys + new keys)',
      wrt: ['past', 'k'],
      build: ({ g, input }) => g.concat([input('past', ['batch', 'past', 4], [2, 3, 4]), input('k', ['batch', 'seq', 4], [2, 2, 4])], 1),
    },
    {
      name: 'Expand (constant shape, and a shape built from Shape at run time)',
      wrt: ['w', 'cls'],
      build: ({ g, input, param }) => {
        const x = input('x', ['batch', 3, 4], [2, 3, 4]);
        const a = g.mul(g.expand(param('w', [3, 1]), [3, 4]), x);
        const shape = g.concat([g.shape(x, { start: 0, end: 1 }), g.constant(createTensor('int64', [2], [1n, 4n]))], 0);
        return g.concat([g.expand(param('cls', [1, 1, 4]), shape), a], 1);
      },
    },
    {
      name: 'ReduceMean (keepdims 1 and 0, symbolic axis) and ReduceSum',
      wrt: ['x'],
      build: ({ g, input }) => {
        const x = input('x', ['batch', 'seq', 4], [2, 3, 4]);
        const m1 = g.reduceMean(x, [-1], { keepdims: true }); // [b, s, 1]
        const m2 = g.reduceMean(x, [1], { keepdims: false }); // [b, 4] over the symbolic axis
        const s = g.op('ReduceSum', [x, g.constant(createTensor('int64', [2], [0n, 2n]))], { keepdims: 0 }); // [s]
        return g.add(g.add(g.mul(x, m1), g.unsqueeze(m2, [1])), g.unsqueeze(g.unsqueeze(s, [0]), [2]));
      },
    },
    {
      name: 'L2 normalisation with ReduceSumSquare (as the CLIP/SigLIP loaders emit it)',
      wrt: ['x'],
      build: ({ g, input }) => {
        const x = input('x', ['batch', 5], [3, 5]);
        return g.div(x, g.sqrt(g.op('ReduceSumSquare', [x, g.constant(createTensor('int64', [1], [-1n]))], { keepdims: 1 })));
      },
    },
    {
      name: 'Softmax (last axis and axis 1) and LogSoftmax',
      wrt: ['x'],
      build: ({ g, input }) => {
        const x = input('x', ['batch', 3, 4], [2, 3, 4]);
        return g.add(g.add(g.softmax(x, { axis: -1 }), g.softmax(g.mul(x, 2), { axis: 1 })), g.op('LogSoftmax', [x], { axis: -1 }));
      },
    },
    {
      name: 'LayerNormalization (axis -1, and axis 1 over two dims)',
      wrt: ['x', 'scale', 'bias', 'scale2'],
      build: ({ g, input, param }) => {
        const x = input('x', ['batch', 3, 4], [2, 3, 4]);
        const a = g.layerNormalization(x, param('scale', [4]), param('bias', [4]), { epsilon: 1e-5 });
        const b2 = g.layerNormalization(g.mul(x, 3), param('scale2', [3, 4]), null, { axis: 1, epsilon: 1e-3 });
        return g.add(a, b2);
      },
    },
    {
      name: 'RMSNorm as the Llama graph decomposes it',
      wrt: ['x', 'weight'],
      build: ({ g, input, param }) => {
        const x = input('x', ['batch', 'seq', 4], [2, 3, 4]);
        const ms = g.reduceMean(g.mul(x, x), [-1], { keepdims: true });
        const inv = g.div(1, g.sqrt(g.add(ms, 1e-6)));
        return g.mul(g.mul(x, inv), param('weight', [4]));
      },
    },
    {
      name: 'Conv patch embedding (float32: no float64 Conv kernel)',
      dtype: 'float32',
      torch: 'conv',
      wrt: ['pixels', 'weight', 'bias'],
      build: ({ g, input, param }) =>
        g.conv(input('pixels', ['batch', 3, 8, 8], [2, 3, 8, 8]), param('weight', [5, 3, 4, 4]), param('bias', [5]), { strides: [4, 4], kernelShape: [4, 4] }),
    },
    {
      name: 'AveragePool non-overlapping (float32: no float64 AveragePool kernel)',
      dtype: 'float32',
      torch: 'avgpool',
      wrt: ['x', 'w'],
      build: ({ g, input, param }) =>
        g.op('AveragePool', [g.mul(input('x', ['batch', 3, 4, 6], [2, 3, 4, 6]), param('w', [3, 1, 1]))], { kernel_shape: [2, 3], strides: [2, 3] }),
    },
    {
      name: 'Gather embedding lookup (repeated and negative ids) and Gather on axis 1',
      wrt: ['table', 'x'],
      build: ({ g, param, input, intInput }) => {
        const ids = intInput('ids', ['batch', 'seq'], [2, 3], [1, 4, 1, -1, 0, 1]);
        const emb = g.gather(param('table', [5, 4]), ids, { axis: 0 }); // [b, s, 4]
        const cols = g.gather(input('x', ['batch', 3, 4], [2, 3, 4]), g.constant(createTensor('int64', [2], [3n, 3n])), { axis: 2 }); // [b, 3, 2]
        return g.add(emb, g.concat([cols, cols], 2));
      },
    },
    {
      name: 'Gather embedding lookup in float32 (ScatterND add kernel)',
      dtype: 'float32',
      wrt: ['table'],
      build: ({ g, param, intInput }) => g.gather(param('table', [5, 4]), intInput('ids', ['batch', 'seq'], [2, 3], [1, 4, 1, 2, 0, 1]), { axis: 0 }),
    },
    {
      name: 'Where (attention masking) with both branches differentiated',
      wrt: ['x', 'y'],
      build: ({ g, input, boolInput }) => {
        const keep = boolInput('keep', [3, 4], [3, 4], [true, false, true, true, false, true, true, true, true, true, false, true]);
        const masked = g.where(keep, input('x', ['batch', 3, 4], [2, 3, 4]), -1e9);
        return g.add(g.softmax(masked), g.where(keep, 0, input('y', [3, 4], [3, 4])));
      },
    },
    {
      name: 'Pow with a constant exponent and with a differentiated exponent; Identity; Cast',
      wrt: ['x', 'p'],
      build: ({ g, input, param }) => {
        const x = input('x', ['batch', 4], [2, 4]);
        const pos = g.add(g.mul(x, x), 0.5);
        const a = g.add(g.pow(x, 2), g.pow(pos, 1.5));
        const b2 = g.pow(pos, g.identity(param('p', [4])));
        return g.cast(g.add(a, b2), 'float64');
      },
    },
    {
      name: 'masked next-token cross-entropy (ignore_index -100), logits from a projection',
      wrt: ['h', 'head'],
      build: ({ g, input, param, intInput }) => {
        const logits = g.matMul(input('h', ['batch', 'seq', 3], [2, 4, 3]), param('head', [3, 5]));
        const labels = intInput('labels', ['batch', 'seq'], [2, 4], [1, -100, 3, 0, 4, 2, -100, -100]);
        return addMaskedCrossEntropy(g, logits, labels);
      },
    },
  ];
}

const runtimes = createRuntimePair();
const SLOW = { timeout: 300_000 };
const dir = mkdtempSync(join(tmpdir(), 'vlit-autodiff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function session(model: OnnxModel, platform: 'node' | 'web' = 'node'): Promise<InferenceSession> {
  // onnxruntime's extended optimisations fuse x * sigmoid(a x) into com.microsoft.QuickGelu, which
  // has only a float32 kernel, even in float64 graphs; basic optimisations leave float64 graphs alone.
  const f64 = listOutputs(model).some((o) => o.dtype === 'float64');
  return runtimes[platform].backend.createSession(encodeModel(model), f64 ? { graphOptimizationLevel: 'basic' } : undefined);
}

function values(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number>, Number);
}

function withElement(t: Tensor, i: number, delta: number): Tensor {
  const data = (t.data as Float32Array | Float64Array).slice();
  data[i] += delta;
  return createTensor(t.dtype as 'float32' | 'float64', [...t.dims], data);
}

/** Up to `count` element positions of a tensor of n elements: all when few, else a seeded sample. */
function positions(n: number, count: number, rng: Rng): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  return rng.sample(
    Array.from({ length: n }, (_, i) => i),
    count,
  );
}

interface Checked {
  /** Analytic gradients from the gradient model on onnxruntime-node. */
  grads: Record<string, Tensor>;
  loss: number;
  /** Worst |fd - analytic| / (atol + rtol * max(|fd|, |analytic|)) over the checked elements; <= 1 passes. */
  worst: number;
  checked: number;
}

/**
 * Central differences: float64 with h = 1e-5 (truncation ~h^2 = 1e-10, rounding ~1e-16 |L| / h), so
 * atol 1e-7 + rtol 1e-6. float32 with h = 1e-2: rounding of the loss (~1e-7 |L|, |L| < 30) over 2h
 * gives ~2e-4 and truncation h^2/6 |f'''| ~2e-5, so atol 1e-3 + rtol 5e-3; the float32 cases are
 * checked tightly against torch's float64 autograd as well.
 */
async function finiteDifferenceCheck(c: GradCase): Promise<Checked> {
  const { model, feeds } = prepareCase(c, 1);
  const gradModel = buildGradientModel(model, { loss: 'loss', wrt: c.wrt });
  const f64 = (c.dtype ?? 'float64') === 'float64';
  const h = f64 ? 1e-5 : 1e-2;
  const atol = f64 ? 1e-7 : 1e-3;
  const rtol = f64 ? 1e-6 : 5e-3;
  const gs = await session(gradModel);
  const fs = await session(model);
  try {
    const out = await gs.run(feeds);
    const grads: Record<string, Tensor> = {};
    for (const w of c.wrt) {
      grads[w] = out[`grad.${w}`];
      expect(grads[w].dims, `grad.${w} dims`).toEqual(feeds[w].dims);
      expect(grads[w].dtype).toBe(feeds[w].dtype);
    }
    const lossAt = async (name: string, t: Tensor) => Number((await fs.run({ ...feeds, [name]: t })).loss.data[0]);
    const base = Number(out.loss.data[0]);
    expect(Math.abs(base - (await lossAt(c.wrt[0], feeds[c.wrt[0]])))).toBeLessThanOrEqual(f64 ? 1e-12 : 1e-5);
    const rng = createRng(`fd:${c.name}`);
    let worst = 0;
    let checked = 0;
    for (const w of c.wrt) {
      const g = values(grads[w]);
      for (const i of positions(g.length, 16, rng)) {
        const fd = ((await lossAt(w, withElement(feeds[w], i, h))) - (await lossAt(w, withElement(feeds[w], i, -h)))) / (2 * h);
        const ratio = Math.abs(fd - g[i]) / (atol + rtol * Math.max(Math.abs(fd), Math.abs(g[i])));
        if (ratio > worst) worst = ratio;
        checked++;
      }
    }
    return { grads, loss: base, worst, checked };
  } finally {
    await gs.release();
    await fs.release();
  }
}

/** torch autograd (float64) on the same feeds: loss and grad.<name> for each wrt. */
function torchReference(key: string, feeds: Record<string, Tensor>, wrt: readonly string[]): Record<string, number[]> {
  const inPath = join(dir, `${key}-in.safetensors`);
  const outPath = join(dir, `${key}-out.safetensors`);
  writeFileSync(inPath, serializeSafetensors(feeds));
  runReferencePython(new URL('./py/autodiff_reference.py', import.meta.url).pathname, [inPath, outPath, key, wrt.join(',')], { timeoutMs: 300_000 });
  const file = parseSafetensors(readFileSync(outPath));
  const result: Record<string, number[]> = {};
  for (const [name, entry] of file.tensors) result[name] = values(entry.toTensor());
  return result;
}

/** max |a - b| / max |b|: the error relative to the reference's scale. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return maxAbsDiff(Array.from(a), Array.from(b)) / Math.max(scale, 1e-30);
}

const cases = gradCases();

describe('every gradient rule matches central finite differences on onnxruntime-node', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', SLOW, async (_name, c) => {
    const r = await finiteDifferenceCheck(c);
    expect(r.checked).toBeGreaterThan(0);
    expect(r.worst, `worst error ratio over ${r.checked} elements`).toBeLessThanOrEqual(1);
    if (c.torch) {
      // float32 gradients against torch autograd in float64 on the same inputs.
      const { feeds } = prepareCase(c, 1);
      const ref = torchReference(c.torch, feeds, c.wrt);
      expect(Math.abs(r.loss - ref.loss[0]) / Math.max(1, Math.abs(ref.loss[0]))).toBeLessThanOrEqual(1e-6);
      for (const w of c.wrt) expect(relativeError(values(r.grads[w]), ref[`grad.${w}`]), w).toBeLessThanOrEqual(2e-6);
    }
  });
});

describe('the same gradient models on onnxruntime-web (wasm)', () => {
  it('every case gives the native gradients (float64 within 1e-12, float32 within 1e-5 relative)', SLOW, async () => {
    for (const c of cases) {
      const { model, feeds } = prepareCase(c, 2);
      const gradModel = buildGradientModel(model, { loss: 'loss', wrt: c.wrt });
      const native = await session(gradModel, 'node');
      const web = await session(gradModel, 'web');
      const a = await native.run(feeds);
      const b = await web.run(feeds);
      await native.release();
      await web.release();
      for (const w of c.wrt) {
        const err = relativeError(values(b[`grad.${w}`]), values(a[`grad.${w}`]));
        expect(err, `${c.name}: grad.${w}`).toBeLessThanOrEqual((c.dtype ?? 'float64') === 'float64' ? 1e-12 : 1e-5);
      }
    }
  });
});

/** A torch-layout linear layer: x W^T (+ b). */
function linear(g: GraphBuilder, x: Value, w: Value, b?: Value): Value {
  const y = g.matMul(x, g.transpose(w, [1, 0]));
  return b ? g.add(y, b) : y;
}

describe('end to end against torch autograd (float64 reference)', () => {
  it(
    'MLP projector (Linear, exact GELU, Linear) + frozen LM head + masked next-token cross-entropy, float32: loss and every trained gradient within 1e-5 relative',
    SLOW,
    async () => {
      const rng = createRng('e2e-mlp');
      const [B, T, Din, Dh, D, V] = [2, 6, 8, 16, 12, 11];
      const f32 = (dims: number[], std = 0.5) =>
        createTensor('float32', dims, Float32Array.from(rng.fillNormal(new Float64Array(dims.reduce((p, q) => p * q, 1)), std)));
      const g = createGraph({ name: 'projector-ce', opset: 20 });
      const features = g.input('features', 'float32', ['batch', 'tokens', Din]);
      const labels = g.input('labels', 'int64', ['batch', 'tokens']);
      const w = {
        'fc1.weight': f32([Dh, Din]),
        'fc1.bias': f32([Dh], 0.1),
        'fc2.weight': f32([D, Dh]),
        'fc2.bias': f32([D], 0.1),
        'lm_head.weight': f32([V, D]),
      };
      const p = Object.fromEntries(Object.entries(w).map(([k, t]) => [k, g.initializer(k, t)]));
      const h = linear(g, g.gelu(linear(g, features, p['fc1.weight'], p['fc1.bias'])), p['fc2.weight'], p['fc2.bias']);
      const loss = addMaskedCrossEntropy(g, linear(g, h, p['lm_head.weight']), labels, { name: 'loss' });
      g.output(loss);
      const trained = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'];
      const promoted = promoteInitializers(g.toModel(), trained);
      const gradModel = buildGradientModel(promoted.model, { loss: 'loss', wrt: trained });
      // The frozen head stays an initializer and gets no gradient output.
      expect(listOutputs(gradModel).map((o) => o.name)).toEqual(['loss', ...trained.map((t) => `grad.${t}`)]);
      expect(listInitializers(gradModel).map((t) => t.name)).toContain('lm_head.weight');
      const labelValues = [-100, -100, 3, 7, 0, 10, -100, 5, -100, 2, 2, 9];
      const feeds: Record<string, Tensor> = {
        features: f32([B, T, Din], 1),
        labels: createTensor(
          'int64',
          [B, T],
          labelValues.map((v) => BigInt(v)),
        ),
        ...promoted.values,
      };
      const s = await session(gradModel);
      const out = await s.run(feeds);
      await s.release();
      const ref = torchReference('mlp_ce', { ...feeds, 'lm_head.weight': w['lm_head.weight'] }, trained);
      expect(Math.abs(Number(out.loss.data[0]) - ref.loss[0]) / Math.abs(ref.loss[0])).toBeLessThanOrEqual(1e-5);
      for (const name of trained) expect(relativeError(values(out[`grad.${name}`]), ref[`grad.${name}`]), name).toBeLessThanOrEqual(1e-5);
    },
  );

  it(
    'Llama-style attention block (RMSNorm, RoPE, grouped-KV rank-5 attention, causal mask, residual), float64: gradients within 1e-9 relative',
    SLOW,
    async () => {
      const rng = createRng('e2e-llama');
      const [B, S, H, nh, kvh] = [2, 5, 8, 4, 2];
      const hd = H / nh;
      const groups = nh / kvh;
      const f64 = (dims: number[], std = 0.4) => createTensor('float64', dims, rng.fillNormal(new Float64Array(dims.reduce((p, q) => p * q, 1)), std));
      const g = createGraph({ name: 'llama-block', opset: 20 });
      const x = g.input('x', 'float64', ['batch', 'seq', H]);
      const w: Record<string, Tensor> = {
        'input_layernorm.weight': createTensor(
          'float64',
          [H],
          rng.fillNormal(new Float64Array(H), 0.1).map((v) => 1 + v),
        ),
        'q_proj.weight': f64([nh * hd, H]),
        'k_proj.weight': f64([kvh * hd, H]),
        'v_proj.weight': f64([kvh * hd, H]),
        'o_proj.weight': f64([H, nh * hd]),
      };
      const p = Object.fromEntries(Object.entries(w).map(([k, t]) => [k, g.initializer(k, t)]));
      // The same decomposition as @vlit/models' Llama graph, in float64.
      const ms = g.reduceMean(g.mul(x, x), [-1], { keepdims: true });
      const normed = g.mul(g.mul(x, g.div(1, g.sqrt(g.add(ms, 1e-6)))), p['input_layernorm.weight']);
      const seqLen = g.shape(x, { start: 1, end: 2 });
      const pos = g.cast(
        g.op('Range', [g.constant(createTensor('int64', [], [0n])), g.squeeze(seqLen, [0]), g.constant(createTensor('int64', [], [1n]))]),
        'float64',
      );
      const invFreq = Array.from({ length: hd / 2 }, (_, j) => 1 / 10000 ** ((2 * j) / hd));
      const freqs = g.mul(g.unsqueeze(pos, [1]), g.constant(createTensor('float64', [hd / 2], invFreq)));
      const angles = g.concat([freqs, freqs], -1);
      const cos = g.op('Cos', [angles]);
      const sin = g.op('Sin', [angles]);
      const heads = (v: Value, n: number) => g.transpose(g.reshape(v, [0, 0, n, hd]), [0, 2, 1, 3]);
      const rope = (t: Value) => {
        const rotated = g.concat([g.neg(g.slice(t, { starts: [hd / 2], ends: [hd], axes: [3] })), g.slice(t, { starts: [0], ends: [hd / 2], axes: [3] })], 3);
        return g.add(g.mul(t, cos), g.mul(rotated, sin));
      };
      const q = rope(heads(linear(g, normed, p['q_proj.weight']), nh));
      const k = rope(heads(linear(g, normed, p['k_proj.weight']), kvh));
      const v = heads(linear(g, normed, p['v_proj.weight']), kvh);
      const q5 = g.reshape(q, [0, kvh, groups, -1, hd]);
      const k5 = g.unsqueeze(k, [2]);
      const v5 = g.unsqueeze(v, [2]);
      const idx = g.op('Range', [g.constant(createTensor('int64', [], [0n])), g.squeeze(seqLen, [0]), g.constant(createTensor('int64', [], [1n]))]);
      const causal = g.op('LessOrEqual', [g.unsqueeze(idx, [0]), g.unsqueeze(idx, [1])]);
      const scores = g.where(causal, g.mul(g.matMul(q5, g.transpose(k5, [0, 1, 2, 4, 3])), 1 / Math.sqrt(hd)), -1e9);
      const ctx = g.matMul(g.softmax(scores, { axis: -1 }), v5);
      const merged = g.reshape(g.transpose(g.reshape(ctx, [0, nh, -1, hd]), [0, 2, 1, 3]), [0, 0, nh * hd]);
      const out = g.add(x, linear(g, merged, p['o_proj.weight']));
      g.output(g.op('ReduceSum', [g.op('Sin', [out])], { keepdims: 0 }), 'loss');
      const trained = Object.keys(w);
      const promoted = promoteInitializers(g.toModel(), trained);
      const wrt = ['x', ...trained];
      const gradModel = buildGradientModel(promoted.model, { loss: 'loss', wrt });
      const feeds: Record<string, Tensor> = { x: f64([B, S, H], 1), ...promoted.values };
      const s = await session(gradModel);
      const result = await s.run(feeds);
      await s.release();
      const ref = torchReference('llama_block', feeds, wrt);
      expect(Math.abs(Number(result.loss.data[0]) - ref.loss[0]) / Math.abs(ref.loss[0])).toBeLessThanOrEqual(1e-9);
      for (const name of wrt) expect(relativeError(values(result[`grad.${name}`]), ref[`grad.${name}`]), name).toBeLessThanOrEqual(1e-9);
    },
  );
});

describe('gradient model details on the runtime', () => {
  it('a wrt value the loss does not depend on gets a zero gradient of its shape; a value used twice gets the sum', SLOW, async () => {
    const g = createGraph({ name: 'zero', opset: 20 });
    const x = g.input('x', 'float64', ['n', 2]);
    g.input('unused', 'float64', ['m', 3]);
    g.output(g.op('ReduceSum', [g.add(g.mul(x, 3), g.mul(x, x))], { keepdims: 0 }), 'loss');
    const m = buildGradientModel(g.toModel(), { loss: 'loss', wrt: ['x', 'unused'] });
    const s = await session(m);
    const out = await s.run({ x: createTensor('float64', [2, 2], [1, -2, 0.5, 4]), unused: createTensor('float64', [4, 3], new Float64Array(12).fill(7)) });
    await s.release();
    expect(out['grad.unused'].dims).toEqual([4, 3]);
    expect(values(out['grad.unused'])).toEqual(new Array(12).fill(0));
    // d/dx (3x + x^2) = 3 + 2x, worked by hand.
    expect(values(out['grad.x'])).toEqual([5, -1, 4, 11]);
  });
});
