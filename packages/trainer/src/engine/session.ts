/**
 * One training graph on one runtime: sessions for the gradient model (training steps) and the forward
 * model (evaluation), fed with a micro-batch and the current parameter values.
 */
import { BackendError, InvalidArgumentError, createTensor, type InferenceBackend, type InferenceSession, type SessionOptions, type Tensor } from '@vlit/core';
import { encodeModel, gradientName } from '@vlit/graph';
import { TRAINING_IO, type TrainingGraph } from '../training/training-graph.js';

/** Current parameter values by name (updated in place by the optimiser). */
export type ParameterValues = ReadonlyMap<string, Float32Array>;

/** Loss and gradients of one micro-batch. */
export interface TrainingStepOutput {
  loss: number;
  /** Gradient of the mean loss with respect to each parameter (fresh arrays). */
  gradients: Map<string, Float32Array>;
}

/** Loss and trained-position logits of one micro-batch (no gradients). */
export interface EvaluationOutput {
  loss: number;
  /** [trained, vocab] logits at the trained positions, in the order of the `targets` feed. */
  logits: Tensor<'float32'>;
}

/** Options of one training step. */
export interface TrainingStepOptions {
  /** Seed of the LoRA dropout masks, an integer in [0, 2^31) (default 0); ignored without LoRA dropout. */
  dropoutSeed?: number;
}

/** Sessions of a training graph on one backend. */
export interface TrainingSession {
  readonly graph: TrainingGraph;
  /** Loss and gradients for the feeds at the given parameter values (LoRA dropout on, masks drawn from `dropoutSeed`). */
  step(feeds: Readonly<Record<string, Tensor>>, parameters: ParameterValues, options?: TrainingStepOptions): Promise<TrainingStepOutput>;
  /** Forward pass only: loss and logits at the trained positions. */
  evaluate(feeds: Readonly<Record<string, Tensor>>, parameters: ParameterValues): Promise<EvaluationOutput>;
  release(): Promise<void>;
}

/** Create the sessions of a training graph on a backend (`runtime.backend` of `@vlit/runtime/node` or `/web`). */
export async function createTrainingSession(backend: InferenceBackend, graph: TrainingGraph, options: SessionOptions = {}): Promise<TrainingSession> {
  const gradientSession = await backend.createSession(encodeModel(graph.gradient), options);
  let forwardSession: Promise<InferenceSession> | undefined;
  const feedsWith = (feeds: Readonly<Record<string, Tensor>>, parameters: ParameterValues, dropoutSeed: number | null): Record<string, Tensor> => {
    const all: Record<string, Tensor> = { ...feeds };
    if (graph.dropout) {
      const seed = dropoutSeed ?? 0;
      if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 31) {
        throw new InvalidArgumentError(`dropoutSeed must be an integer in [0, 2^31), got ${seed}`, { details: { field: 'dropoutSeed' } });
      }
      all[TRAINING_IO.loraDropoutSeed] = createTensor('int64', [1], [BigInt(seed)]);
      all[TRAINING_IO.loraDropoutOn] = createTensor('float32', [1], [dropoutSeed === null ? 0 : 1]);
    }
    for (const p of graph.parameters) {
      const data = parameters.get(p.name);
      if (!data || data.length !== p.initial.data.length) {
        throw new InvalidArgumentError(`parameter '${p.name}' is missing or has ${data?.length ?? 0} elements, expected ${p.initial.data.length}`, {
          details: { field: p.name },
        });
      }
      all[p.name] = createTensor('float32', p.initial.dims, data);
    }
    return all;
  };
  const scalar = (t: Tensor | undefined, what: string): number => {
    if (!t || t.data.length !== 1) throw new BackendError(`the training graph returned no scalar ${what}`, { details: { field: what } });
    return Number(t.data[0]);
  };
  return {
    graph,
    async step(feeds, parameters, stepOptions = {}) {
      const out = await gradientSession.run(feedsWith(feeds, parameters, stepOptions.dropoutSeed ?? 0));
      const gradients = new Map<string, Float32Array>();
      for (const p of graph.parameters) {
        const g = out[gradientName(p.name)];
        if (!g || !(g.data instanceof Float32Array))
          throw new BackendError(`the gradient model returned no float32 gradient for '${p.name}'`, { details: { field: p.name } });
        gradients.set(p.name, Float32Array.from(g.data));
      }
      return { loss: scalar(out[TRAINING_IO.loss], TRAINING_IO.loss), gradients };
    },
    async evaluate(feeds, parameters) {
      forwardSession ??= backend.createSession(encodeModel(graph.forward), options);
      const out = await (await forwardSession).run(feedsWith(feeds, parameters, null));
      return { loss: scalar(out[TRAINING_IO.loss], TRAINING_IO.loss), logits: out[TRAINING_IO.trainedLogits] as Tensor<'float32'> };
    },
    async release() {
      await gradientSession.release();
      if (forwardSession) await (await forwardSession).release();
    },
  };
}
