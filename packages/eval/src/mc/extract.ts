// Answer extraction for multiple choice: a documented cascade, each step named in the result so a
// report can say how every answer was read. Steps (first hit wins):
//  1 `letter`         the whole reply is one option letter, maybe wrapped: "B", "(c)", "**D.**"
//  2 `letter-prefix`  the reply opens with a letter and a delimiter: "B. a red car", "(C) three", "A: ..."
//  3 `letter-phrase`  an answer phrase names a letter: "The answer is (B)", "Answer: C", "option D",
//                     "B is correct"
//  4 `option-text`    the reply equals one option's text, or contains exactly one option's text as
//                     whole words (a longer match wins over options it contains)
//  5 `letter-mention` exactly one distinct standalone capital letter of an option appears
// "A" and "I" followed by an ordinary lower-case word ("A cat", "I think") are read as English
// words, not letters ("A because", "A or B" still count; "option A ..." always does). Otherwise
// `none` (counted wrong; a judge may be asked).

/** How an answer was read. */
export type ExtractionMethod = 'letter' | 'letter-prefix' | 'letter-phrase' | 'option-text' | 'letter-mention' | 'judge' | 'none';

/** The option chosen (0-based index, or null) and the step that chose it. */
export interface Extraction {
  index: number | null;
  method: ExtractionMethod;
}

/** Option letter for a 0-based index: A, B, C, ... */
export function optionLetter(index: number): string {
  return String.fromCharCode(65 + index);
}

function letterIndex(letter: string, count: number): number | null {
  const i = letter.toUpperCase().charCodeAt(0) - 65;
  return i >= 0 && i < count ? i : null;
}

/** Lowercase, punctuation to spaces, collapsed whitespace: for comparing option texts. */
export function normalizeOptionText(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

// Words after which a capital "A" or "I" still reads as an option letter ("A because ...", "A or B").
const CONNECTORS = new Set([
  'because',
  'since',
  'as',
  'is',
  'was',
  'seems',
  'which',
  'and',
  'or',
  'but',
  'for',
  'given',
  'due',
  'would',
  'should',
  'looks',
  'appears',
  'fits',
  'matches',
  'then',
]);

// "A" and "I" are English words when an ordinary lower-case word follows ("A cat sits", "I think").
function looksLikeWord(letter: string, after: string): boolean {
  if (letter !== 'A' && letter !== 'I') return false;
  const next = /^\s+([a-z]+)/.exec(after);
  return next !== null && !CONNECTORS.has(next[1]);
}

const WRAP_OPEN = `[\\s"'*_(\\[{<]*`;
const WRAP_CLOSE = `[\\s"'*_)\\]}>.:,;!]*`;
const ONLY_LETTER = new RegExp(`^${WRAP_OPEN}([A-Za-z])${WRAP_CLOSE}$`);
const PREFIX = /^[\s"'*_]*(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])\s*[.):\]]|([A-Z])\s+-\s)/;
const PHRASES: RegExp[] = [
  /\b(?:[Aa]nswer|ANSWER|[Oo]ption|[Cc]hoice)\s*(?:is|would be|should be|will be|:|-)?\s*(?:option|choice|letter)?\s*[:\-]?\s*[("'*[]*([A-Z])(?![A-Za-z0-9])/g,
  /\b(?:[Cc]hoose|[Ss]elect|[Pp]ick|[Gg]o with)\s+(?:option\s+|choice\s+)?[("'*[]*([A-Z])(?![A-Za-z0-9])/g,
  /(?:^|[\s("'*[])([A-Z])[)"'*\]]*\s+is\s+(?:the\s+)?(?:correct|right|best)\b/g,
];

/** Read which option a free-text reply chooses; see the cascade above. */
export function extractChoice(reply: string, options: readonly string[]): Extraction {
  const n = options.length;
  const text = reply.trim();
  if (!text) return { index: null, method: 'none' };

  const only = ONLY_LETTER.exec(text);
  if (only) {
    const i = letterIndex(only[1], n);
    if (i !== null) return { index: i, method: 'letter' };
  }

  const prefix = PREFIX.exec(text);
  if (prefix) {
    const letter = prefix[1] ?? prefix[2] ?? prefix[3] ?? prefix[4];
    const i = letterIndex(letter, n);
    if (i !== null) return { index: i, method: 'letter-prefix' };
  }

  for (const re of PHRASES) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const letter = m[1];
      const after = text.slice(m.index + m[0].length);
      const named = /(?:option|choice|letter)\s*[("'*[]*[A-Z]$/i.test(m[0]);
      if (re !== PHRASES[2] && !named && looksLikeWord(letter, after)) continue;
      const i = letterIndex(letter, n);
      if (i !== null) return { index: i, method: 'letter-phrase' };
    }
  }

  const norm = normalizeOptionText(text);
  const normOptions = options.map(normalizeOptionText);
  const exact = normOptions.findIndex((o) => o.length > 0 && o === norm);
  if (exact >= 0 && normOptions.indexOf(normOptions[exact], exact + 1) < 0) return { index: exact, method: 'option-text' };
  const padded = ` ${norm} `;
  const hits = normOptions.map((o, i) => ({ o, i })).filter(({ o }) => o.length > 0 && padded.includes(` ${o} `));
  if (hits.length === 1) return { index: hits[0].i, method: 'option-text' };
  if (hits.length > 1) {
    const longest = hits.reduce((a, b) => (b.o.length > a.o.length ? b : a));
    const contained = hits.every((h) => h === longest || ` ${longest.o} `.includes(` ${h.o} `));
    if (contained && hits.filter((h) => h.o === longest.o).length === 1) return { index: longest.i, method: 'option-text' };
  }

  const found = new Set<number>();
  const tokenRe = /(?<![A-Za-z0-9'])([A-Z])(?![A-Za-z0-9'])/g;
  for (let m = tokenRe.exec(text); m; m = tokenRe.exec(text)) {
    if (looksLikeWord(m[1], text.slice(m.index + 1))) continue;
    const i = letterIndex(m[1], n);
    if (i !== null) found.add(i);
  }
  if (found.size === 1) return { index: [...found][0], method: 'letter-mention' };

  return { index: null, method: 'none' };
}
