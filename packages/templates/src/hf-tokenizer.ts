import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { FormatError, sha256Hex, type Encoding, type Tokenizer } from '@vlit/core';
import { z } from 'zod';

/** A special token in tokenizer_config.json: a plain string or an AddedToken-like object. */
const specialTokenValueSchema = z.union([z.string(), z.object({ content: z.string() }).loose(), z.null()]);

/** The fields of tokenizer_config.json that Vlit reads; everything else is kept as-is. */
export const tokenizerConfigSchema = z
  .object({
    chat_template: z.union([z.string(), z.array(z.object({ name: z.string(), template: z.string() }))]).optional(),
    bos_token: specialTokenValueSchema.optional(),
    eos_token: specialTokenValueSchema.optional(),
    pad_token: specialTokenValueSchema.optional(),
    unk_token: specialTokenValueSchema.optional(),
    add_bos_token: z.boolean().optional(),
    add_eos_token: z.boolean().optional(),
  })
  .loose();
export type TokenizerConfig = z.infer<typeof tokenizerConfigSchema>;

/** The minimal shape of a tokenizer.json Vlit checks before handing it to @huggingface/tokenizers. */
export const tokenizerJsonSchema = z
  .object({
    model: z.object({ type: z.string().optional(), vocab: z.unknown() }).loose(),
    added_tokens: z.array(z.object({ id: z.number().int(), content: z.string(), special: z.boolean().optional() }).loose()).optional(),
    normalizer: z.unknown().optional(),
    pre_tokenizer: z.unknown().optional(),
    decoder: z.unknown().optional(),
  })
  .loose();
export type TokenizerJson = z.infer<typeof tokenizerJsonSchema>;

/** A special token value from tokenizer_config.json as a string, or undefined. */
export function specialTokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** Options of createHfTokenizer. */
export interface HfTokenizerOptions {
  /** Parsed tokenizer.json. */
  tokenizerJson: unknown;
  /** Parsed tokenizer_config.json, when available (special tokens, chat template). */
  tokenizerConfig?: unknown;
  /** Where the files came from, for error messages. */
  source?: string;
}

/** GPT-2's printable-character alphabet for bytes, inverted: char code -> byte. */
function byteLevelDecoder(): Map<number, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const map = new Map<number, number>();
  bs.forEach((b, i) => map.set(cs[i], b));
  return map;
}

function usesByteLevel(json: TokenizerJson): boolean {
  const hasByteLevel = (node: unknown): boolean => {
    if (!node || typeof node !== 'object') return false;
    const n = node as { type?: unknown; decoders?: unknown[] };
    if (n.type === 'ByteLevel') return true;
    return Array.isArray(n.decoders) && n.decoders.some(hasByteLevel);
  };
  return hasByteLevel(json.decoder);
}

const utf8 = new TextEncoder();

/**
 * UTF-16 offsets of byte positions in `text`: start[b] is the index of the character holding byte b.
 * Token boundaries can fall inside a multi-byte character, so starts round down and ends round up.
 */
function byteToCharIndex(text: string): { start: Uint32Array; end: Uint32Array } {
  const bytes = utf8.encode(text).length;
  const start = new Uint32Array(bytes + 1);
  const end = new Uint32Array(bytes + 1);
  let b = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const units = cp > 0xffff ? 2 : 1;
    const len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < len; k++) {
      start[b + k] = i;
      end[b + k + 1] = i + units;
    }
    end[b] = i;
    b += len;
    i += units;
  }
  start[bytes] = text.length;
  end[bytes] = text.length;
  return { start, end };
}

/**
 * Load a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) through @huggingface/tokenizers.
 * Offsets are computed from each token's bytes (byte-level BPE), so label masks can come from them.
 */
export function createHfTokenizer(options: HfTokenizerOptions): Tokenizer {
  const source = options.source ?? 'tokenizer.json';
  const parsedJson = tokenizerJsonSchema.safeParse(options.tokenizerJson);
  if (!parsedJson.success) {
    const issue = parsedJson.error.issues[0];
    throw new FormatError(`not a tokenizer.json: ${issue.message}`, {
      cause: parsedJson.error,
      details: { file: source, field: issue.path.map(String).join('.') || '(root)' },
    });
  }
  const parsedConfig = tokenizerConfigSchema.safeParse(options.tokenizerConfig ?? {});
  if (!parsedConfig.success) {
    const issue = parsedConfig.error.issues[0];
    throw new FormatError(`not a tokenizer_config.json: ${issue.message}`, {
      cause: parsedConfig.error,
      details: { file: source, field: issue.path.map(String).join('.') || '(root)' },
    });
  }
  const json = parsedJson.data;
  const config = parsedConfig.data;
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(json, config);
  } catch (cause) {
    throw new FormatError(`@huggingface/tokenizers could not load the tokenizer: ${String(cause)}`, {
      cause,
      details: { file: source },
    });
  }
  const vocab = hf.get_vocab(true);
  let vocabSize = 0;
  for (const id of vocab.values()) vocabSize = Math.max(vocabSize, id + 1);
  const added = new Map<number, string>();
  for (const t of json.added_tokens ?? []) added.set(t.id, t.content);

  const byteLevel = usesByteLevel(json);
  const decodeMap = byteLevel ? byteLevelDecoder() : undefined;
  const byteLengthCache = new Map<number, number>();
  const tokenByteLength = (id: number): number => {
    let len = byteLengthCache.get(id);
    if (len !== undefined) return len;
    const addedText = added.get(id);
    if (addedText !== undefined) len = utf8.encode(addedText).length;
    else {
      const token = hf.id_to_token(id) ?? '';
      len = 0;
      for (const ch of token) len += decodeMap!.has(ch.codePointAt(0)!) ? 1 : -1e9;
    }
    byteLengthCache.set(id, len);
    return len;
  };

  const specialTokens = {
    bos: specialTokenText(config.bos_token),
    eos: specialTokenText(config.eos_token),
    pad: specialTokenText(config.pad_token),
    unk: specialTokenText(config.unk_token),
  };

  return {
    id: `hf:${sha256Hex(JSON.stringify(options.tokenizerJson)).slice(0, 16)}`,
    vocabSize,
    specialTokens,
    encode(text: string, encodeOptions?: { addSpecialTokens?: boolean }): Encoding {
      const addSpecialTokens = encodeOptions?.addSpecialTokens ?? false;
      const encoded = hf.encode(text, { add_special_tokens: addSpecialTokens });
      const ids = encoded.ids;
      const unknown = ids.findIndex((id) => id === undefined || id === null);
      if (unknown >= 0) {
        // tokenizers (Rust) refuses this too ("Missing [UNK] token from the vocabulary"); the JS port yields no id.
        const token = encoded.tokens?.[unknown];
        throw new FormatError(`'${token ?? '?'}' is not in the vocabulary of ${options.source ?? 'the tokenizer'} and it has no unk_token to stand for it`, {
          details: { file: options.source, field: 'model.unk_token', token },
        });
      }
      if (!decodeMap || addSpecialTokens || text.normalize('NFC') !== text) return { ids };
      // Offsets are exact only when the token bytes tile the input; otherwise leave them out.
      const map = byteToCharIndex(text);
      const offsets: Array<[number, number]> = new Array(ids.length);
      let b = 0;
      for (let i = 0; i < ids.length; i++) {
        const len = tokenByteLength(ids[i]);
        if (len < 0 || b + len >= map.start.length) return { ids };
        offsets[i] = [map.start[b], map.end[b + len]];
        b += len;
      }
      if (b !== map.start.length - 1) return { ids };
      return { ids, offsets };
    },
    decode(ids: readonly number[], decodeOptions?: { skipSpecialTokens?: boolean }): string {
      return hf.decode(ids as number[], {
        skip_special_tokens: decodeOptions?.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: false,
      });
    },
    tokenToId: (token: string) => hf.token_to_id(token),
    idToToken: (id: number) => hf.id_to_token(id),
  };
}
