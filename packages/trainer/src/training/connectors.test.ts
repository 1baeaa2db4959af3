/**
 * Connectors other than LLaVA's MLP train too: LLaVA's stage-1 rule (`model.multi_modal_projector.*`)
 * over a perceiver resampler trains exactly the resampler's weights (its graph's int64 query shape is a
 * constant, not a tensor to train), and the gradients match central differences of the loss (the key
 * bias's is 0: softmax ignores a shift shared by a query's logits).
 */
import { buildConnectorModel, initConnectorWeights, normalizeConnectorConfig } from '@vlit/connectors';
import { createNodeRuntime } from '@vlit/runtime/node';
import { describe, expect, it } from 'vitest';
import { createTrainingSession } from '../engine/session.js';
import { llavaRecipe } from '../recipe.js';
import { expectCentralDifferences } from '../testing/gradients.js';
import { createTinyLlava, makeSample, randomFeatures, TINY } from '../testing/tiny-llava.js';
import { prepareTrainingFeeds } from './feeds.js';
import { buildTrainingGraph } from './training-graph.js';

describe('a resampler connector in the training graph', () => {
  it("LLaVA's stage 1 trains exactly the resampler's weights; gradients match central differences", { timeout: 600_000 }, async () => {
    const config = normalizeConnectorConfig({
      kind: 'resampler',
      inputDim: TINY.featureDim,
      outputDim: TINY.hidden,
      numQueries: TINY.imageTokens,
      numHeads: 2,
    });
    const weights = initConnectorWeights(config, 3);
    const tiny = createTinyLlava(4, { layers: 1 });
    const recipe = llavaRecipe({ pretrainData: [{ name: 'captions', path: 'memory' }], instructionData: [{ name: 'chat', path: 'memory' }] });
    const graph = buildTrainingGraph({ ...tiny.parts, connector: buildConnectorModel(config, weights) }, { stage: recipe.stages[0], seed: 1 });
    // The independent list: the weights the resampler was built from.
    expect(graph.parameters.map((p) => p.name).sort()).toEqual(
      Object.keys(weights)
        .map((n) => `model.multi_modal_projector.${n}`)
        .sort(),
    );
    expect(graph.projectedTokens(5)).toBe(TINY.imageTokens);

    const samples = [makeSample('a', [5, 6], [9, 10]), makeSample('b', [7], [11])];
    const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
    const session = await createTrainingSession(runtime.backend, graph);
    const feeds = prepareTrainingFeeds(graph, samples, [[randomFeatures('a')], [randomFeatures('b')]]).feeds;
    const values = new Map(graph.parameters.map((p) => [p.name, Float32Array.from(p.initial.data)]));
    // The key bias adds q.b to every attention logit of a query alike, and softmax ignores a shared shift: its gradient is 0.
    const keyBias = 'model.multi_modal_projector.layers.0.attn.k_proj.bias';
    const exact = await session.step(feeds, values);
    for (const g of exact.gradients.get(keyBias) as Float32Array) expect(Math.abs(g)).toBeLessThan(1e-6);
    await expectCentralDifferences(
      session,
      feeds,
      values,
      graph.parameters.map((p) => p.name).filter((n) => n !== keyBias),
    );
    await session.release();
  });
});
