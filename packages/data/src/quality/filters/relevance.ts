import { assertRelevancePair, imageTextRelevance, type RelevanceModels } from '../relevance.js';
import { recordTurns } from '../text.js';
import { PASS, rejectVerdict, type QualityFilter, type QualityVerdict } from '../types.js';

/** Options of relevanceFilter. */
export interface RelevanceFilterOptions extends RelevanceModels {
  /** Lowest accepted relevance, 0..100 (100 * cosine). */
  minScore: number;
  /** Text compared with the first image (default `answers`). */
  text?: 'answers' | 'conversation';
}

/** Optional image–text relevance: the first image against the record's text through any VisionEncoder + TextEmbedder sharing one space. */
export function relevanceFilter(options: RelevanceFilterOptions): QualityFilter {
  assertRelevancePair(options);
  return {
    name: 'relevance',
    start: (run) => ({
      async check(record): Promise<QualityVerdict> {
        if (!record.images.length) return PASS;
        const loaded = await run.image(record.images[0], record);
        if (!loaded.ok) return rejectVerdict(loaded.reason, loaded.message, { field: 'images.0', path: loaded.path });
        const turns = recordTurns(record);
        const text = turns.map((t) => (options.text === 'conversation' ? `${t.instruction}\n${t.answer}` : t.answer)).join('\n');
        const [score] = await imageTextRelevance(options, [loaded.image], [text]);
        return score < options.minScore
          ? rejectVerdict('low-relevance', `image–text relevance ${score.toFixed(1)} < ${options.minScore} (${options.encoder.id} + ${options.embedder.id})`, {
              score,
              encoder: options.encoder.id,
              embedder: options.embedder.id,
            })
          : PASS;
      },
    }),
  };
}
