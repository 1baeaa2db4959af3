import type { RawImage } from './image-codec.js';
import type { ChatMessage } from '../schemas/record.js';

/** Decoding settings; model-specific knobs live under `providerOptions`. */
export interface GenerationOptions {
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  stop?: readonly string[];
  seed?: number;
  /** Called with each new piece of text as it is produced. */
  onToken?: (text: string) => void;
  signal?: AbortSignal;
  providerOptions?: Record<string, unknown>;
}

/** A request: a conversation whose image placeholders refer to `images` in order. */
export interface VisionLanguageRequest {
  messages: readonly ChatMessage[];
  images?: readonly RawImage[];
}

/** What generation produced. */
export interface GenerationResult {
  text: string;
  tokenIds: number[];
  finishReason: 'stop' | 'length' | 'abort';
  usage: { promptTokens: number; completionTokens: number };
}

/** Log-likelihood of one candidate continuation. */
export interface CandidateScore {
  /** Sum of log-probabilities of the candidate's tokens. */
  logLikelihood: number;
  /** Number of candidate tokens, for length normalisation. */
  tokens: number;
}

/** One request of a batched generation, with its own settings (its `signal` aborts that request only). */
export interface BatchGenerationItem {
  request: VisionLanguageRequest;
  options?: GenerationOptions;
}

/** Encoder + connector + language model behind one interface, local or remote. */
export interface VisionLanguageModel {
  readonly id: string;
  /** Generate the next assistant turn. */
  generate(request: VisionLanguageRequest, options?: GenerationOptions): Promise<GenerationResult>;
  /**
   * Optional: generate for several requests at once (one batch on the model). Each item settles on its
   * own, in order, with what `generate` would give it alone; callers fall back to `generate` when absent.
   */
  generateBatch?(items: readonly BatchGenerationItem[]): Promise<PromiseSettledResult<GenerationResult>[]>;
  /** Score candidate assistant replies to the request by log-likelihood. */
  score(request: VisionLanguageRequest, candidates: readonly string[]): Promise<CandidateScore[]>;
}
