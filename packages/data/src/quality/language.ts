/**
 * An offline language identifier: the dominant Unicode script decides non-Latin languages;
 * for Latin text, stopword hits decide between English, German, French, Spanish, Italian,
 * Portuguese and Dutch. Meant to catch records in the wrong language, not to label rare ones.
 */
import { words } from './text.js';

/** What detectLanguage found. */
export interface LanguageGuess {
  /** ISO 639-1 code, `und` when undetermined (too little text, digits only). */
  language: string;
  /** Dominant script, e.g. `Latin`, `Han`. */
  script: string;
  /** Share of evidence behind the guess, 0..1. */
  confidence: number;
}

const SCRIPTS: Array<[string, RegExp, string]> = [
  ['Hangul', /\p{Script=Hangul}/u, 'ko'],
  ['Kana', /[\p{Script=Hiragana}\p{Script=Katakana}]/u, 'ja'],
  ['Han', /\p{Script=Han}/u, 'zh'],
  ['Cyrillic', /\p{Script=Cyrillic}/u, 'ru'],
  ['Greek', /\p{Script=Greek}/u, 'el'],
  ['Arabic', /\p{Script=Arabic}/u, 'ar'],
  ['Hebrew', /\p{Script=Hebrew}/u, 'he'],
  ['Devanagari', /\p{Script=Devanagari}/u, 'hi'],
  ['Thai', /\p{Script=Thai}/u, 'th'],
  ['Latin', /\p{Script=Latin}/u, 'latin'],
];

const STOPWORDS: Record<string, string[]> = {
  en: [
    'the',
    'a',
    'an',
    'is',
    'are',
    'of',
    'and',
    'in',
    'on',
    'to',
    'this',
    'that',
    'there',
    'with',
    'what',
    'how',
    'it',
    'image',
    'picture',
    'photo',
    'you',
    'can',
    'be',
    'at',
    'its',
    'for',
    'by',
    'from',
    'many',
    'yes',
    'no',
  ],
  de: [
    'der',
    'die',
    'das',
    'und',
    'ist',
    'sind',
    'ein',
    'eine',
    'nicht',
    'mit',
    'auf',
    'im',
    'den',
    'dem',
    'was',
    'wie',
    'es',
    'bild',
    'zu',
    'von',
    'ich',
    'sie',
    'viele',
    'ja',
    'nein',
    'gibt',
  ],
  fr: [
    'le',
    'la',
    'les',
    'et',
    'est',
    'sont',
    'un',
    'une',
    'des',
    'du',
    'de',
    'dans',
    'sur',
    'avec',
    'que',
    'qui',
    'il',
    'elle',
    'image',
    'ce',
    'cette',
    'combien',
    'oui',
    'non',
    'pas',
    'y',
  ],
  es: [
    'el',
    'la',
    'los',
    'las',
    'y',
    'es',
    'son',
    'un',
    'una',
    'de',
    'del',
    'en',
    'con',
    'que',
    'por',
    'para',
    'imagen',
    'hay',
    'cuántos',
    'cuantos',
    'sí',
    'no',
    'esta',
    'este',
    'qué',
  ],
  it: [
    'il',
    'lo',
    'la',
    'gli',
    'le',
    'e',
    'è',
    'sono',
    'un',
    'una',
    'di',
    'del',
    'della',
    'in',
    'con',
    'che',
    'per',
    'immagine',
    'ci',
    'quanti',
    'sì',
    'non',
    'questa',
    'questo',
  ],
  pt: [
    'o',
    'a',
    'os',
    'as',
    'e',
    'é',
    'são',
    'um',
    'uma',
    'de',
    'do',
    'da',
    'em',
    'no',
    'na',
    'com',
    'que',
    'para',
    'imagem',
    'há',
    'quantos',
    'sim',
    'não',
    'esta',
    'este',
  ],
  nl: [
    'de',
    'het',
    'een',
    'en',
    'is',
    'zijn',
    'van',
    'in',
    'op',
    'met',
    'dat',
    'die',
    'er',
    'niet',
    'wat',
    'hoe',
    'afbeelding',
    'foto',
    'ja',
    'nee',
    'hoeveel',
    'deze',
    'dit',
  ],
};
const STOPWORD_SETS = Object.fromEntries(Object.entries(STOPWORDS).map(([k, v]) => [k, new Set(v)]));

/** Guess the language of a text without any network or model. */
export function detectLanguage(text: string): LanguageGuess {
  const counts = new Map<string, number>();
  let letters = 0;
  for (const ch of text) {
    if (!/\p{L}/u.test(ch)) continue;
    letters++;
    for (const [name, re] of SCRIPTS) {
      if (re.test(ch)) {
        counts.set(name, (counts.get(name) ?? 0) + 1);
        break;
      }
    }
  }
  if (letters === 0) return { language: 'und', script: 'none', confidence: 0 };
  // Japanese mixes Kana with Han: any Kana at all marks the text as Japanese.
  const kana = counts.get('Kana') ?? 0;
  let [script, n] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0] ?? ['other', 0];
  if (kana > 0 && script === 'Han') [script, n] = ['Kana', n + kana];
  const code = SCRIPTS.find((s) => s[0] === script)?.[2] ?? 'und';
  const scriptShare = n / letters;
  if (code !== 'latin') return { language: code, script, confidence: scriptShare };
  const ws = words(text);
  const hits: Array<[string, number]> = Object.entries(STOPWORD_SETS).map(([lang, set]) => [lang, ws.filter((w) => set.has(w)).length]);
  hits.sort((a, b) => b[1] - a[1]);
  const total = hits.reduce((s, [, h]) => s + h, 0);
  if (hits[0][1] === 0) return { language: 'und', script, confidence: 0 };
  return { language: hits[0][0], script, confidence: (hits[0][1] / total) * scriptShare };
}
