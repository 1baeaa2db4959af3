import type { QualityFilter } from '../types.js';
import { consistencyFilter, hallucinationFilter, type AnnotationFilterOptions } from './annotations.js';
import { textDuplicateFilter, type TextDuplicateFilterOptions } from './duplicates.js';
import { imageDuplicateFilter, imageFilter, type ImageDuplicateFilterOptions, type ImageFilterOptions } from './images.js';
import { relevanceFilter, type RelevanceFilterOptions } from './relevance.js';
import { imagePathFilter, structureFilter, type StructureFilterOptions } from './structure.js';
import { languageFilter, lengthFilter, type LanguageFilterOptions, type LengthFilterOptions } from './text-bounds.js';

/** Options of defaultQualityFilters; `false` leaves a step out. */
export interface DefaultQualityFiltersOptions {
  structure?: StructureFilterOptions | false;
  imagePath?: false;
  /** Needs `context.images`; default on. */
  image?: ImageFilterOptions | false;
  language?: LanguageFilterOptions | false;
  length?: LengthFilterOptions | false;
  consistency?: AnnotationFilterOptions | false;
  hallucination?: AnnotationFilterOptions | false;
  /** Near-duplicate conversations about the same image. */
  duplicateConversation?: TextDuplicateFilterOptions | false;
  /**
   * Near-duplicate answers across the dataset (boilerplate descriptions). Off unless given: templated
   * answers ("No, there is no cat in the image.") repeat across images legitimately. minWords defaults to 12.
   */
  duplicateAnswer?: TextDuplicateFilterOptions | false;
  /** Needs `context.images`; default on. */
  imageDuplicate?: ImageDuplicateFilterOptions | false;
  /** Off unless given (needs an encoder + embedder). */
  relevance?: RelevanceFilterOptions;
}

/**
 * The standard chain, cheap and certain checks first: structure, image path, image, language,
 * length, consistency, hallucination, duplicate conversations, duplicate answers (opt-in),
 * duplicate images, relevance (opt-in). Correctness runs before deduplication so a wrong copy never blocks a right one.
 */
export function defaultQualityFilters(options: DefaultQualityFiltersOptions = {}): QualityFilter[] {
  const out: QualityFilter[] = [];
  if (options.structure !== false) out.push(structureFilter(options.structure || {}));
  if (options.imagePath !== false) out.push(imagePathFilter());
  if (options.image !== false) out.push(imageFilter(options.image || {}));
  if (options.language !== false) out.push(languageFilter(options.language || {}));
  if (options.length !== false) out.push(lengthFilter(options.length || {}));
  if (options.consistency !== false) out.push(consistencyFilter(options.consistency || {}));
  if (options.hallucination !== false) out.push(hallucinationFilter(options.hallucination || {}));
  if (options.duplicateConversation !== false)
    out.push(textDuplicateFilter({ target: 'conversation', scope: 'image', ...(options.duplicateConversation || {}) }));
  if (options.duplicateAnswer) out.push(textDuplicateFilter({ target: 'answers', scope: 'global', minWords: 12, ...options.duplicateAnswer }));
  if (options.imageDuplicate !== false) out.push(imageDuplicateFilter(options.imageDuplicate || {}));
  if (options.relevance) out.push(relevanceFilter(options.relevance));
  return out;
}
