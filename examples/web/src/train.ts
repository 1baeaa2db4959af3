// Connector training in the page: LLaVA's stage 1 on a few generated (image, caption) pairs, only the
// projector trained, image features from the frozen tower, run by @vlit/trainer on onnxruntime-web.
import { createTensor, type InferenceBackend, type Tensor } from '@vlit/core';
import { buildEmbedTokensModel, buildLlamaDecoderModel } from '@vlit/models';
import { encodeBatch } from '@vlit/templates';
import { trainStage } from '@vlit/trainer';
import { projectorModel, type LoadedModel } from './load-model.js';
import { PAIRS, TRAIN_PROMPT, drawPair } from './pairs.js';

const PREFIX = 'model.multi_modal_projector.';

/** Train the projector for `steps` steps; `onLoss` gets each step's loss. Returns the trained projector weights. */
export async function trainConnector(
  model: LoadedModel,
  backend: InferenceBackend,
  steps: number,
  onLoss: (step: number, loss: number) => void,
): Promise<Record<string, Tensor<'float32'>>> {
  const size = model.spec.vision.imageSize;
  const images = PAIRS.map((p) => drawPair(p, size));
  const features = await model.tower.encode(images);
  const [, tokens, dim] = features.dims;
  const featureOf = (k: number): Tensor<'float32'> => createTensor('float32', [tokens, dim], features.data.slice(k * tokens * dim, (k + 1) * tokens * dim));
  const records = PAIRS.map((p, k) => ({
    id: `pair-${k}`,
    images: [`pair-${k}.png`],
    messages: [
      { role: 'user', content: [{ type: 'image' }, { type: 'text', text: TRAIN_PROMPT }] },
      { role: 'assistant', content: p.caption },
    ],
  }));
  const { encoded } = encodeBatch(records, { template: model.template, tokenizer: model.tokenizer, imageTokens: tokens });
  const index = new Map(encoded.map((s) => [s.id, Number(s.id.slice('pair-'.length))]));
  const result = await trainStage(
    {
      name: 'connector',
      data: { sources: [{ name: 'page', path: 'memory' }] },
      template: 'model',
      trainables: [{ mode: 'trained', match: [`${PREFIX}*`] }],
      optimizer: { lr: 1e-2 },
      schedule: { type: 'constant' },
      batchSize: PAIRS.length,
      maxSteps: steps,
      seed: 0,
    },
    {
      backend,
      model: {
        connector: projectorModel(model, model.projector.weights),
        embedTokens: buildEmbedTokensModel(model.llama, model.llamaWeights['model.embed_tokens.weight']),
        decoder: buildLlamaDecoderModel(model.llama, model.llamaWeights),
      },
      samples: encoded,
      imageFeatures: (s) => [featureOf(index.get(s.id) as number)],
      padTokenId: model.tokenizer.specialTokens.pad === undefined ? 0 : (model.tokenizer.tokenToId(model.tokenizer.specialTokens.pad) ?? 0),
      onProgress: (e) => {
        if (e.type === 'step') onLoss(e.step, e.record.loss);
      },
    },
  );
  const trained: Record<string, Tensor<'float32'>> = { ...model.projector.weights };
  for (const [name, t] of result.weights) if (name.startsWith(PREFIX)) trained[name.slice(PREFIX.length)] = t;
  return trained;
}
