import { FormatError, InvalidArgumentError, sha256Hex, type Encoding, type Tokenizer } from '@vlit/core';
import { z } from 'zod';

/**
 * Word-level pieces: runs of letters/digits/underscore, single other symbols, and newlines (kept as
 * tokens so that templates whose turn separator is a newline still have a token to train on).
 * Other whitespace is dropped. The same rules are written into the saved tokenizer.json.
 */
const PIECE_PATTERN = '\\n|[\\p{L}\\p{N}_]+|[^\\s\\p{L}\\p{N}_]';
const DROP_PATTERN = '[^\\S\\n]+';
const PIECE_REGEX = new RegExp(PIECE_PATTERN, 'gu');

/** Options of buildWordLevelTokenizer. */
export interface BuildWordLevelOptions {
  /** Texts to take the vocabulary from. */
  corpus: Iterable<string>;
  /** Special tokens, matched whole before splitting words (e.g. `<|im_end|>`, `<image>`); ids start at 0 in this order. */
  specialTokens?: readonly string[];
  /** Keep at most this many words (most frequent first, ties by first appearance). */
  maxVocab?: number;
  /** Words seen fewer times are left out. Default 1. */
  minFrequency?: number;
  /** Unknown-word token; added as a special token when missing. Default `<unk>`. */
  unkToken?: string;
  /** Roles of special tokens (bos, eos, pad, ...), by token string. */
  roles?: { bos?: string; eos?: string; pad?: string };
}

/** A tokenizer.json of a WordLevel model as written by saveJson(). */
export const wordLevelTokenizerJsonSchema = z
  .object({
    model: z.object({ type: z.literal('WordLevel'), vocab: z.record(z.string(), z.number().int().nonnegative()), unk_token: z.string() }),
    added_tokens: z.array(z.object({ id: z.number().int(), content: z.string(), special: z.boolean().optional() }).loose()),
  })
  .loose();
export type WordLevelTokenizerJson = z.infer<typeof wordLevelTokenizerJsonSchema>;

/** A word-level tokenizer that can be written as a standard tokenizer.json. */
export interface WordLevelTokenizer extends Tokenizer {
  /** The vocabulary as a standard Hugging Face tokenizer.json object (WordLevel model). */
  toJson(): WordLevelTokenizerJson;
  /**
   * The tokenizer files of a Hugging Face checkpoint folder: `tokenizer.json` and a `tokenizer_config.json`
   * (PreTrainedTokenizerFast with this tokenizer's special tokens), so transformers' AutoTokenizer loads it.
   */
  hfTokenizerFiles(options?: { modelMaxLength?: number }): { 'tokenizer.json': string; 'tokenizer_config.json': string };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

class WordLevel implements WordLevelTokenizer {
  readonly id: string;
  readonly vocabSize: number;
  readonly specialTokens: { bos?: string; eos?: string; pad?: string; unk?: string };
  private readonly toId: Map<string, number>;
  private readonly toToken: string[];
  private readonly specials: string[];
  private readonly specialRegex: RegExp | null;
  private readonly unkId: number;

  constructor(vocab: Map<string, number>, specials: string[], unk: string, roles: { bos?: string; eos?: string; pad?: string }) {
    this.toId = vocab;
    this.toToken = [];
    for (const [t, i] of vocab) this.toToken[i] = t;
    this.vocabSize = this.toToken.length;
    this.specials = specials;
    // Longest first, so `<|im_end|>` wins over a shorter special that is its prefix.
    const sorted = [...specials].sort((a, b) => b.length - a.length);
    this.specialRegex = sorted.length ? new RegExp(sorted.map(escapeRegex).join('|'), 'g') : null;
    this.unkId = vocab.get(unk)!;
    this.specialTokens = { ...roles, unk };
    this.id = `word-level:${sha256Hex(JSON.stringify([this.toToken, specials])).slice(0, 16)}`;
  }

  encode(text: string): Encoding {
    const ids: number[] = [];
    const offsets: Array<[number, number]> = [];
    const words = (from: number, to: number): void => {
      PIECE_REGEX.lastIndex = 0;
      const chunk = text.slice(from, to);
      for (const m of chunk.matchAll(PIECE_REGEX)) {
        ids.push(this.toId.get(m[0]) ?? this.unkId);
        offsets.push([from + m.index, from + m.index + m[0].length]);
      }
    };
    let at = 0;
    if (this.specialRegex) {
      this.specialRegex.lastIndex = 0;
      for (const m of text.matchAll(this.specialRegex)) {
        words(at, m.index);
        ids.push(this.toId.get(m[0])!);
        offsets.push([m.index, m.index + m[0].length]);
        at = m.index + m[0].length;
      }
    }
    words(at, text.length);
    return { ids, offsets };
  }

  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string {
    // Word-level tokens lose their spacing; a single space between words is the documented choice.
    const parts: string[] = [];
    for (const id of ids) {
      const t = this.toToken[id];
      if (t === undefined) continue;
      if (options?.skipSpecialTokens && this.specials.includes(t)) continue;
      parts.push(t);
    }
    return parts.join(' ');
  }

  tokenToId(token: string): number | undefined {
    return this.toId.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.toToken[id];
  }

  toJson(): WordLevelTokenizerJson {
    const vocab: Record<string, number> = {};
    this.toToken.forEach((t, i) => (vocab[t] = i));
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: this.specials.map((content) => ({
        id: this.toId.get(content)!,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: DROP_PATTERN }, behavior: 'Removed', invert: false },
          { type: 'Split', pattern: { Regex: PIECE_PATTERN }, behavior: 'Isolated', invert: false },
        ],
      },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab, unk_token: this.specialTokens.unk! },
    };
  }

  hfTokenizerFiles(options: { modelMaxLength?: number } = {}): { 'tokenizer.json': string; 'tokenizer_config.json': string } {
    const { bos, eos, pad, unk } = this.specialTokens;
    const config = {
      ...(bos !== undefined ? { bos_token: bos } : {}),
      ...(eos !== undefined ? { eos_token: eos } : {}),
      ...(pad !== undefined ? { pad_token: pad } : {}),
      unk_token: unk,
      ...(options.modelMaxLength !== undefined ? { model_max_length: options.modelMaxLength } : {}),
      tokenizer_class: 'PreTrainedTokenizerFast',
    };
    return { 'tokenizer.json': JSON.stringify(this.toJson()), 'tokenizer_config.json': JSON.stringify(config, null, 2) };
  }
}

/** Build a word-level tokenizer from a corpus (for tiny models and readable tests). */
export function buildWordLevelTokenizer(options: BuildWordLevelOptions): WordLevelTokenizer {
  const unk = options.unkToken ?? '<unk>';
  const specials = [...new Set([unk, ...(options.specialTokens ?? [])])];
  const minFrequency = options.minFrequency ?? 1;
  const counts = new Map<string, number>();
  const specialRegex = new RegExp(
    [...specials]
      .sort((a, b) => b.length - a.length)
      .map(escapeRegex)
      .join('|'),
    'g',
  );
  for (const text of options.corpus) {
    for (const chunk of text.split(specialRegex)) {
      for (const m of chunk.matchAll(PIECE_REGEX)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    }
  }
  let words = [...counts.entries()].filter(([w, n]) => n >= minFrequency && !specials.includes(w));
  words.sort((a, b) => b[1] - a[1]); // stable: ties keep first-appearance order
  if (options.maxVocab !== undefined) {
    if (!Number.isInteger(options.maxVocab) || options.maxVocab < 0) {
      throw new InvalidArgumentError(`maxVocab must be a non-negative integer, got ${options.maxVocab}`, {
        details: { field: 'maxVocab' },
      });
    }
    words = words.slice(0, options.maxVocab);
  }
  const vocab = new Map<string, number>();
  for (const s of specials) vocab.set(s, vocab.size);
  for (const [w] of words) vocab.set(w, vocab.size);
  return new WordLevel(vocab, specials, unk, options.roles ?? {});
}

/** Load a word-level tokenizer.json written by toJson() (or any WordLevel tokenizer.json with the same pre-tokenizer). */
export function createWordLevelTokenizer(json: unknown, roles: { bos?: string; eos?: string; pad?: string } = {}): WordLevelTokenizer {
  const parsed = wordLevelTokenizerJsonSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FormatError(`not a WordLevel tokenizer.json: ${issue.message}`, {
      cause: parsed.error,
      details: { field: issue.path.map(String).join('.') || '(root)' },
    });
  }
  const vocab = new Map<string, number>(Object.entries(parsed.data.model.vocab).sort((a, b) => a[1] - b[1]));
  const specials = parsed.data.added_tokens.map((t) => t.content);
  return new WordLevel(vocab, specials, parsed.data.model.unk_token, roles);
}
