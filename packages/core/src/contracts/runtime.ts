import type { ImageCodec } from './image-codec.js';
import type { InferenceBackend } from './inference-backend.js';

/**
 * Everything platform-specific that the other packages need, handed to them explicitly.
 * `@vlit/runtime/node` and `@vlit/runtime/web` each create one.
 */
export interface VlitRuntime {
  /** `node` or `web`. */
  readonly platform: 'node' | 'web';
  readonly backend: InferenceBackend;
  readonly images: ImageCodec;
}
