import { Template } from '@huggingface/jinja';
import { FormatError, IMAGE_PLACEHOLDER, InvalidArgumentError, type ChatMessage, type RenderedSegment, type RenderOptions } from '@vlit/core';
import { messageText } from './content.js';
import type { SegmentedChatTemplate } from './chat-template.js';
import { specialTokenText, tokenizerConfigSchema } from './hf-tokenizer.js';
import { guardsHold, traceContentGuards, type ContentGuard } from './jinja-trace.js';

/** Options of createJinjaChatTemplate. */
export interface JinjaChatTemplateOptions {
  /** The Jinja source (a tokenizer_config.json `chat_template`). */
  source: string;
  /** Name for manifests and error messages, e.g. `hf:Qwen/Qwen3`. Default `hf-jinja`. */
  name?: string;
  /** The single token each image becomes before expansion. Default `<image>`. */
  imageToken?: string;
  /** What an image placeholder renders as in string content. Defaults to `imageToken`. */
  imageText?: string;
  /**
   * How message content reaches the template: `string` (images replaced by `imageText`; what text-only
   * templates such as Qwen3's expect) or `parts` (a list of `{type:'text'|'image'}` for multimodal templates).
   */
  contentFormat?: 'string' | 'parts';
  /** Template variables every render gets: `bos_token`, `eos_token`, ... (from tokenizer_config.json). */
  variables?: Record<string, unknown>;
  /**
   * Trailing whitespace after an assistant turn's end-of-turn marker is template glue (e.g. ChatML's
   * "\n" after <|im_end|>): the model never generates it. Default true.
   */
  trailingWhitespaceIsGlue?: boolean;
  /**
   * Reuse segment boundaries per conversation shape: no render for a conversation whose contents answer
   * the template's traced content questions as the shape's probe did (see jinja-trace.ts), else one
   * render checked against the boundaries, instead of one render per prefix and per assistant turn.
   * Default true; false always derives segments from prefix renders.
   */
  segmentCache?: boolean;
}

/** Where a rendering went wrong, for errors that name the message. */
function firstDifference(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return i;
  return n;
}

function snippet(text: string, at: number): string {
  return JSON.stringify(text.slice(Math.max(0, at - 20), at + 30));
}

/**
 * The shortest tail of `prefix` whose removal leaves a prefix of `full`, when `full` ends with that same
 * tail (and it equals the tail already seen, if any); undefined when there is none.
 */
function endingOf(prefix: string, full: string, seen: string | undefined): string | undefined {
  if (seen !== undefined) {
    return prefix.endsWith(seen) && full.startsWith(prefix.slice(0, prefix.length - seen.length)) ? seen : undefined;
  }
  for (let k = 1; k <= prefix.length; k++) {
    const tail = prefix.slice(prefix.length - k);
    if (!full.endsWith(tail)) return undefined;
    if (full.startsWith(prefix.slice(0, prefix.length - k))) return tail;
  }
  return undefined;
}

/**
 * Render any Hugging Face chat template with @huggingface/jinja. Segments come from rendering prefixes of
 * the conversation and diffing them against the full rendering; where a template renders history
 * differently from a conversation's end (so prefixes are not prefixes), renderSegments fails loudly.
 */
export function createJinjaChatTemplate(options: JinjaChatTemplateOptions): SegmentedChatTemplate {
  const name = options.name ?? 'hf-jinja';
  if (typeof options.source !== 'string' || options.source.length === 0) {
    throw new InvalidArgumentError('chat template source must be a non-empty string', {
      details: { record: name, field: 'chat_template' },
    });
  }
  let template: Template;
  try {
    template = new Template(options.source);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new FormatError(`malformed Jinja chat template: ${reason}`, {
      cause,
      details: { record: name, field: 'chat_template', reason: `malformed Jinja chat template: ${reason}` },
    });
  }
  const imageToken = options.imageToken ?? IMAGE_PLACEHOLDER;
  const imageText = options.imageText ?? imageToken;
  const contentFormat = options.contentFormat ?? 'string';
  const trailingGlue = options.trailingWhitespaceIsGlue ?? true;
  const baseVariables = options.variables ?? {};
  const useCache = options.segmentCache ?? true;

  const toTemplateMessage = (m: ChatMessage): Record<string, unknown> => {
    if (contentFormat === 'string') return { role: m.role, content: messageText(m, imageText) };
    const parts =
      typeof m.content === 'string'
        ? m.content.split(IMAGE_PLACEHOLDER).flatMap((text, i) => (i === 0 ? [] : [{ type: 'image' }]).concat(text ? [{ type: 'text', text } as never] : []))
        : m.content.map((p) => ({ ...p }));
    return { role: m.role, content: parts };
  };

  const renderRaw = (messages: readonly ChatMessage[], renderOptions: RenderOptions = {}): string => {
    try {
      return template.render({
        ...baseVariables,
        ...renderOptions.variables,
        messages: messages.map(toTemplateMessage),
        add_generation_prompt: renderOptions.addGenerationPrompt ?? false,
      });
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new FormatError(`chat template ${name} failed to render: ${reason}`, {
        cause,
        details: { field: 'messages', template: name, reason: `chat template ${name} failed to render: ${reason}` },
      });
    }
  };

  const renderSegmentsByPrefixes = (messages: readonly ChatMessage[], renderOptions: RenderOptions = {}): RenderedSegment[] => {
    const noGen = { ...renderOptions, addGenerationPrompt: false };
    const full = renderRaw(messages, renderOptions);
    const segs: RenderedSegment[] = [];
    const push = (text: string, messageIndex: number, trainable: boolean): void => {
      if (!text) return;
      const role = messageIndex >= 0 ? messages[messageIndex].role : undefined;
      segs.push({ text, messageIndex, ...(role ? { role } : {}), trainable });
    };
    let done = 0; // characters of `full` already assigned to segments
    let ending: string | undefined;
    for (let i = 0; i < messages.length; i++) {
      let prefix = renderRaw(messages.slice(0, i + 1), noGen);
      if (ending !== undefined && prefix.endsWith(ending)) prefix = prefix.slice(0, prefix.length - ending.length);
      else if (!full.startsWith(prefix)) {
        // A fixed text appended only at a conversation's end (Phi-3's EOS) is allowed: strip it once seen.
        const tail = endingOf(prefix, full, ending);
        if (tail !== undefined) {
          ending = tail;
          prefix = prefix.slice(0, prefix.length - tail.length);
        }
      }
      if (!full.startsWith(prefix)) {
        const at = firstDifference(prefix, full);
        const reason =
          `chat template ${name} renders messages 0..${i} differently on their own than inside the whole conversation ` +
          `(at character ${at}: alone ${snippet(prefix, at)}, in context ${snippet(full, at)}); segments cannot be derived ` +
          `from prefixes, so label masks would be guesses (e.g. a template that drops reasoning from earlier turns: ` +
          `encode one sample per assistant turn, or use a built-in template)`;
        throw new FormatError(reason, { details: { field: `messages.${i}`, template: name, reason } });
      }
      if (prefix.length < done) {
        const reason = `chat template ${name} renders messages 0..${i} shorter than messages 0..${i - 1}`;
        throw new FormatError(reason, { details: { field: `messages.${i}`, template: name, reason } });
      }
      if (messages[i].role === 'assistant') {
        // The inference prompt for this history must be exactly the training text before the answer.
        const prompt = renderRaw(messages.slice(0, i), { ...renderOptions, addGenerationPrompt: true });
        if (!prefix.startsWith(prompt) || prompt.length < done) {
          const at = firstDifference(prompt, prefix);
          const reason =
            `chat template ${name}: the generation prompt for messages 0..${i - 1} is not what the training rendering ` +
            `has before assistant message ${i} (at character ${at}: inference ${snippet(prompt, at)}, training ${snippet(prefix, at)})`;
          throw new FormatError(reason, { details: { field: `messages.${i}`, template: name, reason } });
        }
        push(full.slice(done, prompt.length), i, false);
        let end = prefix.length;
        if (trailingGlue) while (end > prompt.length && /\s/.test(prefix[end - 1])) end--;
        push(full.slice(prompt.length, end), i, true);
        push(full.slice(end, prefix.length), i, false);
      } else {
        push(full.slice(done, prefix.length), i, false);
      }
      done = prefix.length;
    }
    push(full.slice(done), -1, false);
    return segs;
  };

  // Skeletons: the segments of a conversation shape (roles, render options) with every message's
  // content replaced by a marker, derived once by the prefix method and then reused. A conversation
  // of that shape is rendered once; if substituting its contents into the skeleton reproduces that
  // rendering exactly, the skeleton's boundaries are its boundaries. Otherwise (a template that looks
  // inside content, or whitespace the glue rule would move) the prefix method runs for it as before.
  const skeletons = new Map<string, Skeleton | null>();
  const skeletonFor = (messages: readonly ChatMessage[], renderOptions: RenderOptions): Skeleton | null => {
    let key: string;
    try {
      key = JSON.stringify([messages.map((m) => m.role), renderOptions.addGenerationPrompt ?? false, renderOptions.variables ?? null]);
    } catch {
      return null;
    }
    const hit = skeletons.get(key);
    if (hit !== undefined) return hit;
    let skeleton: Skeleton | null = null;
    try {
      const probe = messages.map((m, i) => ({ role: m.role, content: marker(i) }) as ChatMessage);
      skeleton = buildSkeleton(renderSegmentsByPrefixes(probe, renderOptions), messages.length);
      if (skeleton) {
        // One traced render of the probe: the questions the template asks about contents. When a
        // conversation's contents give the same answers, the template takes the same path for it.
        const trace = traceContentGuards(
          template,
          { ...baseVariables, ...renderOptions.variables, add_generation_prompt: renderOptions.addGenerationPrompt ?? false },
          probe.map((m) => ({ role: m.role, content: messageText(m, imageText) })),
        );
        skeleton.guards = trace && trace.text === renderRaw(probe, renderOptions) ? trace.guards : null;
      }
    } catch {
      skeleton = null;
    }
    if (skeletons.size >= 256) skeletons.clear();
    skeletons.set(key, skeleton);
    return skeleton;
  };

  const renderSegments = (messages: readonly ChatMessage[], renderOptions: RenderOptions = {}): RenderedSegment[] => {
    if (useCache && contentFormat === 'string' && messages.length > 0) {
      const skeleton = skeletonFor(messages, renderOptions);
      if (skeleton) {
        const contents = messages.map((m) => messageText(m, imageText));
        const segs = fillSkeleton(skeleton, contents, messages, trailingGlue);
        if (segs) {
          if (skeleton.guards && guardsHold(skeleton.guards, contents)) return segs;
          const full = renderRaw(messages, renderOptions);
          let at = 0;
          let same = true;
          for (const seg of segs) {
            if (!full.startsWith(seg.text, at)) {
              same = false;
              break;
            }
            at += seg.text.length;
          }
          if (same && at === full.length) return segs;
        }
      }
    }
    return renderSegmentsByPrefixes(messages, renderOptions);
  };

  return {
    name,
    imageToken,
    imageText,
    render: renderRaw,
    renderSegments,
  };
}

/** A segment list in which message contents are holes. */
interface Skeleton {
  segments: Array<{ parts: Array<string | number>; messageIndex: number; trainable: boolean }>;
  /** The content observations of the shape's traced render; null where tracing does not apply. */
  guards: ContentGuard[] | null;
}

// Private-use characters: no chat template or tokenizer gives them meaning.
const marker = (i: number): string => `\uE000${i}\uE001`;
const MARKER_RE = /\uE000(\d+)\uE001/g;

/** Split segment texts at the content markers; null unless every message's marker appears exactly once. */
function buildSkeleton(segments: readonly RenderedSegment[], count: number): Skeleton | null {
  const seen = new Array<number>(count).fill(0);
  const out: Skeleton['segments'] = [];
  for (const seg of segments) {
    const parts: Array<string | number> = [];
    let last = 0;
    for (const m of seg.text.matchAll(MARKER_RE)) {
      const i = Number(m[1]);
      if (i >= count) return null;
      seen[i]++;
      if (m.index > last) parts.push(seg.text.slice(last, m.index));
      parts.push(i);
      last = m.index + m[0].length;
    }
    if (last < seg.text.length) parts.push(seg.text.slice(last));
    if (/[\uE000\uE001]/.test(parts.filter((p) => typeof p === 'string').join(''))) return null;
    out.push({ parts, messageIndex: seg.messageIndex, trainable: seg.trainable });
  }
  return seen.every((n) => n === 1) ? { segments: out, guards: null } : null;
}

/**
 * The segments of a conversation from its skeleton; null where the prefix method could place a
 * boundary differently (content that is empty, holds marker characters, or ends a trainable
 * segment with whitespace the glue rule would move out of it).
 */
function fillSkeleton(skeleton: Skeleton, contents: readonly string[], messages: readonly ChatMessage[], trailingGlue: boolean): RenderedSegment[] | null {
  const out: RenderedSegment[] = [];
  for (const seg of skeleton.segments) {
    let text = '';
    for (let k = 0; k < seg.parts.length; k++) {
      const p = seg.parts[k];
      if (typeof p === 'string') text += p;
      else {
        const c = contents[p];
        if (c.length === 0 || c.includes('\uE000') || c.includes('\uE001')) return null;
        if (trailingGlue && seg.trainable && k === seg.parts.length - 1 && /\s$/.test(c)) return null;
        text += c;
      }
    }
    if (!text) continue;
    const role = seg.messageIndex >= 0 ? messages[seg.messageIndex].role : undefined;
    out.push({ text, messageIndex: seg.messageIndex, ...(role ? { role } : {}), trainable: seg.trainable });
  }
  return out;
}

/** Options of chatTemplateFromConfig. */
export interface ChatTemplateFromConfigOptions extends Omit<JinjaChatTemplateOptions, 'source'> {
  /** Which named template when `chat_template` is a list. Default `default`. */
  templateName?: string;
}

/** Create the chat template of a parsed tokenizer_config.json, with its special tokens as variables. */
export function chatTemplateFromConfig(config: unknown, options: ChatTemplateFromConfigOptions = {}): SegmentedChatTemplate {
  const parsed = tokenizerConfigSchema.safeParse(config);
  const name = options.name ?? 'hf-jinja';
  if (!parsed.success) {
    throw new FormatError(`not a tokenizer_config.json: ${parsed.error.issues[0].message}`, {
      cause: parsed.error,
      details: { record: name, field: parsed.error.issues[0].path.map(String).join('.') || '(root)' },
    });
  }
  const c = parsed.data;
  let source: string | undefined;
  if (typeof c.chat_template === 'string') source = c.chat_template;
  else if (Array.isArray(c.chat_template)) {
    const wanted = options.templateName ?? 'default';
    source = c.chat_template.find((t) => t.name === wanted)?.template;
  }
  if (source === undefined) {
    throw new FormatError('tokenizer_config.json has no chat_template', { details: { record: name, field: 'chat_template' } });
  }
  const variables: Record<string, unknown> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const) {
    const text = specialTokenText(c[key]);
    if (text !== undefined) variables[key] = text;
  }
  return createJinjaChatTemplate({ ...options, source, name, variables: { ...variables, ...options.variables } });
}
