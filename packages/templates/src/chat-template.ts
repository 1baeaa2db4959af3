import {
  FormatError,
  InvalidArgumentError,
  IMAGE_PLACEHOLDER,
  type ChatMessage,
  type ChatTemplate,
  type RenderedSegment,
  type RenderOptions,
} from '@vlit/core';
import { z } from 'zod';
import { messageText } from './content.js';

/** Prefix/suffix glue around a user or system message. */
export const turnGlueSchema = z.object({ prefix: z.string(), suffix: z.string() });

/**
 * Glue around an assistant message. `prefix` and `suffix` are template glue (never trained);
 * `open` + content + `close` is what the model must produce, so it is the trainable span.
 * A separator that a tokenizer would merge into the first answer token (a space) belongs in `open`.
 */
export const assistantGlueSchema = z.object({
  prefix: z.string(),
  open: z.string().default(''),
  close: z.string(),
  suffix: z.string().default(''),
});

/** A turn-based chat format, enough to describe LLaVA, Vicuna, Llama-2/3, ChatML, Gemma and Phi-3. */
export const turnFormatSchema = z.object({
  name: z.string().min(1),
  /** The single token each image placeholder becomes before expansion. */
  imageToken: z.string().min(1),
  /** What an image renders as in text; must contain `imageToken` once. Defaults to `imageToken`. */
  imageText: z.string().optional(),
  /** Rendered once at the very start (the tokenizer's BOS as text). */
  bos: z.string().default(''),
  /** How a system message is rendered: as its own turn, folded into the first user message, or refused. */
  system: z.union([
    z.object({ kind: z.literal('turn'), prefix: z.string(), suffix: z.string() }),
    z.object({ kind: z.literal('fold'), before: z.string(), after: z.string(), beforeTransform: z.boolean().default(false) }),
    z.object({ kind: z.literal('unsupported') }),
  ]),
  /** System text used when the conversation has none (LLaVA's Vicuna system prompt). */
  defaultSystem: z.string().optional(),
  user: turnGlueSchema,
  assistant: assistantGlueSchema,
  /** Text that asks for the next assistant turn (what inference appends after the history). */
  generationPrompt: z.string(),
  /** Appended after the last message when no generation prompt is asked for (Phi-3's EOS). */
  endOfConversation: z.string().default(''),
  /** Whitespace handling of message content, as the published template does it. */
  contentTransform: z.enum(['none', 'trim']).default('none'),
});
export type TurnFormat = z.infer<typeof turnFormatSchema>;
export type TurnFormatInput = z.input<typeof turnFormatSchema>;

/** A chat template whose segments are known exactly (built-ins and turn formats); renderSegments is always present. */
export interface SegmentedChatTemplate extends ChatTemplate {
  renderSegments(messages: readonly ChatMessage[], options?: RenderOptions): RenderedSegment[];
  /** Text an image placeholder renders as (contains `imageToken` once). */
  readonly imageText: string;
}

/** Check that messages are [system?] user (assistant user)* [assistant]; templates built on turns assume it. */
export function checkAlternation(messages: readonly ChatMessage[]): void {
  let start = 0;
  if (messages.length && messages[0].role === 'system') start = 1;
  for (let i = start; i < messages.length; i++) {
    const expected = (i - start) % 2 === 0 ? 'user' : 'assistant';
    if (messages[i].role !== expected) {
      throw new FormatError(
        `message ${i} has role '${messages[i].role}' where '${expected}' was expected (roles must alternate user/assistant after an optional system message)`,
        {
          details: { field: `messages.${i}.role`, reason: 'roles must alternate' },
        },
      );
    }
  }
}

/** Create a chat template from a turn format (validated with turnFormatSchema). */
export function createChatTemplate(spec: TurnFormatInput): SegmentedChatTemplate {
  const parsed = turnFormatSchema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidArgumentError(`invalid turn format: ${issue.message}`, {
      cause: parsed.error,
      details: { field: issue.path.map(String).join('.') || '(root)' },
    });
  }
  const f = parsed.data;
  const imageText = f.imageText ?? f.imageToken;
  if (imageText.split(f.imageToken).length !== 2) {
    throw new InvalidArgumentError(`imageText '${imageText}' must contain imageToken '${f.imageToken}' exactly once`, {
      details: { field: 'imageText' },
    });
  }
  const transform = (text: string): string => (f.contentTransform === 'trim' ? text.trim() : text);

  const renderSegments = (messages: readonly ChatMessage[], options: RenderOptions = {}): RenderedSegment[] => {
    checkAlternation(messages);
    const segs: RenderedSegment[] = [];
    const glue = (text: string, messageIndex: number, role?: ChatMessage['role']): void => {
      if (text) segs.push({ text, messageIndex, ...(role ? { role } : {}), trainable: false });
    };
    if (f.bos) glue(f.bos, -1);
    let system: string | undefined = f.defaultSystem;
    let first = 0;
    if (messages.length && messages[0].role === 'system') {
      system = messageText(messages[0], imageText);
      first = 1;
      if (f.system.kind === 'unsupported') {
        throw new FormatError(`template ${f.name} has no system role`, {
          details: { field: 'messages.0.role', reason: `template ${f.name} has no system role` },
        });
      }
    }
    if (system !== undefined && f.system.kind === 'turn') {
      const idx = first === 1 ? 0 : -1;
      glue(f.system.prefix, idx, idx === 0 ? 'system' : undefined);
      glue(transform(system), idx, idx === 0 ? 'system' : undefined);
      glue(f.system.suffix, idx, idx === 0 ? 'system' : undefined);
    }
    for (let i = first; i < messages.length; i++) {
      const m = messages[i];
      let text = messageText(m, imageText);
      if (m.role === 'user') {
        if (i === first && system !== undefined && f.system.kind === 'fold') {
          text = f.system.beforeTransform
            ? transform(f.system.before + system + f.system.after + text)
            : f.system.before + system + f.system.after + transform(text);
        } else text = transform(text);
        glue(f.user.prefix, i, 'user');
        glue(text, i, 'user');
        glue(f.user.suffix, i, 'user');
      } else {
        glue(f.assistant.prefix, i, 'assistant');
        segs.push({ text: f.assistant.open + transform(text) + f.assistant.close, messageIndex: i, role: 'assistant', trainable: true });
        glue(f.assistant.suffix, i, 'assistant');
      }
    }
    if (options.addGenerationPrompt) glue(f.generationPrompt, -1);
    else glue(f.endOfConversation, -1);
    return segs;
  };

  return {
    name: f.name,
    imageToken: f.imageToken,
    imageText,
    renderSegments,
    render: (messages, options) =>
      renderSegments(messages, options)
        .map((s) => s.text)
        .join(''),
  };
}

/** LLaVA's default system prompt for the Vicuna v1 conversation (llava/conversation.py, conv_vicuna_v1). */
export const VICUNA_SYSTEM_PROMPT =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";

/** Names of the built-in chat templates. */
export const builtinTemplateNames = ['llava-plain', 'llava-v1', 'llama-2', 'llama-3', 'chatml', 'gemma', 'phi-3'] as const;
export type BuiltinTemplateName = (typeof builtinTemplateNames)[number];

/** Options shared by the built-in templates. */
export interface BuiltinTemplateOptions {
  /** Override the image token (the single token that is expanded per image). */
  imageToken?: string;
  /** Override what an image renders as (must contain the image token once). */
  imageText?: string;
  /** Override the BOS text rendered at the start ('' for none). */
  bos?: string;
}

// Each format is named by its key; its image token is the Vlit placeholder unless the format says otherwise.
type BuiltinFormat = Omit<TurnFormatInput, 'name' | 'imageToken'> & { imageToken?: string };

const BUILTIN_FORMATS: Record<BuiltinTemplateName, BuiltinFormat> = {
  // LLaVA stage-1 format (train.py preprocess_plain): the image marker, the caption, "\n"; no roles.
  // The tokenizer's BOS is added by LLaVA's tokenizer_image_token, so it is rendered as text here.
  'llava-plain': {
    bos: '<s>',
    system: { kind: 'unsupported' },
    user: { prefix: '', suffix: '' },
    assistant: { prefix: '', close: '\n' },
    generationPrompt: '',
  },
  // conv_vicuna_v1 / conv_llava_v1 (SeparatorStyle.TWO, sep " ", sep2 "</s>"): "SYS USER: q ASSISTANT: a</s>".
  'llava-v1': {
    bos: '<s>',
    system: { kind: 'turn', prefix: '', suffix: ' ' },
    defaultSystem: VICUNA_SYSTEM_PROMPT,
    user: { prefix: 'USER: ', suffix: ' ' },
    assistant: { prefix: 'ASSISTANT:', open: ' ', close: '</s>' },
    generationPrompt: 'ASSISTANT:',
  },
  // meta-llama/Llama-2-*-chat-hf chat_template: BOS + "[INST] " per user turn, system folded as <<SYS>>, strip().
  'llama-2': {
    system: { kind: 'fold', before: '<<SYS>>\n', after: '\n<</SYS>>\n\n', beforeTransform: true },
    user: { prefix: '<s>[INST] ', suffix: ' [/INST]' },
    assistant: { prefix: '', open: ' ', close: ' </s>' },
    generationPrompt: '',
    contentTransform: 'trim',
  },
  // meta-llama/Meta-Llama-3-*-Instruct chat_template: header blocks, content | trim, <|eot_id|>.
  'llama-3': {
    bos: '<|begin_of_text|>',
    system: { kind: 'turn', prefix: '<|start_header_id|>system<|end_header_id|>\n\n', suffix: '<|eot_id|>' },
    user: { prefix: '<|start_header_id|>user<|end_header_id|>\n\n', suffix: '<|eot_id|>' },
    assistant: { prefix: '<|start_header_id|>assistant<|end_header_id|>\n\n', close: '<|eot_id|>' },
    generationPrompt: '<|start_header_id|>assistant<|end_header_id|>\n\n',
    contentTransform: 'trim',
  },
  // ChatML as Qwen uses it; images as Qwen2-VL's <|vision_start|><|image_pad|><|vision_end|>.
  chatml: {
    imageToken: '<|image_pad|>',
    imageText: '<|vision_start|><|image_pad|><|vision_end|>',
    system: { kind: 'turn', prefix: '<|im_start|>system\n', suffix: '<|im_end|>\n' },
    user: { prefix: '<|im_start|>user\n', suffix: '<|im_end|>\n' },
    assistant: { prefix: '<|im_start|>assistant\n', close: '<|im_end|>', suffix: '\n' },
    generationPrompt: '<|im_start|>assistant\n',
  },
  // google/gemma-*-it chat_template: "model" role, content | trim; a system message is folded into
  // the first user turn the way Gemma 3's template does (Gemma 1/2 refuse it).
  gemma: {
    bos: '<bos>',
    system: { kind: 'fold', before: '', after: '\n\n' },
    user: { prefix: '<start_of_turn>user\n', suffix: '<end_of_turn>\n' },
    assistant: { prefix: '<start_of_turn>model\n', close: '<end_of_turn>', suffix: '\n' },
    generationPrompt: '<start_of_turn>model\n',
    contentTransform: 'trim',
  },
  // microsoft/Phi-3-mini-4k-instruct chat_template: <|role|>\n ... <|end|>\n, EOS when no generation prompt.
  'phi-3': {
    system: { kind: 'turn', prefix: '<|system|>\n', suffix: '<|end|>\n' },
    user: { prefix: '<|user|>\n', suffix: '<|end|>\n' },
    assistant: { prefix: '<|assistant|>\n', close: '<|end|>', suffix: '\n' },
    generationPrompt: '<|assistant|>\n',
    endOfConversation: '<|endoftext|>',
  },
};

/** Create one of the built-in chat templates by name. */
export function createBuiltinTemplate(name: BuiltinTemplateName, options: BuiltinTemplateOptions = {}): SegmentedChatTemplate {
  const base = BUILTIN_FORMATS[name];
  if (!base) {
    throw new InvalidArgumentError(`unknown built-in template '${String(name)}'; known: ${builtinTemplateNames.join(', ')}`, {
      details: { field: 'name' },
    });
  }
  const imageToken = options.imageToken ?? base.imageToken ?? IMAGE_PLACEHOLDER;
  const imageText = options.imageText ?? (options.imageToken !== undefined ? options.imageToken : base.imageText);
  return createChatTemplate({
    ...base,
    name,
    imageToken,
    ...(imageText !== undefined ? { imageText } : {}),
    ...(options.bos !== undefined ? { bos: options.bos } : {}),
  });
}
