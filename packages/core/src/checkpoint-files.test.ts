// Checkpoint folders from in-memory files: written by writeCheckpointFolder (single file and sharded), read back
// from a name -> bytes map, and checked against the tensors written and against openCheckpointFolder on disk.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpointFiles } from './checkpoint-files.js';
import { openCheckpointFolder, writeCheckpointFolder } from './checkpoint-node.js';
import { isVlitError } from './errors.js';
import { createTensor, type Tensor } from './tensor.js';

let work: string;
const tensors: Record<string, Tensor<'float32'>> = {
  'a.weight': createTensor('float32', [2, 3], Float32Array.from([1, -2, 3.5, 0.25, -0.125, 6])),
  'b.bias': createTensor('float32', [4], Float32Array.from([0.5, 1.5, -2.5, 3])),
  'c.weight': createTensor('float32', [3, 2], Float32Array.from([7, 8, 9, 10, 11, 12])),
};
const config = { model_type: 'toy', hidden_size: 3 };

async function filesOf(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const f of await readdir(dir)) out.set(f, new Uint8Array(await readFile(join(dir, f))));
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<{ code?: string; message: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    if (isVlitError(err)) return { code: err.code, message: err.message, details: err.details };
    throw err;
  }
  throw new Error('expected a typed error');
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vlit-ckpt-files-'));
  await writeCheckpointFolder(join(work, 'single'), { config, tensors, files: { 'tokenizer_config.json': '{"bos_token":"<s>"}' } });
  // 12-byte shards of BF16 (2 bytes a value): a.weight and c.weight fill one each, b.bias (8 bytes) another.
  await writeCheckpointFolder(join(work, 'sharded'), { config, tensors, maxShardBytes: 12, dtype: 'BF16' });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('openCheckpointFiles', () => {
  it('reads a single-file folder from memory: the written values, and the same info as openCheckpointFolder on disk', async () => {
    const files = await filesOf(join(work, 'single'));
    const mem = await openCheckpointFiles(files, { name: 'picked' });
    const disk = await openCheckpointFolder(join(work, 'single'));
    expect(mem.dir).toBe('picked');
    expect(mem.config.model_type).toBe('toy');
    expect(mem.tensorNames().sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      expect([...(await mem.readFloat32(name, t.dims))]).toEqual([...t.data]);
      expect([...mem.readFloat32Sync(name)]).toEqual([...t.data]);
      expect(mem.info(name)).toEqual(disk.info(name));
      expect(await mem.readRaw(name)).toEqual(await disk.readRaw(name));
    }
    expect(await mem.readJson('tokenizer_config.json')).toEqual({ bos_token: '<s>' });
    expect(await mem.readJson('chat_template.json')).toBeUndefined();
    await disk.close();
    await mem.close();
  });

  it('reads a sharded BF16 folder through its index, from a plain object of files', async () => {
    const files = Object.fromEntries(await filesOf(join(work, 'sharded')));
    expect(Object.keys(files)).toContain('model.safetensors.index.json');
    const mem = await openCheckpointFiles(files);
    // The values written are exact in bfloat16, so they come back unchanged.
    for (const [name, t] of Object.entries(tensors)) expect([...(await mem.readFloat32(name))]).toEqual([...t.data]);
    expect(new Set(mem.tensorNames().map((n) => mem.info(n)?.file)).size).toBe(3);
  });

  it('gives typed errors naming the file, tensor or entry', async () => {
    const files = await filesOf(join(work, 'sharded'));
    const noConfig = new Map(files);
    noConfig.delete('config.json');
    expect(await codeOf(openCheckpointFiles(noConfig, { name: 'x' }))).toMatchObject({ code: 'VLIT_NOT_FOUND', details: { file: 'x/config.json' } });
    const shard = [...files.keys()].find((f) => f.startsWith('model-0000'))!;
    const noShard = new Map(files);
    noShard.delete(shard);
    expect(await codeOf(openCheckpointFiles(noShard, { name: 'x' }))).toMatchObject({ code: 'VLIT_NOT_FOUND', details: { file: `x/${shard}` } });
    const empty = new Map([['config.json', new TextEncoder().encode('{}')]]);
    expect((await codeOf(openCheckpointFiles(empty))).code).toBe('VLIT_NOT_FOUND');
    const badJson = new Map(files).set('config.json', new TextEncoder().encode('{'));
    expect((await codeOf(openCheckpointFiles(badJson))).code).toBe('VLIT_FORMAT');
    expect((await codeOf(openCheckpointFiles(new Map([['../config.json', new Uint8Array()]])))).code).toBe('VLIT_INVALID_ARGUMENT');
    const mem = await openCheckpointFiles(files);
    expect(await codeOf(mem.readFloat32('nope'))).toMatchObject({ code: 'VLIT_NOT_FOUND', details: { field: 'nope' } });
    expect(await codeOf(mem.readFloat32('a.weight', [3, 2]))).toMatchObject({ code: 'VLIT_TENSOR_SHAPE', details: { field: 'a.weight' } });
    await mem.close();
    expect((await codeOf(mem.readFloat32('a.weight'))).code).toBe('VLIT_INVALID_ARGUMENT');
  });
});
