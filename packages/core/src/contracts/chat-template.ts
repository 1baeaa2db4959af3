import type { ChatMessage } from '../schemas/record.js';

/** Options of one render. */
export interface RenderOptions {
  /** Append the prefix that asks the model for the next assistant turn. */
  addGenerationPrompt?: boolean;
  /** Extra variables passed to the template (e.g. `enable_thinking`). */
  variables?: Record<string, unknown>;
}

/** A rendered piece of a conversation: which message it came from and whether it is trained on. */
export interface RenderedSegment {
  text: string;
  /** Index of the message this text belongs to, or -1 for template glue outside any message. */
  messageIndex: number;
  /** Role of that message, when any. */
  role?: ChatMessage['role'];
  /** True for assistant answer text and its end-of-turn marker. */
  trainable: boolean;
}

/** Renders a conversation into the exact prompt text a model was trained on. */
export interface ChatTemplate {
  /** Name, e.g. `chatml` or `hf:Qwen/Qwen3` for a template from tokenizer_config.json. */
  readonly name: string;
  /** Text the template uses for one image placeholder before expansion (e.g. `<image>`). */
  readonly imageToken: string;
  /** Render messages to a prompt string. */
  render(messages: readonly ChatMessage[], options?: RenderOptions): string;
  /** Render with segment boundaries, so label masks come from offsets, never from searching strings. */
  renderSegments?(messages: readonly ChatMessage[], options?: RenderOptions): RenderedSegment[];
}
