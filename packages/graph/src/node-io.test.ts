import { mkdtemp, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTensor, isVlitError } from '@vlit/core';
import { createGraph, decodeModel, encodeModel, getInitializer, listInitializers, type OnnxModel } from './index.js';
import { externalDataEntries, loadModel, saveModel } from './node-io.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vlit-graph-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function weights(): { big: Float32Array; mid: Float32Array; small: Float32Array } {
  return {
    big: Float32Array.from({ length: 3000 }, (_, i) => Math.sin(i)),
    mid: Float32Array.from({ length: 300 }, (_, i) => i * 0.25),
    small: Float32Array.from([1, 2, 3]),
  };
}

function model(): OnnxModel {
  const w = weights();
  const g = createGraph({ name: 'm' });
  const x = g.input('x', 'float32', ['n', 3000]);
  const big = g.initializer('big', createTensor('float32', [3000], w.big));
  const mid = g.initializer('mid', createTensor('float32', [300], w.mid));
  const small = g.initializer('small', createTensor('float32', [3], w.small));
  g.output(g.add(g.mul(x, big), g.reduceMean(g.add(mid, g.reduceMean(small, [0])), [0])), 'y');
  return g.toModel();
}

async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** Rewrite every external tensor's location in a saved model file. */
async function relocate(file: string, location: string): Promise<void> {
  const src = decodeModel(await readFile(file));
  for (const t of src.graph!.initializer) {
    for (const e of t.externalData) if (e.key === 'location') e.value = location;
  }
  await writeFile(file, encodeModel(src));
}

describe('saveModel/loadModel', () => {
  it('round-trips inline models', async () => {
    const file = join(dir, 'inline.onnx');
    await saveModel(model(), file);
    const back = await loadModel(file);
    expect([...getInitializer(back, 'big').data]).toEqual([...weights().big]);
  });

  it('moves large initializers to an aligned external file and reads them back exactly', async () => {
    const sub = join(dir, 'ext');
    await mkdir(sub);
    const file = join(sub, 'model.onnx');
    await saveModel(model(), file, { externalData: { sizeThreshold: 1000 } });
    const raw = await loadModel(file, { loadExternalData: false });
    const mine = listInitializers(raw).filter((i) => ['big', 'mid', 'small'].includes(i.name));
    expect(mine.map((i) => [i.name, i.external])).toEqual([
      ['big', true],
      ['mid', true],
      ['small', false],
    ]);
    const [big, mid] = raw.graph!.initializer.filter((t) => t.name === 'big' || t.name === 'mid').map(externalDataEntries);
    expect(big).toEqual({ location: 'model.onnx.data', offset: '0', length: '12000' });
    // 12000 rounded up to the 4096-byte page: 12288.
    expect(mid).toEqual({ location: 'model.onnx.data', offset: '12288', length: '1200' });
    expect((await stat(join(sub, 'model.onnx.data'))).size).toBe(12288 + 1200);
    // The data file holds the exact little-endian float32 bytes at those offsets.
    const data = await readFile(join(sub, 'model.onnx.data'));
    const w = weights();
    expect(new Uint8Array(data.buffer, data.byteOffset, 12000)).toEqual(new Uint8Array(w.big.buffer));
    expect(new Uint8Array(data.buffer, data.byteOffset + 12288, 1200)).toEqual(new Uint8Array(w.mid.buffer));
    const back = await loadModel(file);
    expect(listInitializers(back).every((i) => !i.external)).toBe(true);
    expect(getInitializer(back, 'big').data).toEqual(w.big);
    expect(getInitializer(back, 'mid').data).toEqual(w.mid);
    expect(getInitializer(back, 'small').data).toEqual(w.small);
    // Unloaded references cannot be read as tensors.
    expect(
      isVlitError(
        (() => {
          try {
            getInitializer(raw, 'big');
          } catch (e) {
            return e;
          }
        })(),
        'VLIT_UNSUPPORTED',
      ),
    ).toBe(true);
  });

  it('honours a custom location and alignment', async () => {
    const file = join(dir, 'custom.onnx');
    await saveModel(model(), file, { externalData: { location: 'weights.bin', sizeThreshold: 1000, alignment: 64 } });
    const raw = await loadModel(file, { loadExternalData: false });
    expect(externalDataEntries(raw.graph!.initializer.find((t) => t.name === 'mid')!).offset).toBe('12032');
    expect(getInitializer(await loadModel(file), 'mid').data).toEqual(weights().mid);
  });

  it('refuses external locations that escape the model folder', async () => {
    const sub = join(dir, 'escape');
    await mkdir(sub);
    const file = join(sub, 'model.onnx');
    await saveModel(model(), file, { externalData: { sizeThreshold: 1000 } });
    await writeFile(join(dir, 'outside.data'), new Uint8Array(20000));
    for (const location of ['../outside.data', 'a/../../outside.data', join(dir, 'outside.data'), '/etc/passwd', 'C:\\weights.bin', '..\\outside.data']) {
      await relocate(file, location);
      const err = await rejects(loadModel(file));
      expect(isVlitError(err, 'VLIT_PATH_ESCAPE'), location).toBe(true);
      expect((err as Error).message).toContain(file);
    }
    // A link inside the folder that points outside is refused too.
    await symlink(join(dir, 'outside.data'), join(sub, 'link.data'));
    await relocate(file, 'link.data');
    expect(isVlitError(await rejects(loadModel(file)), 'VLIT_PATH_ESCAPE')).toBe(true);
    expect(isVlitError(await rejects(saveModel(model(), join(sub, 'x.onnx'), { externalData: { location: '../x.data' } })), 'VLIT_PATH_ESCAPE')).toBe(true);
  });

  it('gives FormatError naming the file for truncated model and data files', async () => {
    const sub = join(dir, 'trunc');
    await mkdir(sub);
    const file = join(sub, 'model.onnx');
    await saveModel(model(), file, { externalData: { sizeThreshold: 1000 } });
    const dataFile = join(sub, 'model.onnx.data');
    const data = await readFile(dataFile);
    await writeFile(dataFile, data.subarray(0, 5000));
    const err = await rejects(loadModel(file));
    expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
    expect((err as Error).message).toContain(dataFile);
    const bytes = await readFile(file);
    const cut = join(sub, 'cut.onnx');
    await writeFile(cut, bytes.subarray(0, bytes.length - 7));
    const err2 = await rejects(loadModel(cut));
    expect(isVlitError(err2, 'VLIT_FORMAT')).toBe(true);
    expect((err2 as Error).message).toContain(cut);
    expect(isVlitError(await rejects(loadModel(join(sub, 'missing.onnx'))), 'VLIT_NOT_FOUND')).toBe(true);
    await rm(dataFile);
    expect(isVlitError(await rejects(loadModel(file)), 'VLIT_FORMAT')).toBe(true);
  });
});
