/** Result of encoding text. */
export interface Encoding {
  ids: number[];
  /** Character offsets [start, end) of each token in the input text, when the tokenizer can tell. */
  offsets?: Array<[number, number]>;
}

/** Turns text into token ids and back. */
export interface Tokenizer {
  /** Stable id (e.g. a hash of tokenizer.json) for manifests and caches. */
  readonly id: string;
  readonly vocabSize: number;
  /** Special tokens by role, as strings. */
  readonly specialTokens: { bos?: string; eos?: string; pad?: string; unk?: string; [role: string]: string | undefined };
  /** Encode text; special tokens in the text are recognised; `addSpecialTokens` adds BOS/EOS per the tokenizer's rules. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): Encoding;
  /** Decode ids back to text. */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Id of a token string, or undefined when not in the vocabulary. */
  tokenToId(token: string): number | undefined;
  /** Token string of an id, or undefined when out of range. */
  idToToken(id: number): string | undefined;
}
