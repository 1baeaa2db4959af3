/** What `vlit eval` and `vlit serve` share: a model from a checkpoint folder or an OpenAI-compatible endpoint. */
import type { VisionLanguageModel, VlitRuntime } from '@vlit/core';
import { createOpenAICompatibleModel } from '@vlit/models';
import { loadVisionLanguageModel } from '@vlit/models/node';
import { createNodeRuntime } from '@vlit/runtime/node';

/** A model ready to use and the way to release it. */
export interface OpenedModel {
  model: VisionLanguageModel;
  /** `folder` (a local checkpoint, scored by likelihood) or `endpoint` (a remote model, generation only). */
  kind: 'folder' | 'endpoint';
  runtime: VlitRuntime;
  dispose(): Promise<void>;
}

/** Load a LLaVA checkpoint folder with the node runtime. */
export async function openModelFolder(dir: string): Promise<OpenedModel> {
  const runtime = createNodeRuntime();
  const model = await loadVisionLanguageModel(dir, { runtime });
  return { model, kind: 'folder', runtime, dispose: () => model.dispose() };
}

/** A remote OpenAI-compatible model (`baseURL` includes /v1); images are sent as PNG data URLs. */
export function openEndpoint(baseURL: string, modelName: string, apiKey: string | undefined): OpenedModel {
  const runtime = createNodeRuntime();
  const model = createOpenAICompatibleModel({ baseURL, model: modelName, images: runtime.images, ...(apiKey ? { apiKey } : {}) });
  return { model, kind: 'endpoint', runtime, dispose: async () => undefined };
}
