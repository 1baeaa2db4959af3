import type { ChatMessage, VlitRecord } from '@vlit/core';
import { UnsupportedError, ValidationError } from '@vlit/core';
import { z } from 'zod';
import {
  buildMetadata,
  contentToText,
  extraFields,
  hintsOf,
  imagePath,
  isObject,
  parseNative,
  writeExtras,
  type DraftRecord,
  type EncodedNative,
  type RecordDialect,
} from '../codec.js';

/** LLaMA-Factory column names (`dataset_info.json` `columns`). */
export const shareGptColumnsSchema = z.looseObject({
  messages: z.string().min(1).optional(),
  system: z.string().min(1).optional(),
  tools: z.string().min(1).optional(),
  images: z.string().min(1).optional(),
  prompt: z.string().min(1).optional(),
  query: z.string().min(1).optional(),
  response: z.string().min(1).optional(),
  history: z.string().min(1).optional(),
});
export type ShareGptColumns = z.infer<typeof shareGptColumnsSchema>;

/** LLaMA-Factory role and content tags (`dataset_info.json` `tags`). */
export const shareGptTagsSchema = z.looseObject({
  role_tag: z.string().min(1).optional(),
  content_tag: z.string().min(1).optional(),
  user_tag: z.string().min(1).optional(),
  assistant_tag: z.string().min(1).optional(),
  observation_tag: z.string().min(1).optional(),
  function_tag: z.string().min(1).optional(),
  system_tag: z.string().min(1).optional(),
});
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

function decodeId(native: Record<string, unknown>, fallback: string, hints: Record<string, unknown>): string {
  const id = native.id;
  if (id === undefined) return fallback;
  if (typeof id === 'number') {
    hints.numericId = true;
    return String(id);
  }
  if (typeof id !== 'string' || id === '') throw new ValidationError('id must be a non-empty string or a number', { details: { field: 'id' } });
  return id;
}

function encodeId(out: Record<string, unknown>, record: VlitRecord, fallback: string, hints: Record<string, unknown>): void {
  if (record.id === fallback) return;
  out.id = hints.numericId === true && /^-?\d+$/.test(record.id) ? Number(record.id) : record.id;
}

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

/** A ShareGPT-format dialect (LLaMA-Factory `formatting: sharegpt`), with its columns and tags. */
export function createShareGptDialect(options: ShareGptOptions = {}, name = 'sharegpt'): RecordDialect {
  const tags = resolveTags(options.tags);
  const col = {
    messages: options.columns?.messages ?? 'conversations',
    system: options.columns?.system ?? 'system',
    images: options.columns?.images ?? 'images',
  };
  const known = ['id', col.messages, col.system, col.images];
  const turnKnown = [tags.role, tags.content];
  const turnSchema = z.looseObject({ [tags.role]: z.string(), [tags.content]: z.string() });
  const recordSchema = z.looseObject({ [col.messages]: z.array(turnSchema).min(1), [col.system]: z.string().optional() });
  return {
    name,
    layout: { kind: 'array' },
    decode(native, ctx): DraftRecord {
      const r = parseNative(recordSchema, native, `${name} record`) as Record<string, unknown>;
      const hints: Record<string, unknown> = {};
      const id = decodeId(r, `${name}-${ctx.index}`, hints);
      const messages: ChatMessage[] = [];
      const system = r[col.system] as string | undefined;
      if (system !== undefined) {
        if (system === '') hints.emptySystem = true;
        else messages.push({ role: 'system', content: system });
      }
      const turnFields: Record<string, Record<string, unknown>> = {};
      (r[col.messages] as Record<string, unknown>[]).forEach((t, i) => {
        const tag = t[tags.role] as string;
        const role = tag === tags.user ? 'user' : tag === tags.assistant ? 'assistant' : tag === tags.system ? 'system' : undefined;
        if (!role) {
          const what = tag === tags.observation || tag === tags.function ? 'tool turns have no canonical role' : 'unknown role tag';
          throw new UnsupportedError(`${what}: '${tag}'`, { details: { field: `${col.messages}.${i}.${tags.role}` } });
        }
        const extra = extraFields(t, turnKnown);
        if (extra) turnFields[i] = extra;
        messages.push({ role, content: t[tags.content] as string });
      });
      if (Object.keys(turnFields).length) hints.turnFields = turnFields;
      return {
        id,
        images: decodeImages(r, col.images, hints),
        messages,
        source: { dataset: ctx.dataset ?? name, dialect: name },
        metadata: buildMetadata(extraFields(r, known), name, hints),
      };
    },
    encode(record, ctx): EncodedNative {
      const hints = hintsOf(record, name);
      const out: Record<string, unknown> = {};
      encodeId(out, record, `${name}-${ctx.index}`, hints);
      const dropped: NonNullable<EncodedNative['dropped']> = [];
      const turns: Record<string, unknown>[] = [];
      const turnFields = (hints.turnFields ?? {}) as Record<string, Record<string, unknown>>;
      let system: string | undefined = hints.emptySystem === true ? '' : undefined;
      record.messages.forEach((m, index) => {
        if (m.role === 'system') {
          if (index === 0 && typeof m.content === 'string') system = m.content;
          else dropped.push({ index, message: m });
          return;
        }
        const tag = m.role === 'user' ? tags.user : tags.assistant;
        turns.push({ [tags.role]: tag, [tags.content]: contentToText(m.content), ...(turnFields[turns.length] ?? {}) });
      });
      out[col.messages] = turns;
      if (system !== undefined) out[col.system] = system;
      encodeImages(out, record, col.images, hints);
      writeExtras(out, record.metadata, known, name);
      return { native: out, dropped };
    },
  };
}

/** ShareGPT with LLaMA-Factory's default tags (`conversations`, `from`/`value`, `human`/`gpt`). */
export const sharegptDialect: RecordDialect = createShareGptDialect();

/** An alpaca-format dialect (LLaMA-Factory `formatting: alpaca`): instruction/input/output, history, system, images. */
export function createAlpacaDialect(options: ShareGptOptions = {}, name = 'alpaca'): RecordDialect {
  const col = {
    prompt: options.columns?.prompt ?? 'instruction',
    query: options.columns?.query ?? 'input',
    response: options.columns?.response ?? 'output',
    history: options.columns?.history ?? 'history',
    system: options.columns?.system ?? 'system',
    images: options.columns?.images ?? 'images',
  };
  const known = ['id', col.prompt, col.query, col.response, col.history, col.system, col.images];
  const recordSchema = z.looseObject({
    [col.prompt]: z.string(),
    [col.query]: z.string().optional(),
    [col.response]: z.string(),
    [col.history]: z.array(z.tuple([z.string(), z.string()])).optional(),
    [col.system]: z.string().optional(),
  });
  return {
    name,
    layout: { kind: 'array' },
    decode(native, ctx): DraftRecord {
      const r = parseNative(recordSchema, native, `${name} record`) as Record<string, unknown>;
      const hints: Record<string, unknown> = {};
      const id = decodeId(r, `${name}-${ctx.index}`, hints);
      const messages: ChatMessage[] = [];
      const system = r[col.system] as string | undefined;
      if (system !== undefined) {
        if (system === '') hints.emptySystem = true;
        else messages.push({ role: 'system', content: system });
      }
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
      return {
        id,
        images: decodeImages(r, col.images, hints),
        messages,
        source: { dataset: ctx.dataset ?? name, dialect: name },
        metadata: buildMetadata(extraFields(r, known), name, hints),
      };
    },
    encode(record, ctx): EncodedNative {
      const hints = hintsOf(record, name);
      const out: Record<string, unknown> = {};
      encodeId(out, record, `${name}-${ctx.index}`, hints);
      const dropped: NonNullable<EncodedNative['dropped']> = [];
      let messages = record.messages.map((m, index) => ({ m, index }));
      let system: string | undefined = hints.emptySystem === true ? '' : undefined;
      if (messages[0]?.m.role === 'system' && typeof messages[0].m.content === 'string') {
        system = messages[0].m.content;
        messages = messages.slice(1);
      }
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
      if (system !== undefined) out[col.system] = system;
      encodeImages(out, record, col.images, hints);
      writeExtras(out, record.metadata, known, name);
      return { native: out, dropped };
    },
  };
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
