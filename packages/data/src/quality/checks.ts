/**
 * Answer–annotation checks as pure functions: consistency (counts, existence, colours) and
 * hallucination (objects mentioned in answers that the annotations do not have). The filters and
 * the correctness metric both use them.
 */
import type { VlitRecord } from '@vlit/core';
import type { ImageAnnotations } from '../annotations.js';
import { cocoVocabulary, type CategoryVocabulary } from './vocabulary/coco-categories.js';
import { canonicalCategory, clauses, colourOf, coloursIn, findObjectMentions, firstNumber, recordTurns, words, type ObjectMention } from './text.js';

/** What annotations say about one image, by canonical category. */
export interface AnnotationFacts {
  /** Instances per category. */
  counts: Map<string, number>;
  /** Colours per instance per category (empty set: instance has no colour attribute). */
  colours: Map<string, Array<Set<string>>>;
  /** Categories present: annotated objects, plus ones the captions mention when allowed. */
  present: Set<string>;
  /** False when there is nothing to compare against (no objects and no captions). */
  informative: boolean;
}

/** Options of the answer–annotation checks. */
export interface AnnotationCheckOptions {
  vocabulary?: CategoryVocabulary;
  /** Treat objects named (not negated) in the image's captions as present (default true). */
  trustCaptions?: boolean;
}

/** Summarise an image's annotations by canonical category. */
export function annotationFacts(annotations: ImageAnnotations, options: AnnotationCheckOptions = {}): AnnotationFacts {
  const vocabulary = options.vocabulary ?? cocoVocabulary();
  const counts = new Map<string, number>();
  const colours = new Map<string, Array<Set<string>>>();
  for (const o of annotations.objects) {
    const c = canonicalCategory(o.category, vocabulary);
    counts.set(c, (counts.get(c) ?? 0) + 1);
    const set = new Set<string>();
    for (const a of o.attributes ?? []) {
      const col = colourOf(a);
      if (col) set.add(col);
    }
    if (!colours.has(c)) colours.set(c, []);
    colours.get(c)!.push(set);
  }
  const present = new Set(counts.keys());
  if (options.trustCaptions ?? true) {
    for (const cap of annotations.captions) for (const m of findObjectMentions(cap, vocabulary)) if (!m.negated) present.add(m.category);
  }
  return { counts, colours, present, informative: annotations.objects.length > 0 || annotations.captions.length > 0 };
}

/** One disagreement between a record and its image's annotations. */
export interface AnnotationIssue {
  reason: 'count-mismatch' | 'existence-contradiction' | 'colour-mismatch' | 'hallucinated-object';
  /** Index of the exchange (instruction + answer) in the record. */
  turn: number;
  message: string;
  details: Record<string, unknown>;
}

const YES = new Set(['yes', 'yeah', 'yep', 'correct', 'true', 'indeed', 'certainly', 'definitely']);
const NO = new Set(['no', 'nope', 'not', 'false', 'none', 'nothing']);
const AUX = new Set(['is', 'are', 'does', 'do', 'can', 'could', 'would', 'will', 'was', 'were', 'has', 'have', 'did']);
const EXISTENCE_CUES = new Set([
  'there',
  'contain',
  'contains',
  'see',
  'visible',
  'show',
  'shows',
  'include',
  'includes',
  'present',
  'any',
  'anywhere',
  'exist',
  'exists',
  'spot',
]);

/** Polarity of an answer's first word: `yes`, `no` or undefined. */
export function answerPolarity(answer: string): 'yes' | 'no' | undefined {
  const first = words(answer)[0];
  if (first === undefined) return undefined;
  if (YES.has(first)) return 'yes';
  if (NO.has(first)) return 'no';
  return undefined;
}

/** The question kind consistency checks understand. */
export function questionKind(instruction: string): 'count' | 'colour' | 'existence' | 'other' {
  const ws = words(instruction);
  const text = ws.join(' ');
  if (/\b(how many|count|number of|total of)\b/.test(text)) return 'count';
  if (/\b(colou?rs?)\b/.test(text)) return 'colour';
  // A yes/no question: "Is there ...", "Does the image contain ...", "Answer yes or no: does ...".
  const yesNoClauses = clauses(instruction).filter((c) => AUX.has(c[0]));
  const asksYesNo = yesNoClauses.length > 0 || text.includes('yes or no');
  const cue = ws.some((w) => EXISTENCE_CUES.has(w)) || yesNoClauses.some((c) => ['a', 'an', 'any', 'some'].includes(c[1]));
  return asksYesNo && cue ? 'existence' : 'other';
}

function single(mentions: ObjectMention[]): ObjectMention | undefined {
  const live = mentions.filter((m) => !m.negated);
  const cats = new Set(live.map((m) => m.category));
  return cats.size === 1 ? live[0] : undefined;
}

/** Instances of a category, restricted to a colour when every instance's colour is known; undefined when the colour cannot be judged. */
function countOf(facts: AnnotationFacts, category: string, colour?: string): number | undefined {
  const total = facts.counts.get(category) ?? 0;
  if (!colour || total === 0) return total;
  const cols = facts.colours.get(category) ?? [];
  if (cols.some((s) => s.size === 0)) return undefined;
  return cols.filter((s) => s.has(colour)).length;
}

/** Counting, existence and colour answers (and stated counts and colours) that contradict the annotations. */
export function checkConsistency(record: VlitRecord, annotations: ImageAnnotations, options: AnnotationCheckOptions = {}): AnnotationIssue[] {
  const vocabulary = options.vocabulary ?? cocoVocabulary();
  const facts = annotationFacts(annotations, options);
  const issues: AnnotationIssue[] = [];
  recordTurns(record).forEach(({ instruction, answer }, turn) => {
    const kind = questionKind(instruction);
    const asked = single(findObjectMentions(instruction, vocabulary));
    if (asked && kind === 'count') {
      const stated = firstNumber(answer);
      const expected = countOf(facts, asked.category, asked.colour);
      if (stated !== undefined && expected !== undefined && stated !== expected) {
        issues.push({
          reason: 'count-mismatch',
          turn,
          message: `answer says ${stated} ${asked.colour ? `${asked.colour} ` : ''}${asked.category} but the annotations have ${expected}`,
          details: { category: asked.category, colour: asked.colour, stated, expected },
        });
        return;
      }
    }
    if (asked && kind === 'existence') {
      const polarity = answerPolarity(answer);
      const n = countOf(facts, asked.category, asked.colour);
      if (polarity && n !== undefined) {
        const present = n > 0 || (!asked.colour && facts.present.has(asked.category));
        if ((polarity === 'yes') !== present) {
          issues.push({
            reason: 'existence-contradiction',
            turn,
            message: `answer says ${polarity} to a ${asked.category} but the annotations have ${n}`,
            details: { category: asked.category, colour: asked.colour, answer: polarity, expected: present ? 'yes' : 'no' },
          });
          return;
        }
      }
    }
    if (asked && kind === 'colour') {
      const said = coloursIn(answer);
      const known = new Set((facts.colours.get(asked.category) ?? []).flatMap((s) => [...s]));
      if (said.length && known.size && !said.some((c) => known.has(c))) {
        issues.push({
          reason: 'colour-mismatch',
          turn,
          message: `answer says ${said.join('/')} ${asked.category} but the annotations say ${[...known].join('/')}`,
          details: { category: asked.category, stated: said, expected: [...known] },
        });
        return;
      }
    }
    for (const m of findObjectMentions(answer, vocabulary)) {
      if (m.negated || !facts.counts.has(m.category)) continue;
      const n = countOf(facts, m.category, m.colour);
      if (m.count !== undefined && m.count >= 2 && n !== undefined && m.count > n) {
        issues.push({
          reason: 'count-mismatch',
          turn,
          message: `answer mentions ${m.count} ${m.colour ? `${m.colour} ` : ''}${m.text} but the annotations have ${n}`,
          details: { category: m.category, colour: m.colour, stated: m.count, expected: n },
        });
        return;
      }
      if (m.colour && n === 0) {
        const known = [...new Set((facts.colours.get(m.category) ?? []).flatMap((s) => [...s]))];
        issues.push({
          reason: 'colour-mismatch',
          turn,
          message: `answer mentions a ${m.colour} ${m.text} but the annotations say ${known.join('/')}`,
          details: { category: m.category, stated: [m.colour], expected: known },
        });
        return;
      }
    }
  });
  return issues;
}

/** Objects named in answers (not negated) that the annotations do not contain. */
export function findHallucinations(record: VlitRecord, annotations: ImageAnnotations, options: AnnotationCheckOptions = {}): AnnotationIssue[] {
  const vocabulary = options.vocabulary ?? cocoVocabulary();
  const facts = annotationFacts(annotations, options);
  if (!facts.informative) return [];
  const issues: AnnotationIssue[] = [];
  recordTurns(record).forEach(({ instruction, answer }, turn) => {
    const denied = answerPolarity(answer) === 'no' ? new Set(findObjectMentions(instruction, vocabulary).map((m) => m.category)) : new Set<string>();
    const seen = new Set<string>();
    for (const m of findObjectMentions(answer, vocabulary)) {
      if (m.negated || denied.has(m.category) || facts.present.has(m.category) || seen.has(m.category)) continue;
      seen.add(m.category);
      issues.push({
        reason: 'hallucinated-object',
        turn,
        message: `answer mentions ${m.text} (${m.category}), which the annotations do not have`,
        details: { category: m.category, word: m.text },
      });
    }
  });
  return issues;
}
