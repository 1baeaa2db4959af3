// VQA accuracy exactly as the official VQAv2 evaluation script (GT-Vision-Lab/VQA,
// PythonEvaluationTools/vqaEvaluation/vqaEval.py) computes it; quirks are kept on purpose and
// listed in docs/eval.md so that Vlit's numbers equal everyone else's.

const CONTRACTION_PAIRS: Array<[string, string]> = [
  ['aint', "ain't"],
  ['arent', "aren't"],
  ['cant', "can't"],
  ['couldve', "could've"],
  ['couldnt', "couldn't"],
  ["couldn'tve", "couldn't've"],
  ["couldnt've", "couldn't've"],
  ['didnt', "didn't"],
  ['doesnt', "doesn't"],
  ['dont', "don't"],
  ['hadnt', "hadn't"],
  ["hadnt've", "hadn't've"],
  ["hadn'tve", "hadn't've"],
  ['hasnt', "hasn't"],
  ['havent', "haven't"],
  ['hed', "he'd"],
  ["hed've", "he'd've"],
  ["he'dve", "he'd've"],
  ['hes', "he's"],
  ['howd', "how'd"],
  ['howll', "how'll"],
  ['hows', "how's"],
  ["Id've", "I'd've"],
  ["I'dve", "I'd've"],
  ['Im', "I'm"],
  ['Ive', "I've"],
  ['isnt', "isn't"],
  ['itd', "it'd"],
  ["itd've", "it'd've"],
  ["it'dve", "it'd've"],
  ['itll', "it'll"],
  ["let's", "let's"],
  ['maam', "ma'am"],
  ['mightnt', "mightn't"],
  ["mightnt've", "mightn't've"],
  ["mightn'tve", "mightn't've"],
  ['mightve', "might've"],
  ['mustnt', "mustn't"],
  ['mustve', "must've"],
  ['neednt', "needn't"],
  ['notve', "not've"],
  ['oclock', "o'clock"],
  ['oughtnt', "oughtn't"],
  ["ow's'at", "'ow's'at"],
  ["'ows'at", "'ow's'at"],
  ["'ow'sat", "'ow's'at"],
  ['shant', "shan't"],
  ["shed've", "she'd've"],
  ["she'dve", "she'd've"],
  ["she's", "she's"],
  ['shouldve', "should've"],
  ['shouldnt', "shouldn't"],
  ["shouldnt've", "shouldn't've"],
  ["shouldn'tve", "shouldn't've"],
  ["somebody'd", 'somebodyd'],
  ["somebodyd've", "somebody'd've"],
  ["somebody'dve", "somebody'd've"],
  ['somebodyll', "somebody'll"],
  ['somebodys', "somebody's"],
  ['someoned', "someone'd"],
  ["someoned've", "someone'd've"],
  ["someone'dve", "someone'd've"],
  ['someonell', "someone'll"],
  ['someones', "someone's"],
  ['somethingd', "something'd"],
  ["somethingd've", "something'd've"],
  ["something'dve", "something'd've"],
  ['somethingll', "something'll"],
  ['thats', "that's"],
  ['thered', "there'd"],
  ["thered've", "there'd've"],
  ["there'dve", "there'd've"],
  ['therere', "there're"],
  ['theres', "there's"],
  ['theyd', "they'd"],
  ["theyd've", "they'd've"],
  ["they'dve", "they'd've"],
  ['theyll', "they'll"],
  ['theyre', "they're"],
  ['theyve', "they've"],
  ['twas', "'twas"],
  ['wasnt', "wasn't"],
  ["wed've", "we'd've"],
  ["we'dve", "we'd've"],
  ['weve', "we've"],
  ['werent', "weren't"],
  ['whatll', "what'll"],
  ['whatre', "what're"],
  ['whats', "what's"],
  ['whatve', "what've"],
  ['whens', "when's"],
  ['whered', "where'd"],
  ['wheres', "where's"],
  ['whereve', "where've"],
  ['whod', "who'd"],
  ["whod've", "who'd've"],
  ["who'dve", "who'd've"],
  ['wholl', "who'll"],
  ['whos', "who's"],
  ['whove', "who've"],
  ['whyll', "why'll"],
  ['whyre', "why're"],
  ['whys', "why's"],
  ['wont', "won't"],
  ['wouldve', "would've"],
  ['wouldnt', "wouldn't"],
  ["wouldnt've", "wouldn't've"],
  ["wouldn'tve", "wouldn't've"],
  ['yall', "y'all"],
  ["yall'll", "y'all'll"],
  ["y'allll", "y'all'll"],
  ["yall'd've", "y'all'd've"],
  ["y'alld've", "y'all'd've"],
  ["y'all'dve", "y'all'd've"],
  ['youd', "you'd"],
  ["youd've", "you'd've"],
  ["you'dve", "you'd've"],
  ['youll', "you'll"],
  ['youre', "you're"],
  ['youve', "you've"],
];

/** The official script's contractions map (apostrophe-less spelling -> spelling with apostrophes). */
export const VQA_CONTRACTIONS: ReadonlyMap<string, string> = new Map(CONTRACTION_PAIRS);

/** The official script's `manualMap`: number words to digits ('none' counts as 0). */
export const VQA_NUMBER_WORDS: ReadonlyMap<string, string> = new Map([
  ['none', '0'],
  ['zero', '0'],
  ['one', '1'],
  ['two', '2'],
  ['three', '3'],
  ['four', '4'],
  ['five', '5'],
  ['six', '6'],
  ['seven', '7'],
  ['eight', '8'],
  ['nine', '9'],
  ['ten', '10'],
]);

/** Articles the official script drops. */
export const VQA_ARTICLES: ReadonlySet<string> = new Set(['a', 'an', 'the']);

/** Punctuation the official script strips (note: no `'`, `:` or `.` here; `.` has its own rule). */
export const VQA_PUNCTUATION: readonly string[] = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];

const COMMA_STRIP = /\p{Nd},\p{Nd}/u;
// The official pattern is "(?!<=\d)(\.)(?!\d)": its first group is a (mistyped) look-ahead that
// always succeeds, so it removes every '.' not followed by a digit.
const PERIOD_STRIP = /(?!<=\p{Nd})(\.)(?!\p{Nd})/gu;

/**
 * The official `processPunctuation`: each listed mark is deleted when it touches a space anywhere
 * in the text (or the text has a digit,digit comma), else replaced by a space; then periods not
 * followed by a digit are deleted (at most 32 of them: the script passes `re.UNICODE` as `count`).
 */
export function vqaProcessPunctuation(text: string): string {
  let out = text;
  const commaHit = COMMA_STRIP.test(text);
  for (const p of VQA_PUNCTUATION) {
    // The test looks at the original text, the replacement at the text so far (as the script does).
    const remove = text.includes(p + ' ') || text.includes(' ' + p) || commaHit;
    out = out.split(p).join(remove ? '' : ' ');
  }
  let removed = 0;
  return out.replace(PERIOD_STRIP, (m) => (removed++ < 32 ? '' : m));
}

/** The official `processDigitArticle`: lowercase, split on whitespace, number words to digits, drop articles, restore contractions. */
export function vqaProcessDigitArticle(text: string): string {
  const words: string[] = [];
  for (const raw of pythonSplit(text.toLowerCase())) {
    const word = VQA_NUMBER_WORDS.get(raw) ?? raw;
    if (!VQA_ARTICLES.has(word)) words.push(word);
  }
  return words.map((w) => VQA_CONTRACTIONS.get(w) ?? w).join(' ');
}

/** Python's `str.split()` with no separator: split on runs of whitespace, no empty pieces. */
function pythonSplit(text: string): string[] {
  return text.split(/\s+/u).filter((w) => w.length > 0);
}

/** Normalise a predicted answer as the official script does (newlines/tabs to spaces, strip, punctuation, digits/articles/contractions). */
export function normalizeVqaAnswer(answer: string): string {
  const text = answer.replace(/\n/g, ' ').replace(/\t/g, ' ').trim();
  return vqaProcessDigitArticle(vqaProcessPunctuation(text));
}

/**
 * VQA accuracy of one prediction against the human answers (normally ten): for each leave-one-out
 * subset, min(#humans in the subset that gave the prediction / 3, 1), averaged over the subsets.
 * Human answers are only punctuation-processed, and only when they are not all identical (as in
 * the official script, which expects them to be normalised already by the dataset). `memo` (any
 * Map, shared across calls) caches the normalised forms of repeated texts.
 */
export function vqaAccuracy(prediction: string, humanAnswers: readonly string[], memo?: Map<string, string>): number {
  if (humanAnswers.length === 0) return 0;
  // The normalisations are pure functions of the text; `memo` lets a whole benchmark share them.
  const cached = (key: string, f: () => string) => {
    if (!memo) return f();
    let v = memo.get(key);
    if (v === undefined) memo.set(key, (v = f()));
    return v;
  };
  const res = cached(`r\u0000${prediction}`, () => normalizeVqaAnswer(prediction));
  const gts = new Set(humanAnswers).size > 1 ? humanAnswers.map((g) => cached(`g\u0000${g}`, () => vqaProcessPunctuation(g))) : humanAnswers;
  let matchesAll = 0;
  for (const g of gts) if (g === res) matchesAll++;
  let sum = 0;
  for (const g of gts) {
    const matches = matchesAll - (g === res ? 1 : 0);
    sum += Math.min(1, matches / 3);
  }
  return sum / gts.length;
}

/** One question for VQA scoring. */
export interface VqaGroundTruth {
  id: string;
  answers: readonly string[];
  answerType?: string;
  questionType?: string;
}

/** VQA scores: fractions in [0, 1] (the official script prints 100x, rounded to 2 decimals). */
export interface VqaScores {
  accuracy: number;
  perAnswerType: Record<string, number>;
  perQuestionType: Record<string, number>;
  perQuestion: Record<string, number>;
  count: number;
}

/** Score predictions (by question id) against ground truth; a missing prediction counts as an empty answer. */
export function scoreVqa(questions: readonly VqaGroundTruth[], predictions: ReadonlyMap<string, string> | Record<string, string>): VqaScores {
  const get = (id: string): string => (predictions instanceof Map ? (predictions.get(id) ?? '') : ((predictions as Record<string, string>)[id] ?? ''));
  const perQuestion: Record<string, number> = {};
  const byAnswer = new Map<string, number[]>();
  const byQuestion = new Map<string, number[]>();
  let sum = 0;
  const memo = new Map<string, string>();
  for (const q of questions) {
    const acc = vqaAccuracy(get(q.id), q.answers, memo);
    perQuestion[q.id] = acc;
    sum += acc;
    if (q.answerType !== undefined) push(byAnswer, q.answerType, acc);
    if (q.questionType !== undefined) push(byQuestion, q.questionType, acc);
  }
  return {
    accuracy: questions.length ? sum / questions.length : 0,
    perAnswerType: meanOf(byAnswer),
    perQuestionType: meanOf(byQuestion),
    perQuestion,
    count: questions.length,
  };
}

function push(map: Map<string, number[]>, key: string, v: number): void {
  const list = map.get(key);
  if (list) list.push(v);
  else map.set(key, [v]);
}

function meanOf(map: Map<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of map) out[k] = v.reduce((a, b) => a + b, 0) / v.length;
  return out;
}
