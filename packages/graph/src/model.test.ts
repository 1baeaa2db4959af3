import { describe, expect, it } from 'vitest';
import { createTensor, float32ToFloat16, isVlitError, type Tensor } from '@vlit/core';
import { createGraph, decodeModel, encodeModel, getInitializer, listInitializers, listInputs, listNodes, listOutputs, onnx, type OnnxModel } from './index.js';
import { rampTensor, thrown } from './testing/helpers.js';

function smallModel(): OnnxModel {
  const g = createGraph({ name: 'mlp' });
  const x = g.input('x', 'float32', ['batch', 4]);
  const w = g.initializer('w', rampTensor([4, 3], 4));
  const b = g.initializer('b', createTensor('float32', [3], [0.5, -1, 2]));
  g.output(g.gelu(g.add(g.matMul(x, w), b)), 'y');
  return g.toModel();
}

describe('encode/decode', () => {
  it('round-trips signature, nodes and weights', () => {
    const bytes = encodeModel(smallModel());
    const m = decodeModel(bytes, { file: 'mlp.onnx' });
    expect(Number(m.irVersion)).toBe(9);
    expect(m.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 20]]);
    expect(listInputs(m)).toEqual([{ name: 'x', dtype: 'float32', dims: ['batch', 4] }]);
    expect(listOutputs(m)).toEqual([{ name: 'y', dtype: 'float32', dims: ['batch', 3] }]);
    expect(listNodes(m).map((n) => n.opType)).toEqual(['MatMul', 'Add', 'Gelu', 'Identity']);
    expect(listInitializers(m)).toEqual([
      { name: 'w', dtype: 'float32', dims: [4, 3], external: false },
      { name: 'b', dtype: 'float32', dims: [3], external: false },
    ]);
    expect([...getInitializer(m, 'b').data]).toEqual([0.5, -1, 2]);
    // Encoding again gives identical bytes: nothing was lost or reinterpreted.
    expect(encodeModel(m)).toEqual(bytes);
  });

  it('stores every core dtype as little-endian raw_data and reads it back exactly', () => {
    const tensors: Record<string, Tensor> = {
      f32: createTensor('float32', [2], [1.5, -2.25]),
      f64: createTensor('float64', [2], [Math.PI, -1e300]),
      f16: createTensor('float16', [2], new Uint16Array([float32ToFloat16(1), float32ToFloat16(-0.5)])),
      i8: createTensor('int8', [3], [-128, 0, 127]),
      u8: createTensor('uint8', [2], [0, 255]),
      i16: createTensor('int16', [2], [-32768, 32767]),
      u16: createTensor('uint16', [1], [65535]),
      i32: createTensor('int32', [2], [-2147483648, 7]),
      u32: createTensor('uint32', [1], [4294967295]),
      i64: createTensor('int64', [2], [-9007199254740993n, 9223372036854775807n]),
      u64: createTensor('uint64', [1], [18446744073709551615n]),
      bool: createTensor('bool', [3], new Uint8Array([1, 0, 1])),
    };
    const g = createGraph({ name: 't' });
    for (const [name, t] of Object.entries(tensors)) g.initializer(name, t);
    g.output('f32');
    const m = decodeModel(encodeModel(g.toModel()));
    for (const [name, t] of Object.entries(tensors)) {
      const back = getInitializer(m, name);
      expect(back.dtype).toBe(t.dtype);
      expect(back.dims).toEqual(t.dims);
      expect([...(back.data as ArrayLike<unknown> & Iterable<unknown>)]).toEqual([...(t.data as Iterable<unknown>)]);
    }
    // Little-endian on the wire: int32 7 is 07 00 00 00.
    const raw = m.graph!.initializer.find((t) => t.name === 'i32')!.rawData;
    expect([...raw.slice(4)]).toEqual([7, 0, 0, 0]);
    // ONNX data type codes from onnx.proto.
    expect(Object.fromEntries(m.graph!.initializer.map((t) => [t.name, t.dataType]))).toMatchObject({
      f32: 1,
      u8: 2,
      i8: 3,
      u16: 4,
      i16: 5,
      i32: 6,
      i64: 7,
      bool: 9,
      f16: 10,
      f64: 11,
      u32: 12,
      u64: 13,
    });
  });

  it('reads tensors stored in typed fields (float_data, int64_data)', () => {
    const m = smallModel();
    m.graph!.initializer.push(
      onnx.TensorProto.create({ name: 'typed_f', dims: [2], dataType: 1, floatData: [1, 2] }) as never,
      onnx.TensorProto.create({ name: 'typed_i', dims: [2], dataType: 7, int64Data: [3, -4] }) as never,
    );
    const back = decodeModel(encodeModel(m));
    expect([...getInitializer(back, 'typed_f').data]).toEqual([1, 2]);
    expect([...getInitializer(back, 'typed_i').data]).toEqual([3n, -4n]);
  });

  it('gives FormatError naming the file for every truncation of a model', () => {
    const bytes = encodeModel(smallModel());
    let failures = 0;
    for (let n = 0; n < bytes.length; n++) {
      const err = thrown(() => decodeModel(bytes.subarray(0, n), { file: 'cut.onnx' }));
      expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
      expect((err as Error).message).toContain('cut.onnx');
      failures++;
    }
    expect(failures).toBe(bytes.length);
  });

  it('rejects garbage and structurally broken models', () => {
    const garbage = new Uint8Array(256).map((_, i) => (i * 97 + 13) & 0xff);
    expect(
      isVlitError(
        thrown(() => decodeModel(garbage, { file: 'g.onnx' })),
        'VLIT_FORMAT',
      ),
    ).toBe(true);
    const m = smallModel();
    m.graph!.initializer[1].rawData = new Uint8Array(8);
    const err = thrown(() => decodeModel(encodeModel(m), { file: 'short.onnx' })) as Error;
    expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
    expect(err.message).toMatch(/raw_data holds 8 bytes .* need 12/);
    const noOp = smallModel();
    noOp.graph!.node[1].opType = '';
    expect(() => decodeModel(encodeModel(noOp))).toThrow(/op_type/);
    const dangling = smallModel();
    dangling.graph!.node[0].input[0] = 'ghost';
    expect(() => decodeModel(encodeModel(dangling))).toThrow(/ghost/);
  });

  it('getInitializer reports missing names with NotFoundError', () => {
    const err = thrown(() => getInitializer(smallModel(), 'v')) as Error;
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
    expect((err as unknown as { details: { available: string[] } }).details.available).toEqual(['w', 'b']);
  });
});
