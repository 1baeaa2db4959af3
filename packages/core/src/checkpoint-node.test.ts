import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpointFolder, writeCheckpointFolder } from './checkpoint-node.js';
import { isVlitError } from './errors.js';
import { createTensor, float32ToBfloat16, bfloat16ToFloat32 } from './tensor.js';

// core cannot depend on @vlit/test-kit (test-kit depends on core), so the reference Python is found here.
const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(here, 'py', 'checkpoint_fixtures.py');
function python(args: string[]): void {
  const exe = process.env.VLIT_PYTHON ?? path.resolve(here, '..', '..', '..', '.venv', 'bin', 'python');
  if (!existsSync(exe)) throw new Error(`reference Python not found at ${exe}: run bash scripts/setup-python.sh`);
  const r = spawnSync(exe, [script, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, OMP_NUM_THREADS: '1' } });
  if (r.status !== 0) throw new Error(`${script} ${args[0]} failed (${r.status ?? r.signal}): ${r.stderr}`);
}

type Expected = Record<string, { shape: number[]; values: number[] }>;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vlit-ckpt-'));
  python(['make', work]);
}, 300_000);
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function expected(name: string): Promise<Expected> {
  return JSON.parse(await readFile(path.join(work, `${name}.expected.json`), 'utf8')) as Expected;
}

describe('openCheckpointFolder on folders the reference implementation wrote', () => {
  it('reads F32/F16/BF16/F64 and a scalar from safetensors.save_file exactly as torch holds them', async () => {
    const ref = await expected('single');
    const folder = await openCheckpointFolder(path.join(work, 'single'));
    try {
      expect(folder.config).toEqual({ model_type: 'test', hidden_size: 5 });
      expect(folder.tensorNames().sort()).toEqual(Object.keys(ref).sort());
      const info = folder.info('c.bf16');
      expect(info).toMatchObject({ name: 'c.bf16', dtype: 'BF16', shape: [7], file: 'model.safetensors', byteLength: 14 });
      // The byte range it names holds exactly the tensor: read it from the file directly.
      const raw = (await readFile(path.join(work, 'single', 'model.safetensors'))).subarray(info!.fileOffset, info!.fileOffset + 14);
      expect([...raw]).toEqual([...(await folder.readRaw('c.bf16')).bytes]);
      for (const [name, want] of Object.entries(ref)) {
        const got = await folder.readFloat32(name, want.shape);
        // float32 is the read dtype, so F64 rounds to the nearest float32; the others are exact.
        expect([...got]).toEqual(want.values.map((v) => Math.fround(v)));
      }
      expect(await folder.readJson('tokenizer_config.json')).toEqual({ chat_template: '{{ messages }}' });
      expect(await folder.readJson('preprocessor_config.json')).toBeUndefined();
    } finally {
      await folder.close();
    }
  });

  it('reads a LlamaForCausalLM sharded over 3 files by save_pretrained(max_shard_size)', async () => {
    const dir = path.join(work, 'sharded');
    expect((await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort()).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    const ref = await expected('sharded');
    const folder = await openCheckpointFolder(dir);
    try {
      expect(folder.config.model_type).toBe('llama');
      expect(folder.tensorNames().sort()).toEqual(Object.keys(ref).sort());
      expect(new Set(folder.tensorNames().map((n) => folder.info(n)?.file)).size).toBe(3);
      for (const [name, want] of Object.entries(ref)) {
        expect([...(await folder.readFloat32(name, want.shape))]).toEqual(want.values);
        expect([...folder.readFloat32Sync(name, want.shape)]).toEqual(want.values);
      }
      expect((await folder.readJson('generation_config.json'))?.bos_token_id).toBe(1);
    } finally {
      await folder.close();
    }
  });

  it('reads a bf16 save_pretrained checkpoint as the exact float32 widening of torch bfloat16', async () => {
    const ref = await expected('bf16');
    const folder = await openCheckpointFolder(path.join(work, 'bf16'));
    try {
      expect(folder.info('model.embed_tokens.weight')?.dtype).toBe('BF16');
      for (const [name, want] of Object.entries(ref)) {
        expect([...(await folder.readFloat32(name))]).toEqual(want.values);
      }
    } finally {
      await folder.close();
    }
  });
});

describe('openCheckpointFolder errors name the thing', () => {
  it('a missing shard is a NotFoundError naming the shard file', async () => {
    const dir = path.join(work, 'missing-shard');
    await copyDir(path.join(work, 'sharded'), dir);
    await unlink(path.join(dir, 'model-00002-of-00003.safetensors'));
    const err = await openCheckpointFolder(dir).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
    expect(String((err as Error).message)).toContain('model-00002-of-00003.safetensors');
  });

  it('a missing config.json is a NotFoundError naming config.json', async () => {
    const dir = path.join(work, 'no-config');
    await copyDir(path.join(work, 'bf16'), dir);
    await unlink(path.join(dir, 'config.json'));
    const err = await openCheckpointFolder(dir).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
    expect((err as Error).message).toContain('config.json');
  });

  it('a shape mismatch is a TensorShapeError naming the tensor and both shapes; a missing tensor names it and the folder', async () => {
    const folder = await openCheckpointFolder(path.join(work, 'sharded'));
    try {
      const err = await folder.readFloat32('model.layers.1.self_attn.k_proj.weight', [32, 32]).catch((e: unknown) => e);
      expect(isVlitError(err, 'VLIT_TENSOR_SHAPE')).toBe(true);
      expect((err as Error).message).toMatch(/model\.layers\.1\.self_attn\.k_proj\.weight.*\[16, 32\].*\[32, 32\]/);
      const missing = await folder.readFloat32('model.layers.9.mlp.up_proj.weight').catch((e: unknown) => e);
      expect(isVlitError(missing, 'VLIT_NOT_FOUND')).toBe(true);
      expect((missing as Error).message).toContain('model.layers.9.mlp.up_proj.weight');
      expect((missing as Error).message).toContain(path.join(work, 'sharded'));
    } finally {
      await folder.close();
    }
  });
});

describe('writeCheckpointFolder output, read back by the reference safetensors', () => {
  interface PyRead {
    files: string[];
    index: { metadata: { total_size: number }; weight_map: Record<string, string> } | null;
    metadata: Record<string, Record<string, string>>;
    tensors: Record<string, { file: string; dtype: string; shape: number[]; values: number[] }>;
  }
  const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 3);
  const tensors = new Map([
    ['model.embed_tokens.weight', createTensor('float32', [8, 6], values(48, 1))],
    ['model.norm.weight', createTensor('float32', [6], values(6, 2))],
    ['lm_head.weight', createTensor('float32', [8, 6], values(48, 3))],
    ['model.layers.0.mlp.up_proj.weight', createTensor('float32', [10, 6], values(60, 4))],
  ]);

  it('sharded F32: 3 files named and indexed as transformers names them, values exact, config and extra files written', async () => {
    const dir = path.join(work, 'written-sharded');
    // 240 bytes per shard, filled in order: embed+norm (192+24) | lm_head (192) | up_proj (240).
    await writeCheckpointFolder(dir, {
      config: { model_type: 'llama', torch_dtype: 'bfloat16' },
      tensors,
      maxShardBytes: 240,
      files: { 'tokenizer_config.json': '{"chat_template":"x"}' },
    });
    python(['read', dir, path.join(work, 'written-sharded.json')]);
    const got = JSON.parse(await readFile(path.join(work, 'written-sharded.json'), 'utf8')) as PyRead;
    expect(got.files).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    expect(got.index?.metadata.total_size).toBe(4 * (48 + 6 + 48 + 60));
    expect(got.index?.weight_map['model.norm.weight']).toBe('model-00001-of-00003.safetensors');
    expect(got.index?.weight_map['lm_head.weight']).toBe('model-00002-of-00003.safetensors');
    for (const meta of Object.values(got.metadata)) expect(meta).toEqual({ format: 'pt' });
    for (const [name, t] of tensors) {
      expect(got.tensors[name].dtype).toBe('torch.float32');
      expect(got.tensors[name].shape).toEqual(t.dims);
      expect(got.tensors[name].values).toEqual([...(t.data as Float32Array)]);
    }
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toEqual({ model_type: 'llama', dtype: 'float32' });
    expect(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')).toBe('{"chat_template":"x"}');
  });

  it('BF16 single file: values are the round-to-nearest-even bfloat16 of the input; a stale index from an earlier sharded save is removed', async () => {
    const dir = path.join(work, 'written-sharded');
    await writeCheckpointFolder(dir, { config: { model_type: 'llama' }, tensors, dtype: 'BF16' });
    expect((await readdir(dir)).filter((f) => f.includes('safetensors')).sort()).toEqual(['model.safetensors']);
    python(['read', dir, path.join(work, 'written-bf16.json')]);
    const got = JSON.parse(await readFile(path.join(work, 'written-bf16.json'), 'utf8')) as PyRead;
    for (const [name, t] of tensors) {
      expect(got.tensors[name].dtype).toBe('torch.bfloat16');
      expect(got.tensors[name].values).toEqual([...(t.data as Float32Array)].map((v) => bfloat16ToFloat32(float32ToBfloat16(v))));
    }
    const folder = await openCheckpointFolder(dir);
    try {
      expect(folder.config.dtype).toBe('bfloat16');
    } finally {
      await folder.close();
    }
  });
});

async function copyDir(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const f of await readdir(from)) await copyFile(path.join(from, f), path.join(to, f));
}
