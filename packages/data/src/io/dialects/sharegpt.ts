import type { ChatMessage, VlitRecord } from '@vlit/core';
import { UnsupportedError, ValidationError } from '@vlit/core';
import { z } from 'zod';
import { contentToText, extraFields, imagePath, isObject, parseNative, type EncodedNative, type RecordDialect } from '../codec.js';
import { decodeId, defineDialect, encodeId, type DecodedFields } from './define-dialect.js';
import { registerDialectSpec } from './spec.js';

/** A LLaMA-Factory name map (`columns`, `tags`): each key optional, each value a non-empty native name. */
function nameMapSchema<const K extends string>(keys: readonly K[]) {
  const shape = Object.fromEntries(keys.map((k) => [k, z.string().min(1).optional()])) as Record<K, z.ZodOptional<z.ZodString>>;
  return z.looseObject(shape);
}

/** LLaMA-Factory column names (`dataset_info.json` `columns`). */
const COLUMN_KEYS = ['messages', 'system', 'tools', 'images', 'prompt', 'query', 'response', 'history'] as const;
export const shareGptColumnsSchema = nameMapSchema(COLUMN_KEYS);
export type ShareGptColumns = z.infer<typeof shareGptColumnsSchema>;

/** LLaMA-Factory role and content tags (`dataset_info.json` `tags`). */
const TAG_KEYS = ['role_tag', 'content_tag', 'user_tag', 'assistant_tag', 'observation_tag', 'function_tag', 'system_tag'] as const;
export const shareGptTagsSchema = nameMapSchema(TAG_KEYS);
export type ShareGptTags = z.infer<typeof shareGptTagsSchema>;

/** One `dataset_info.json` entry. */
export const datasetInfoEntrySchema = z.looseObject({
  file_name: z.string().min(1).optional(),
  hf_hub_url: z.string().optional(),
  formatting: z.enum(['alpaca', 'sharegpt', 'openai']).optional(),
  columns: shareGptColumnsSchema.optional(),
  tags: shareGptTagsSchema.optional(),
});
export type DatasetInfoEntry = z.infer<typeof datasetInfoEntrySchema>;
/** LLaMA-Factory's `dataset_info.json`: dataset name -> entry. */
export const datasetInfoSchema = z.record(z.string(), datasetInfoEntrySchema);
export type DatasetInfo = z.infer<typeof datasetInfoSchema>;

/** Options of the ShareGPT / LLaMA-Factory dialects. */
export interface ShareGptOptions {
  columns?: ShareGptColumns;
  tags?: ShareGptTags;
}

interface ResolvedTags {
  role: string;
  content: string;
  user: string;
  assistant: string;
  system: string;
  observation: string;
  function: string;
}

function resolveTags(tags: ShareGptTags = {}): ResolvedTags {
  return {
    role: tags.role_tag ?? 'from',
    content: tags.content_tag ?? 'value',
    user: tags.user_tag ?? 'human',
    assistant: tags.assistant_tag ?? 'gpt',
    system: tags.system_tag ?? 'system',
    observation: tags.observation_tag ?? 'observation',
    function: tags.function_tag ?? 'function_call',
  };
}

const imagesSchema = z.array(z.string().min(1));

function decodeImages(native: Record<string, unknown>, column: string | undefined, hints: Record<string, unknown>): string[] {
  if (!column || native[column] === undefined || native[column] === null) return [];
  const images = parseNative(imagesSchema, native[column], 'image list');
  if (images.length === 0) hints.emptyImages = true;
  return images;
}

function encodeImages(out: Record<string, unknown>, record: VlitRecord, column: string | undefined, hints: Record<string, unknown>): void {
  if (!column) return;
  if (record.images.length || hints.emptyImages === true) out[column] = record.images.map(imagePath);
}

type Dropped = NonNullable<EncodedNative['dropped']>;

/** What sets one LLaMA-Factory format apart; the `id`, `system` and `images` columns work alike in all of them. */
interface LlamaFactoryFormat {
  name: string;
  /** Column names; `system` and `images` are the shared ones. */
  col: { system: string; images: string };
  known: string[];
  recordSchema: z.ZodType;
  /** The messages that follow the system prompt. */
  decode(r: Record<string, unknown>, hints: Record<string, unknown>): ChatMessage[];
  /** Writes the format's own columns from the messages after the system prompt; returns those it cannot hold. */
  encode(out: Record<string, unknown>, messages: { m: ChatMessage; index: number }[], hints: Record<string, unknown>): Dropped;
}

/** A LLaMA-Factory dialect: a leading string system message is the `system` column (an empty one kept as a hint). */
function llamaFactoryDialect(format: LlamaFactoryFormat): RecordDialect {
  const { name, col } = format;
  return defineDialect({
    name,
    layout: { kind: 'array' },
    known: format.known,
    parse: (native) => parseNative(format.recordSchema, native, `${name} record`) as Record<string, unknown>,
    decode(r, ctx, hints): DecodedFields {
      const id = decodeId(r, `${name}-${ctx.index}`, hints);
      const messages: ChatMessage[] = [];
      const system = r[col.system] as string | undefined;
      if (system !== undefined) {
        if (system === '') hints.emptySystem = true;
        else messages.push({ role: 'system', content: system });
      }
      messages.push(...format.decode(r, hints));
      return { id, images: decodeImages(r, col.images, hints), messages };
    },
    encode(record, ctx, hints): EncodedNative {
      const out: Record<string, unknown> = {};
      encodeId(out, record, `${name}-${ctx.index}`, hints);
      let messages = record.messages.map((m, index) => ({ m, index }));
      let system: string | undefined = hints.emptySystem === true ? '' : undefined;
      if (messages[0]?.m.role === 'system' && typeof messages[0].m.content === 'string') {
        system = messages[0].m.content;
        messages = messages.slice(1);
      }
      const dropped = format.encode(out, messages, hints);
      if (system !== undefined) out[col.system] = system;
      encodeImages(out, record, col.images, hints);
      return { native: out, dropped };
    },
  });
}

/** A ShareGPT-format dialect (LLaMA-Factory `formatting: sharegpt`), with its columns and tags. */
export function createShareGptDialect(options: ShareGptOptions = {}, name = 'sharegpt'): RecordDialect {
  const plain = plainOptions(options);
  return registerDialectSpec(buildShareGptDialect(plain, name), { kind: 'sharegpt', options: plain, name });
}

/** The columns and tags read once into plain objects: the dialect is built from them here and, from its spec, on other threads. */
function plainOptions(options: ShareGptOptions): ShareGptOptions {
  const pick = <K extends string>(from: Partial<Record<K, unknown>> | undefined, keys: readonly K[]): Record<string, unknown> | undefined => {
    if (!from) return undefined;
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const v = from[k];
      if (v !== undefined) out[k] = v;
    }
    return out;
  };
  return { columns: pick(options.columns, COLUMN_KEYS) as ShareGptColumns | undefined, tags: pick(options.tags, TAG_KEYS) as ShareGptTags | undefined };
}

function buildShareGptDialect(options: ShareGptOptions, name: string): RecordDialect {
  const tags = resolveTags(options.tags);
  const col = {
    messages: options.columns?.messages ?? 'conversations',
    system: options.columns?.system ?? 'system',
    images: options.columns?.images ?? 'images',
  };
  const turnKnown = [tags.role, tags.content];
  const turnSchema = z.looseObject({ [tags.role]: z.string(), [tags.content]: z.string() });
  return llamaFactoryDialect({
    name,
    col,
    known: ['id', col.messages, col.system, col.images],
    recordSchema: z.looseObject({ [col.messages]: z.array(turnSchema).min(1), [col.system]: z.string().optional() }),
    decode(r, hints) {
      const turnFields: Record<string, Record<string, unknown>> = {};
      const messages = (r[col.messages] as Record<string, unknown>[]).map((t, i): ChatMessage => {
        const tag = t[tags.role] as string;
        const role = tag === tags.user ? 'user' : tag === tags.assistant ? 'assistant' : tag === tags.system ? 'system' : undefined;
        if (!role) {
          const what = tag === tags.observation || tag === tags.function ? 'tool turns have no canonical role' : 'unknown role tag';
          throw new UnsupportedError(`${what}: '${tag}'`, { details: { field: `${col.messages}.${i}.${tags.role}` } });
        }
        const extra = extraFields(t, turnKnown);
        if (extra) turnFields[i] = extra;
        return { role, content: t[tags.content] as string };
      });
      if (Object.keys(turnFields).length) hints.turnFields = turnFields;
      return messages;
    },
    encode(out, messages, hints) {
      const dropped: Dropped = [];
      const turns: Record<string, unknown>[] = [];
      const turnFields = (hints.turnFields ?? {}) as Record<string, Record<string, unknown>>;
      for (const { m, index } of messages) {
        if (m.role === 'system') dropped.push({ index, message: m });
        else {
          const tag = m.role === 'user' ? tags.user : tags.assistant;
          turns.push({ [tags.role]: tag, [tags.content]: contentToText(m.content), ...(turnFields[turns.length] ?? {}) });
        }
      }
      out[col.messages] = turns;
      return dropped;
    },
  });
}

/** ShareGPT with LLaMA-Factory's default tags (`conversations`, `from`/`value`, `human`/`gpt`). */
export const sharegptDialect: RecordDialect = createShareGptDialect();

/** An alpaca-format dialect (LLaMA-Factory `formatting: alpaca`): instruction/input/output, history, system, images. */
export function createAlpacaDialect(options: ShareGptOptions = {}, name = 'alpaca'): RecordDialect {
  const plain = { columns: plainOptions(options).columns };
  return registerDialectSpec(buildAlpacaDialect(plain, name), { kind: 'alpaca', options: plain, name });
}

function buildAlpacaDialect(options: ShareGptOptions, name: string): RecordDialect {
  const col = {
    prompt: options.columns?.prompt ?? 'instruction',
    query: options.columns?.query ?? 'input',
    response: options.columns?.response ?? 'output',
    history: options.columns?.history ?? 'history',
    system: options.columns?.system ?? 'system',
    images: options.columns?.images ?? 'images',
  };
  return llamaFactoryDialect({
    name,
    col,
    known: ['id', col.prompt, col.query, col.response, col.history, col.system, col.images],
    recordSchema: z.looseObject({
      [col.prompt]: z.string(),
      [col.query]: z.string().optional(),
      [col.response]: z.string(),
      [col.history]: z.array(z.tuple([z.string(), z.string()])).optional(),
      [col.system]: z.string().optional(),
    }),
    decode(r, hints) {
      const messages: ChatMessage[] = [];
      const history = r[col.history] as [string, string][] | undefined;
      if (history !== undefined && history.length === 0) hints.emptyHistory = true;
      for (const [q, a] of history ?? []) messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
      const instruction = r[col.prompt] as string;
      const input = r[col.query] as string | undefined;
      if (input === undefined) hints.noInput = true;
      let user = instruction;
      if (input) {
        hints.inputAt = instruction.length;
        user = `${instruction}\n${input}`;
      }
      messages.push({ role: 'user', content: user }, { role: 'assistant', content: r[col.response] as string });
      return messages;
    },
    encode(out, messages, hints) {
      const dropped: Dropped = [];
      const pairs: [string, string][] = [];
      let pendingUser: string | undefined;
      for (const { m, index } of messages) {
        if (m.role === 'user' && pendingUser === undefined) pendingUser = contentToText(m.content);
        else if (m.role === 'assistant' && pendingUser !== undefined) {
          pairs.push([pendingUser, contentToText(m.content)]);
          pendingUser = undefined;
        } else dropped.push({ index, message: m });
      }
      if (pendingUser !== undefined) pairs.push([pendingUser, '']);
      const last = pairs.pop() ?? ['', ''];
      const at = hints.inputAt;
      let instruction = last[0];
      let input = '';
      if (typeof at === 'number' && last[0][at] === '\n') {
        instruction = last[0].slice(0, at);
        input = last[0].slice(at + 1);
      }
      out[col.prompt] = instruction;
      if (input !== '' || hints.noInput !== true) out[col.query] = input;
      out[col.response] = last[1];
      if (pairs.length || hints.emptyHistory === true) out[col.history] = pairs;
      return dropped;
    },
  });
}

/** Alpaca with LLaMA-Factory's default columns. */
export const alpacaDialect: RecordDialect = createAlpacaDialect();

/** The dialect a `dataset_info.json` entry describes (sharegpt, alpaca, or openai-style sharegpt tags). */
export function dialectFromDatasetInfo(entry: DatasetInfoEntry, name?: string): RecordDialect {
  const formatting = entry.formatting ?? 'alpaca';
  if (formatting === 'alpaca') return createAlpacaDialect({ columns: entry.columns }, name ?? 'alpaca');
  return createShareGptDialect({ columns: entry.columns, tags: entry.tags }, name ?? 'sharegpt');
}

/** Parse a `dataset_info.json` value. */
export function parseDatasetInfo(value: unknown): DatasetInfo {
  if (!isObject(value)) throw new ValidationError('dataset_info.json must be an object of dataset entries', { details: { field: '(root)' } });
  return parseNative(datasetInfoSchema, value, 'dataset_info.json');
}

/** A `dataset_info.json` entry describing a file written with the given dialect options. */
export function datasetInfoEntry(options: { fileName: string; formatting: 'sharegpt' | 'alpaca' } & ShareGptOptions): DatasetInfoEntry {
  if (options.formatting === 'alpaca') {
    return {
      file_name: options.fileName,
      formatting: 'alpaca',
      columns: { prompt: 'instruction', query: 'input', response: 'output', history: 'history', system: 'system', images: 'images', ...options.columns },
    };
  }
  const tags = resolveTags(options.tags);
  return {
    file_name: options.fileName,
    formatting: 'sharegpt',
    columns: { messages: 'conversations', system: 'system', images: 'images', ...options.columns },
    tags: {
      role_tag: tags.role,
      content_tag: tags.content,
      user_tag: tags.user,
      assistant_tag: tags.assistant,
      system_tag: tags.system,
      observation_tag: tags.observation,
      function_tag: tags.function,
    },
  };
}
