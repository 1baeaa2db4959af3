// A PTB-style tokeniser standing in for the Stanford CoreNLP 3.4.1 PTBTokenizer that the COCO caption
// evaluation (pycocoevalcap) runs with `-preserveLines -lowerCase` before dropping punctuation tokens.
// Java is not at hand, so the rules below are written out (docs/eval.md lists them, and the test's
// Python reference implements the same list independently).

/** The tokens pycocoevalcap removes after tokenising (compared after lowercasing, so `-lrb-` survives, as there). */
export const COCO_PUNCTUATIONS: ReadonlySet<string> = new Set([
  "''",
  "'",
  '``',
  '`',
  '-LRB-',
  '-RRB-',
  '-LCB-',
  '-RCB-',
  '.',
  '?',
  '!',
  ',',
  ':',
  '-',
  '--',
  '...',
  ';',
]);

/** Words whose final period belongs to them (checked lowercased, without the period). */
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'st', 'jr', 'sr', 'vs', 'etc', 'inc', 'co', 'ltd', 'no', 'mt', 'ave']);

const BRACKETS: Record<string, string> = { '(': '-lrb-', ')': '-rrb-', '[': '-lsb-', ']': '-rsb-', '{': '-lcb-', '}': '-rcb-' };

/** Contractions the PTB splits inside one word (lowercased input). */
const SPLIT_WORDS: Record<string, string> = {
  cannot: 'can not',
  gonna: 'gon na',
  gotta: 'got ta',
  wanna: 'wan na',
  gimme: 'gim me',
  lemme: 'lem me',
  "'tis": "'t is",
  "'twas": "'t was",
};

/**
 * Tokenise one sentence the PTB way, lowercased; punctuation tokens are kept (see
 * `tokenizeCaption` for the COCO form). Rules, in order:
 * 1. lowercase; curly quotes to straight (`‘’` -> `'`, `“”` -> `"`), `…` -> `...`, en/em dashes -> `--`;
 * 2. `"` becomes its own token (``` `` ``` when it opens: at the start or after a space/bracket; `''` otherwise);
 * 3. `...`, `--`, `;`, `@`, `#`, `$`, `%`, `&`, `?`, `!` and brackets `()[]{}` become tokens;
 *    `,` and `:` too unless between two digits (1,000 and 10:30 stay whole);
 * 4. split on whitespace; per word: `cannot`-style words split (can not, gon na, ...); a final
 *    clitic `n't`, `'s`, `'m`, `'d`, `'re`, `'ve`, `'ll` splits off; a leading `'` (not a clitic word
 *    like `'tis`) becomes `` ` ``; a final `'` splits off; leading/trailing `-` split off;
 * 5. a final `.` splits off unless the word is a number, an initialism (`u.s.`), or an abbreviation
 *    (mr, mrs, ms, dr, st, jr, sr, vs, etc, inc, co, ltd, no, mt, ave); a lone `.` run stays a token;
 * 6. brackets are written as PTB escapes, lowercased (`-lrb-`, `-rrb-`, `-lsb-`, `-rsb-`, `-lcb-`, `-rcb-`).
 */
export function ptbTokenize(text: string): string[] {
  let s = text.toLowerCase();
  s = s
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/\u2026/g, '...')
    .replace(/[\u2013\u2014]/g, '--');
  s = s.replace(/[\r\n\t]/g, ' ');
  // Opening quotes: at the start or after whitespace / an opening bracket.
  s = s.replace(/(^|[\s([{])"/g, '$1 `` ');
  s = s.replace(/"/g, " '' ");
  s = s.replace(/\.\.\.+/g, ' ... ');
  s = s.replace(/--+/g, ' -- ');
  s = s.replace(/[;@#$%&?!()[\]{}]/g, ' $& ');
  s = s.replace(/,(?!\d)|(?<!\d),/g, ' , ');
  s = s.replace(/:(?!\d)|(?<!\d):/g, ' : ');
  const out: string[] = [];
  for (const word of s.split(/\s+/)) if (word) splitWord(word, out);
  return out.map((t) => BRACKETS[t] ?? t);
}

function splitWord(word: string, out: string[]): void {
  if (word === '...' || word === '--' || word === '``' || word === "''") {
    out.push(word);
    return;
  }
  const whole = SPLIT_WORDS[word];
  if (whole) {
    out.push(...whole.split(' '));
    return;
  }
  let w = word;
  const tail: string[] = [];
  // Leading hyphens and quotes.
  while (w.length > 1 && w.startsWith('-')) {
    out.push('-');
    w = w.slice(1);
  }
  if (w.length > 1 && w.startsWith("'") && !SPLIT_WORDS[w.replace(/\.+$/, '')]) {
    out.push('`');
    w = w.slice(1);
  }
  // Final period (before clitics, so "dog's." -> dog 's .).
  if (w.length > 1 && w.endsWith('.') && !keepsPeriod(w)) {
    tail.unshift('.');
    w = w.slice(0, -1);
  }
  while (w.length > 1 && w.endsWith('-')) {
    tail.unshift('-');
    w = w.slice(0, -1);
  }
  const clitic = /^(.+?)(n't|'s|'m|'d|'re|'ve|'ll)$/.exec(w);
  if (clitic) {
    out.push(clitic[1], clitic[2], ...tail);
    return;
  }
  if (w.length > 1 && w.endsWith("'")) {
    tail.unshift("'");
    w = w.slice(0, -1);
  }
  if (w) out.push(w);
  out.push(...tail);
}

function keepsPeriod(word: string): boolean {
  const bare = word.slice(0, -1);
  if (/^[-+]?\d[\d,]*(\.\d+)?$/.test(bare) && bare.length) return false;
  if (/^([a-z]\.)+[a-z]$/.test(bare)) return true; // u.s. / a.m.
  return ABBREVIATIONS.has(bare);
}

/** The COCO form of a caption: PTB tokens, lowercased, punctuation tokens removed, joined by single spaces. */
export function tokenizeCaption(text: string): string {
  return ptbTokenize(text)
    .filter((t) => !COCO_PUNCTUATIONS.has(t))
    .join(' ');
}
