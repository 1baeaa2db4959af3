/**
 * Text helpers shared by the filters and metrics: turns of a record, word tokens, numbers, colours
 * and object mentions (with negation), all rule-based and deterministic.
 */
import { IMAGE_PLACEHOLDER, type ChatMessage, type VlitRecord } from '@vlit/core';
import { cocoVocabulary, type CategoryVocabulary } from './vocabulary/coco-categories.js';

/** Text of a message with image markers and image parts removed. */
export function plainMessageText(message: ChatMessage): string {
  if (typeof message.content === 'string') return message.content.split(IMAGE_PLACEHOLDER).join(' ').trim();
  return message.content
    .map((p) => (p.type === 'text' ? p.text : ' '))
    .join('')
    .trim();
}

/** One exchange: the user's instruction and the assistant's answer. */
export interface Turn {
  instruction: string;
  answer: string;
}

/**
 * The exchanges of a record: consecutive user messages form one instruction, the assistant
 * messages after them one answer. System messages are ignored; an unanswered instruction is dropped.
 */
export function recordTurns(record: Pick<VlitRecord, 'messages'>): Turn[] {
  const turns: Turn[] = [];
  let instruction: string[] = [];
  let answer: string[] = [];
  const flush = (): void => {
    if (answer.length) turns.push({ instruction: instruction.join('\n'), answer: answer.join('\n') });
    instruction = [];
    answer = [];
  };
  for (const m of record.messages) {
    if (m.role === 'system') continue;
    if (m.role === 'user') {
      if (answer.length) flush();
      instruction.push(plainMessageText(m));
    } else {
      answer.push(plainMessageText(m));
    }
  }
  flush();
  return turns;
}

const WORD_RE = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/** Lower-case word tokens (letters and digits, with inner apostrophes kept). */
export function words(text: string): string[] {
  return (text.normalize('NFKC').toLowerCase().match(WORD_RE) ?? []).map((w) => w.replace(/’/g, "'"));
}

/** Clauses of a text (split at sentence and clause punctuation), each as word tokens. */
export function clauses(text: string): string[][] {
  return text
    .split(/[.;:!?,\n()]+/)
    .map(words)
    .filter((c) => c.length > 0);
}

const NUMBER_WORDS: Record<string, number> = {
  zero: 0,
  none: 0,
  no: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  single: 1,
  pair: 2,
  couple: 2,
  dozen: 12,
};

/** The value of a number token (`3`, `three`, `none`), or undefined. */
export function numberValue(word: string): number | undefined {
  if (/^\d+$/.test(word)) return Number(word);
  return NUMBER_WORDS[word];
}

/** The first number stated in a text (digits or words zero to twenty, `none`/`no` as 0), or undefined. */
export function firstNumber(text: string): number | undefined {
  for (const w of words(text)) {
    const v = numberValue(w);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Basic colour words, British spellings and synonyms folded onto one name. */
export const COLOUR_WORDS: Readonly<Record<string, string>> = {
  red: 'red',
  green: 'green',
  blue: 'blue',
  yellow: 'yellow',
  orange: 'orange',
  purple: 'purple',
  violet: 'purple',
  pink: 'pink',
  brown: 'brown',
  black: 'black',
  white: 'white',
  grey: 'grey',
  gray: 'grey',
  silver: 'grey',
  gold: 'yellow',
  golden: 'yellow',
  beige: 'beige',
  tan: 'beige',
  cyan: 'cyan',
  teal: 'cyan',
  turquoise: 'cyan',
  navy: 'blue',
  maroon: 'red',
  crimson: 'red',
  magenta: 'pink',
};

/** Canonical colour of a word, or undefined. */
export function colourOf(word: string): string | undefined {
  return COLOUR_WORDS[word.toLowerCase()];
}

/** Distinct canonical colours named in a text. */
export function coloursIn(text: string): string[] {
  const out = new Set<string>();
  for (const w of words(text)) {
    const c = COLOUR_WORDS[w];
    if (c) out.add(c);
  }
  return [...out];
}

const NEGATIONS = new Set([
  'no',
  'not',
  'without',
  'never',
  'none',
  'neither',
  'nor',
  "isn't",
  "aren't",
  "doesn't",
  "don't",
  "didn't",
  'cannot',
  "can't",
  "couldn't",
  "wasn't",
  "weren't",
  'nothing',
  'nobody',
  'absent',
  'lacks',
  'lacking',
  'missing',
  "there's no",
  'nowhere',
]);
const NEGATED_AFTER = new Set(['not', "isn't", "aren't", "wasn't", "weren't"]);
const ABSENCE_WORDS = new Set(['absent', 'missing', 'nowhere']);
const PRESENCE_WORDS = new Set(['there', 'present', 'visible', 'in', 'here', 'shown', 'seen', 'pictured', 'included', 'anywhere']);
/** Words between a negation and the noun it negates ("no large red dogs"). */
const NEGATION_WINDOW = 4;

/** One mention of a known object category in a text. */
export interface ObjectMention {
  category: string;
  /** The words matched, e.g. `puppies`. */
  text: string;
  plural: boolean;
  /** Under a negation in the same clause ("there is no dog"). */
  negated: boolean;
  /** A number stated right before it ("three dogs"), if any. */
  count?: number;
  /** A colour stated right before it ("the red car"), if any. */
  colour?: string;
  /** Clause index and word index inside it. */
  clause: number;
  index: number;
}

/** Nouns after which `orange` is a colour, not the fruit ("orange shirt"). */
const COLOURABLE = new Set([
  'shirt',
  'jacket',
  'wall',
  'walls',
  'background',
  'colour',
  'color',
  'rectangle',
  'box',
  'hat',
  'light',
  'lights',
  'sky',
  'paint',
  'object',
  'objects',
  'shape',
  'shapes',
  'square',
  'area',
  'block',
  'dress',
  'coat',
  'vest',
  'top',
  'and',
  'or',
  'one',
  'ones',
]);

/** Find object-category mentions in a text, longest form first, with negation, count and colour. */
export function findObjectMentions(text: string, vocabulary: CategoryVocabulary = cocoVocabulary()): ObjectMention[] {
  const out: ObjectMention[] = [];
  clauses(text).forEach((ws, ci) => {
    let i = 0;
    while (i < ws.length) {
      let matched = 0;
      for (let n = Math.min(vocabulary.maxWords, ws.length - i); n >= 1 && !matched; n--) {
        const term = vocabulary.lookup(ws.slice(i, i + n).join(' '));
        if (!term) continue;
        const next = ws[i + n];
        if (n === 1 && ws[i] === 'orange' && next !== undefined && (COLOURABLE.has(next) || vocabulary.lookup(next))) continue;
        matched = n;
        let negated = false;
        for (let k = Math.max(0, i - NEGATION_WINDOW); k < i; k++) if (NEGATIONS.has(ws[k])) negated = true;
        // "the giraffe is not there", "a cat is absent": a negated copula right after the noun.
        // Only a denial of presence counts: "the car is not a bus" still says there is a car.
        for (let k = i + n; k < Math.min(ws.length, i + n + 3); k++) {
          if (ABSENCE_WORDS.has(ws[k])) negated = true;
          else if (NEGATED_AFTER.has(ws[k]) && (k + 1 === ws.length || PRESENCE_WORDS.has(ws[k + 1]))) negated = true;
        }
        let count: number | undefined;
        let colour: string | undefined;
        for (let k = i - 1; k >= Math.max(0, i - 3); k--) {
          const w = ws[k];
          if (colour === undefined && COLOUR_WORDS[w]) colour = COLOUR_WORDS[w];
          else if (/^\d+$/.test(w) || (NUMBER_WORDS[w] !== undefined && w !== 'no' && w !== 'none')) {
            count = numberValue(w);
            break;
          } else if (!['light', 'dark', 'bright', 'pale', 'small', 'large', 'big', 'little', 'and'].includes(w)) break;
        }
        out.push({ category: term.category, text: term.words.join(' '), plural: term.plural, negated, count, colour, clause: ci, index: i });
      }
      i += matched || 1;
    }
  });
  return out;
}

/** Canonical category of an annotation's category name (`puppy` -> `dog`), or the name itself. */
export function canonicalCategory(name: string, vocabulary: CategoryVocabulary = cocoVocabulary()): string {
  const form = words(name).join(' ');
  return vocabulary.lookup(form)?.category ?? form;
}
