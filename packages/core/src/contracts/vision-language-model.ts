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

/** Encoder + connector + language model behind one interface, local or remote. */
export interface VisionLanguageModel {
  readonly id: string;
  /** Generate the next assistant turn. */
  generate(request: VisionLanguageRequest, options?: GenerationOptions): Promise<GenerationResult>;
  /** Score candidate assistant replies to the request by log-likelihood. */
  score(request: VisionLanguageRequest, candidates: readonly string[]): Promise<CandidateScore[]>;
}
