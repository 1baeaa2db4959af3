import type { VlitRecord } from '@vlit/core';
import { checkConsistency, findHallucinations, type AnnotationCheckOptions, type AnnotationIssue } from '../checks.js';
import { PASS, rejectVerdict, type QualityFilter, type QualityRun, type QualityVerdict } from '../types.js';

/** Options shared by the annotation-based filters. */
export interface AnnotationFilterOptions extends Omit<AnnotationCheckOptions, 'vocabulary'> {
  /** What to do with a record whose image has no annotations: pass it (default) or reject it (`no-annotations`). */
  missingAnnotations?: 'pass' | 'reject';
}

function annotationFilter(
  name: string,
  options: AnnotationFilterOptions,
  run: (record: VlitRecord, ann: NonNullable<ReturnType<QualityRun['annotationsFor']>>, opts: AnnotationCheckOptions) => AnnotationIssue[],
): QualityFilter {
  return {
    name,
    start: (qr) => ({
      check(record): QualityVerdict {
        const ann = qr.annotationsFor(record);
        if (!ann) {
          return options.missingAnnotations === 'reject'
            ? rejectVerdict('no-annotations', "no annotations are known for this record's image", { field: 'images.0' })
            : PASS;
        }
        const issue = run(record, ann, { vocabulary: qr.vocabulary, trustCaptions: options.trustCaptions })[0];
        return issue ? rejectVerdict(issue.reason, issue.message, { ...issue.details, turn: issue.turn, imageId: ann.imageId }) : PASS;
      },
    }),
  };
}

/** Answer–annotation consistency: counts, yes/no existence answers and colours that contradict the image's objects. */
export function consistencyFilter(options: AnnotationFilterOptions = {}): QualityFilter {
  return annotationFilter('consistency', options, checkConsistency);
}

/** Hallucination: objects named in answers (not negated) that are absent from the image's annotations, matched through the synonym/plural vocabulary. */
export function hallucinationFilter(options: AnnotationFilterOptions = {}): QualityFilter {
  return annotationFilter('hallucination', options, findHallucinations);
}
