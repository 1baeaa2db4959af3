import { describe, expect, it } from 'vitest';
import { createRng, createTensor, toFloat32 } from '@vlit/core';
import { encodeModel, listOutputs } from '@vlit/graph';
import { createNodeRuntime } from '@vlit/runtime/node';
import { maxAbsDiff } from '@vlit/test-kit';
import { buildVitModel, hiddenStateName } from './build.js';
import { resolveVitConfig } from './config.js';
import { createVitWeights } from './weights.js';
import { vitReference } from '../testing/vit-reference.js';

const node = createNodeRuntime({ session: { intraOpThreads: 1 } });

describe('ViT graph', () => {
  it.each(['gelu', 'quick_gelu', 'gelu_tanh'] as const)('every hidden state matches the float64 reference (%s)', async (act) => {
    const config = resolveVitConfig({ imageSize: 32, patchSize: 8, hiddenSize: 32, numHeads: 4, numLayers: 2, hiddenAct: act });
    const weights = createVitWeights(config, 'ref');
    const model = buildVitModel(config, weights);
    expect(listOutputs(model).map((o) => o.name)).toEqual(['hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'last_hidden_state', 'pooler_output']);
    const px = createTensor('float32', [2, 3, 32, 32]);
    createRng(5).fillNormal(px.data, 1);
    const s = await node.backend.createSession(encodeModel(model));
    const out = await s.run({ pixel_values: px });
    for (let b = 0; b < 2; b++) {
      const ref = vitReference(config, weights, px.data.subarray(b * 3072, (b + 1) * 3072));
      for (let i = 0; i <= 2; i++) {
        const t = out[hiddenStateName(i)];
        expect(t.dims).toEqual([2, 17, 32]);
        expect(maxAbsDiff(toFloat32(t).subarray(b * 17 * 32, (b + 1) * 17 * 32), ref.hidden[i])).toBeLessThan(1e-4);
      }
      expect(maxAbsDiff(toFloat32(out.pooler_output).subarray(b * 32, (b + 1) * 32), ref.pooled)).toBeLessThan(1e-4);
    }
    await s.release();
  });
});
