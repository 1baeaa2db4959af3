import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensor, isVlitError, parseSafetensors, serializeSafetensors, type KvCache, type Tensor } from '@vlit/core';
import { listInputs, listOutputs } from '@vlit/graph';
import { maxAbsDiff } from '@vlit/test-kit';
import { RUNTIME_PLATFORMS, createRuntimePair } from '@vlit/test-kit/node';
import {
  buildLlamaOnnx,
  createLlamaDecoder,
  initLlamaWeights,
  llamaWeightsFromSafetensors,
  loadOptimumDecoder,
  createMemorySource,
  type LlamaDecoder,
  type OnnxLanguageModel,
} from '../index.js';
import { exportLlamaDecoder, loadOptimumDecoderDir, readLlamaSafetensors } from '../node.js';
import { CONFIGS } from './testing/fixtures.js';
import { embedReference, llamaReference, rmsNorm, ropeInPlace } from './testing/llama-reference.js';

const runtimes = createRuntimePair();
const platforms = RUNTIME_PLATFORMS;
const configNames = Object.keys(CONFIGS);
const toRelease: OnnxLanguageModel[] = [];
afterAll(async () => {
  for (const m of toRelease) await m.dispose();
});

function ids(values: readonly number[]): Tensor<'int64'> {
  return createTensor(
    'int64',
    [1, values.length],
    values.map((v) => BigInt(v)),
  );
}

const PROMPT = [40, 69, 76, 76, 79, 12, 1, 87, 79, 82, 76, 68]; // "Hello, world" in the char vocabulary

describe('the reference itself (hand-worked)', () => {
  it('RMSNorm of [3, 4] with weight [1, 2] and eps 0 is [3, 8] / sqrt(12.5)', () => {
    const y = rmsNorm(Float64Array.from([3, 4]), 1, 2, [1, 2], 0);
    expect(y[0]).toBeCloseTo(3 / Math.sqrt(12.5), 14);
    expect(y[1]).toBeCloseTo(8 / Math.sqrt(12.5), 14);
  });

  it('RoPE rotates channel pairs (j, j + d/2) by pos * theta^(-2j/d)', () => {
    // d = 4, theta = 100: angles pos and pos / 10.
    const v = Float64Array.from([1, 2, 0, 1]);
    ropeInPlace(v, 0, 4, 3, 100);
    expect(v[0]).toBeCloseTo(Math.cos(3), 14); // (1, 0) rotated by 3
    expect(v[2]).toBeCloseTo(Math.sin(3), 14);
    expect(v[1]).toBeCloseTo(2 * Math.cos(0.3) - Math.sin(0.3), 14); // (2, 1) rotated by 0.3
    expect(v[3]).toBeCloseTo(Math.cos(0.3) + 2 * Math.sin(0.3), 14);
  });

  it('RoPE makes q·k depend only on the relative position', () => {
    const q = Float64Array.from([0.3, -1.2, 0.5, 2.0, 0.7, -0.1]);
    const k = Float64Array.from([1.1, 0.4, -0.6, 0.2, -1.5, 0.9]);
    const dot = (pq: number, pk: number): number => {
      const a = Float64Array.from(q);
      const b = Float64Array.from(k);
      ropeInPlace(a, 0, 6, pq, 10000);
      ropeInPlace(b, 0, 6, pk, 10000);
      return a.reduce((s, x, i) => s + x * b[i], 0);
    };
    expect(dot(7, 3)).toBeCloseTo(dot(104, 100), 10);
    expect(dot(7, 3)).not.toBeCloseTo(dot(7, 4), 3);
  });

  it('embedReference takes rows of model.embed_tokens.weight (linear and attention are tested in @vlit/test-kit)', () => {
    const w = { 'model.embed_tokens.weight': { dims: [3, 2], data: [1, 2, 3, 4, 5, 6] } };
    expect(Array.from(embedReference(w, [2, 0, 2], 2))).toEqual([5, 6, 1, 2, 5, 6]);
  });
});

describe.each(configNames)('decoder %s', (name) => {
  const config = CONFIGS[name];
  const weights = initLlamaWeights(config, `weights-${name}`);
  const models: Partial<Record<keyof typeof runtimes, LlamaDecoder>> = {};
  const fullPasses: Partial<Record<keyof typeof runtimes, ReturnType<LlamaDecoder['forward']>>> = {};
  /** The full pass over PROMPT on one runtime, computed once and shared, so each test can run on its own. */
  const fullPass = (p: keyof typeof runtimes): ReturnType<LlamaDecoder['forward']> => (fullPasses[p] ??= models[p]!.forward({ inputIds: ids(PROMPT) }));
  const full = async (p: keyof typeof runtimes): Promise<Tensor<'float32'>> => (await fullPass(p)).logits;
  beforeAll(async () => {
    for (const p of platforms) {
      models[p] = await createLlamaDecoder({ backend: runtimes[p].backend, config, weights });
      toRelease.push(models[p]!);
    }
  });

  it.for(platforms)('%s: logits match the float64 reference within 1e-4', async (p, { annotate }) => {
    const out = await fullPass(p);
    expect(out.logits.dims).toEqual([1, PROMPT.length, config.vocabSize]);
    const ref = llamaReference(config, weights, embedReference(weights, PROMPT, config.hiddenSize), PROMPT.length);
    const diff = maxAbsDiff(out.logits.data, ref);
    await annotate(`max |logit - float64 reference| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
    expect(out.cache?.length).toBe(PROMPT.length);
  });

  it.for(platforms)('%s: the KV cache reproduces the full pass within 1e-4, one token at a time after a 5-token chunk', async (p, { annotate }) => {
    const m = models[p]!;
    let cache: KvCache | undefined;
    const rows: Float32Array[] = [];
    // 5 tokens, then 1 at a time.
    const first = await m.forward({ inputIds: ids(PROMPT.slice(0, 5)) });
    rows.push(first.logits.data);
    cache = first.cache;
    for (let t = 5; t < PROMPT.length; t++) {
      const out = await m.forward({ inputIds: ids([PROMPT[t]]), cache });
      expect(out.cache?.length).toBe(t + 1);
      rows.push(out.logits.data);
      cache = out.cache;
    }
    const stitched = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
    let o = 0;
    for (const r of rows) {
      stitched.set(r, o);
      o += r.length;
    }
    const diff = maxAbsDiff(stitched, (await full(p)).data);
    await annotate(`max |cached - full| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('node and web logits agree within 1e-4', async ({ annotate }) => {
    const diff = maxAbsDiff((await full('node')).data, (await full('web')).data);
    await annotate(`max |node - web| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('embeddings in give the same logits as ids in (embed_tokens model = embedding rows)', async () => {
    const m = models.node!;
    const e = await m.embed(ids(PROMPT));
    expect(maxAbsDiff(e.data, embedReference(weights, PROMPT, config.hiddenSize))).toBe(0);
    const out = await m.forward({ inputsEmbeds: e });
    expect(maxAbsDiff(out.logits.data, (await full('node')).data)).toBeLessThanOrEqual(1e-6);
  });

  it('left padding with the attention mask gives the unpadded logits (positions derived from the mask)', async () => {
    const m = models.node!;
    const short = PROMPT.slice(0, 7);
    const pad = PROMPT.length - short.length;
    const batchIds = createTensor(
      'int64',
      [2, PROMPT.length],
      [...Array(pad).fill(0), ...short, ...PROMPT].map((v) => BigInt(v)),
    );
    const mask = createTensor(
      'int64',
      [2, PROMPT.length],
      [...Array(pad).fill(0), ...Array(short.length).fill(1), ...Array(PROMPT.length).fill(1)].map((v) => BigInt(v)),
    );
    const out = await m.forward({ inputIds: batchIds, attentionMask: mask });
    const v = config.vocabSize;
    const shortRef = llamaReference(config, weights, embedReference(weights, short, config.hiddenSize), short.length);
    expect(maxAbsDiff(out.logits.data.subarray(pad * v, PROMPT.length * v), shortRef)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(out.logits.data.subarray(PROMPT.length * v), (await full('node')).data)).toBeLessThanOrEqual(1e-4);
    // One more step for both rows with the cache: the padded row continues at position 7.
    const step = await m.forward({
      inputIds: createTensor('int64', [2, 1], [5n, 5n]),
      attentionMask: createTensor('int64', [2, PROMPT.length + 1], [...mask.data, 1n].slice(0, PROMPT.length).concat([1n], Array(PROMPT.length + 1).fill(1n))),
      cache: out.cache,
    });
    const ref = llamaReference(config, weights, embedReference(weights, [...short, 5], config.hiddenSize), short.length + 1);
    expect(maxAbsDiff(step.logits.data.subarray(0, v), ref.subarray(short.length * v))).toBeLessThanOrEqual(1e-4);
  });
});

describe('two configurations for composition', () => {
  it('differ in hidden size and expose it as hiddenSize', async () => {
    const [a, b] = await Promise.all(configNames.map((n) => createLlamaDecoder({ backend: runtimes.node.backend, config: CONFIGS[n], seed: 1 })));
    toRelease.push(a, b);
    expect(a.hiddenSize).not.toBe(b.hiddenSize);
    expect([a.hiddenSize, b.hiddenSize]).toEqual([48, 64]);
    expect(a.vocabSize).toBe(96);
  });
});

describe('files in the Optimum layout, loaded by the same loader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlit-llama-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const config = CONFIGS['gqa-h48'];
  const weights = initLlamaWeights(config, 'export');

  it('the exported decoder has the Optimum inputs and outputs, and config.json the Hugging Face fields', async () => {
    const exported = buildLlamaOnnx(config, weights);
    const inputs = listInputs(exported.decoder).map((v) => v.name);
    expect(inputs).toEqual([
      'inputs_embeds',
      'attention_mask',
      'position_ids',
      'past_key_values.0.key',
      'past_key_values.0.value',
      'past_key_values.1.key',
      'past_key_values.1.value',
    ]);
    expect(
      listOutputs(exported.decoder)
        .map((v) => v.name)
        .sort(),
    ).toEqual(['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
    expect(listInputs(exported.decoder)[3].dims).toEqual(['batch_size', 2, 'past_sequence_length', 12]);
    expect(listInputs(exported.embedTokens).map((v) => v.name)).toEqual(['input_ids']);
    const files = await exportLlamaDecoder(dir, config, weights);
    expect(files.sort()).toEqual(['config.json', 'decoder_model_merged.onnx', 'embed_tokens.onnx', 'generation_config.json']);
    const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(json).toMatchObject({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: 48,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_hidden_layers: 2,
      vocab_size: 96,
      intermediate_size: 96,
      head_dim: 12,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
    });
  });

  it.each(platforms)('%s: loading the folder gives the reference logits, eos from the configs', async (p) => {
    const m = await loadOptimumDecoderDir(dir, { backend: runtimes[p].backend });
    toRelease.push(m);
    expect(m.decoderFile).toBe('decoder_model_merged.onnx');
    expect(m.eosTokenIds).toEqual([0]);
    expect([m.hiddenSize, m.vocabSize, m.maxContext]).toEqual([48, 96, 512]);
    const out = await m.forward({ inputIds: ids(PROMPT) });
    const ref = llamaReference(config, weights, embedReference(weights, PROMPT, 48), PROMPT.length);
    expect(maxAbsDiff(out.logits.data, ref)).toBeLessThanOrEqual(1e-4);
  });

  it('external data files (as Optimum writes for large models) load from the folder', async () => {
    const ext = join(dir, 'external');
    const files = await exportLlamaDecoder(ext, config, weights, { externalData: true });
    expect(files).toContain('decoder_model_merged.onnx_data');
    expect(existsSync(join(ext, 'decoder_model_merged.onnx_data'))).toBe(true);
    const m = await loadOptimumDecoderDir(ext, { backend: runtimes.node.backend });
    toRelease.push(m);
    const out = await m.forward({ inputIds: ids(PROMPT) });
    const ref = llamaReference(config, weights, embedReference(weights, PROMPT, 48), PROMPT.length);
    expect(maxAbsDiff(out.logits.data, ref)).toBeLessThanOrEqual(1e-4);
  });

  it('Hugging Face Llama tensor names round trip through safetensors (with a language_model. prefix too)', async () => {
    const m = await createLlamaDecoder({ backend: runtimes.node.backend, config, weights });
    toRelease.push(m);
    const bytes = m.toSafetensors();
    const names = [...parseSafetensors(bytes).tensors.keys()];
    expect(names).toContain('model.embed_tokens.weight');
    expect(names).toContain('model.layers.1.self_attn.q_proj.weight');
    expect(names).toContain('model.layers.0.mlp.gate_proj.weight');
    expect(names).toContain('lm_head.weight');
    expect(parseSafetensors(bytes).get('model.layers.0.self_attn.k_proj.weight').shape).toEqual([24, 48]); // [kv heads x head dim, hidden]
    const path = join(dir, 'model.safetensors');
    writeFileSync(path, bytes);
    const back = await readLlamaSafetensors(path);
    expect(back.config).toEqual(config);
    const m2 = await createLlamaDecoder({ backend: runtimes.node.backend, config: back.config, weights: back.weights });
    toRelease.push(m2);
    const a = await m.forward({ inputIds: ids(PROMPT) });
    const b = await m2.forward({ inputIds: ids(PROMPT) });
    expect(Array.from(b.logits.data)).toEqual(Array.from(a.logits.data));
    // A LLaVA checkpoint keeps the decoder under language_model.
    const prefixed = llamaWeightsFromSafetensors(buildSafetensors(weights, 'language_model.'), config);
    expect(Array.from(prefixed['model.layers.1.mlp.down_proj.weight'].data)).toEqual(Array.from(weights['model.layers.1.mlp.down_proj.weight'].data));
  });

  it('a checkpoint of the wrong widths is a CompatibilityError naming the tensor', () => {
    const other = initLlamaWeights({ ...config, intermediateSize: 64 }, 1);
    const bytes = buildSafetensors(other);
    const err = (() => {
      try {
        llamaWeightsFromSafetensors(bytes, config, 'ckpt.safetensors');
      } catch (e) {
        return e;
      }
    })();
    expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    expect((err as Error).message).toContain('model.layers.0.mlp.gate_proj.weight');
  });

  it('a folder without a decoder, or a decoder without past inputs, is refused with typed errors', async () => {
    const noDecoder = createMemorySource({ 'config.json': JSON.stringify({ hidden_size: 48, num_attention_heads: 4, num_hidden_layers: 2, vocab_size: 96 }) });
    await expect(loadOptimumDecoder(noDecoder, { backend: runtimes.node.backend })).rejects.toMatchObject({ code: 'VLIT_NOT_FOUND' });
    const exported = buildLlamaOnnx(config, weights);
    const { encodeModel } = await import('@vlit/graph');
    const wrongLayers = createMemorySource({
      'config.json': JSON.stringify({ hidden_size: 48, num_attention_heads: 4, num_hidden_layers: 3, vocab_size: 96 }),
      'model.onnx': encodeModel(exported.decoder),
    });
    await expect(loadOptimumDecoder(wrongLayers, { backend: runtimes.node.backend })).rejects.toMatchObject({ code: 'VLIT_FORMAT' });
    const badConfig = createMemorySource({ 'config.json': '{"hidden_size": 48}', 'model.onnx': encodeModel(exported.decoder) });
    await expect(loadOptimumDecoder(badConfig, { backend: runtimes.node.backend })).rejects.toMatchObject({ code: 'VLIT_FORMAT' });
  });

  it('inputs of the wrong width, a foreign cache and a bad mask are typed errors', async () => {
    const m = await createLlamaDecoder({ backend: runtimes.node.backend, config, weights });
    const other = await createLlamaDecoder({ backend: runtimes.node.backend, config, weights });
    toRelease.push(m, other);
    await expect(m.forward({ inputsEmbeds: createTensor('float32', [1, 2, 64]) })).rejects.toMatchObject({ code: 'VLIT_TENSOR_SHAPE' });
    const { cache } = await other.forward({ inputIds: ids([1, 2]) });
    await expect(m.forward({ inputIds: ids([3]), cache })).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    await expect(m.forward({ inputIds: ids([3, 4]), attentionMask: createTensor('int64', [1, 3]) })).rejects.toMatchObject({ code: 'VLIT_TENSOR_SHAPE' });
    await expect(m.embed(ids([96]))).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    await expect(m.forward({})).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
  });
});

function buildSafetensors(weights: Record<string, Tensor>, prefix = ''): Uint8Array {
  // Written with core's serializer directly, under the names another tool would use.
  return serializeSafetensors(Object.fromEntries(Object.entries(weights).map(([n, t]) => [prefix + n, t])));
}
