import { detectLanguage } from '../language.js';
import { recordTurns, words } from '../text.js';
import { PASS, rejectVerdict, type QualityFilter, type QualityVerdict } from '../types.js';

/** Options of lengthFilter; lengths are in words. */
export interface LengthFilterOptions {
  minInstructionWords?: number;
  maxInstructionWords?: number;
  minAnswerWords?: number;
  maxAnswerWords?: number;
  /** Most exchanges per record (default 64). */
  maxTurns?: number;
  /** Bounds on (answer words / instruction words) over the whole record (default none). */
  minAnswerRatio?: number;
  maxAnswerRatio?: number;
}

/** Length and ratio bounds per exchange (instruction and answer word counts) and per record (turns, answer/instruction ratio). */
export function lengthFilter(options: LengthFilterOptions = {}): QualityFilter {
  const o = { minInstructionWords: 1, maxInstructionWords: 512, minAnswerWords: 1, maxAnswerWords: 2048, maxTurns: 64, ...options };
  return {
    name: 'length',
    start: () => ({
      check(record): QualityVerdict {
        const turns = recordTurns(record);
        if (turns.length > o.maxTurns) return rejectVerdict('too-many-turns', `${turns.length} exchanges > ${o.maxTurns}`, { turns: turns.length });
        let iw = 0;
        let aw = 0;
        for (const [turn, t] of turns.entries()) {
          const ni = words(t.instruction).length;
          const na = words(t.answer).length;
          iw += ni;
          aw += na;
          if (ni < o.minInstructionWords)
            return rejectVerdict('instruction-too-short', `instruction ${turn} has ${ni} words < ${o.minInstructionWords}`, { turn, words: ni });
          if (ni > o.maxInstructionWords)
            return rejectVerdict('instruction-too-long', `instruction ${turn} has ${ni} words > ${o.maxInstructionWords}`, { turn, words: ni });
          if (na < o.minAnswerWords) return rejectVerdict('answer-too-short', `answer ${turn} has ${na} words < ${o.minAnswerWords}`, { turn, words: na });
          if (na > o.maxAnswerWords) return rejectVerdict('answer-too-long', `answer ${turn} has ${na} words > ${o.maxAnswerWords}`, { turn, words: na });
        }
        const ratio = aw / Math.max(1, iw);
        if ((o.minAnswerRatio !== undefined && ratio < o.minAnswerRatio) || (o.maxAnswerRatio !== undefined && ratio > o.maxAnswerRatio)) {
          return rejectVerdict(
            'ratio-out-of-bounds',
            `answer/instruction word ratio ${ratio.toFixed(2)} is outside [${o.minAnswerRatio ?? 0}, ${o.maxAnswerRatio ?? 'inf'}]`,
            { ratio, answerWords: aw, instructionWords: iw },
          );
        }
        return PASS;
      },
    }),
  };
}

/** Options of languageFilter. */
export interface LanguageFilterOptions {
  /** Accepted ISO 639-1 codes (default `['en']`). */
  languages?: readonly string[];
  /** Texts with fewer words are not judged (default 3). */
  minWords?: number;
}

/** Language check: every instruction and answer long enough to judge must be in an accepted language (offline script + stopword detector). */
export function languageFilter(options: LanguageFilterOptions = {}): QualityFilter {
  const accepted = new Set(options.languages ?? ['en']);
  const minWords = options.minWords ?? 3;
  return {
    name: 'language',
    start: () => ({
      check(record): QualityVerdict {
        for (const [turn, t] of recordTurns(record).entries()) {
          for (const [part, text] of [
            ['instruction', t.instruction],
            ['answer', t.answer],
          ] as const) {
            if (words(text).length < minWords) continue;
            const guess = detectLanguage(text);
            if (guess.language !== 'und' && !accepted.has(guess.language)) {
              return rejectVerdict('wrong-language', `${part} ${turn} looks ${guess.language} (${guess.script}), accepted: ${[...accepted].join(', ')}`, {
                turn,
                part,
                ...guess,
              });
            }
          }
        }
        return PASS;
      },
    }),
  };
}
