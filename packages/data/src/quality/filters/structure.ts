import { IMAGE_PLACEHOLDER, countMessageImages, type VlitRecord } from '@vlit/core';
import { imageRefPath } from '../pipeline.js';
import { plainMessageText } from '../text.js';
import { PASS, rejectVerdict, type QualityFilter, type QualityVerdict } from '../types.js';

/** Options of structureFilter. */
export interface StructureFilterOptions {
  /** Reject a second record with an id already kept (default true). */
  uniqueIds?: boolean;
  /** Reject image placeholders inside assistant turns (default true). */
  noImagesInAnswers?: boolean;
  /** Require user/assistant alternation, starting with the user and ending with the assistant (default true). */
  alternation?: boolean;
}

const MALFORMED_PLACEHOLDER = /<\s*\/?\s*(image|img|Image|IMAGE)[^>]*>/g;

/**
 * Schema and placeholder validity beyond the canonical schema (which the pipeline always applies):
 * unique ids, no empty turns, no near-miss placeholders such as `<Image>` or `<image_1>`, no
 * images in answers, user/assistant alternation.
 */
export function structureFilter(options: StructureFilterOptions = {}): QualityFilter {
  const uniqueIds = options.uniqueIds ?? true;
  const noImagesInAnswers = options.noImagesInAnswers ?? true;
  const alternation = options.alternation ?? true;
  return {
    name: 'structure',
    start() {
      const seen = new Set<string>();
      return {
        check(record: VlitRecord): QualityVerdict {
          if (uniqueIds && seen.has(record.id)) return rejectVerdict('duplicate-id', `id ${record.id} was already used by a kept record`, { field: 'id' });
          let expected: 'user' | 'assistant' = 'user';
          for (const [i, m] of record.messages.entries()) {
            const images = countMessageImages(m);
            const text = plainMessageText(m);
            if (!text && images === 0) return rejectVerdict('empty-message', `message ${i} (${m.role}) has no text`, { field: `messages.${i}.content` });
            if (m.role === 'assistant' && !text) return rejectVerdict('empty-message', `answer ${i} has no text`, { field: `messages.${i}.content` });
            const raw = typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
            const stray = [...raw.matchAll(MALFORMED_PLACEHOLDER)].map((x) => x[0]).filter((x) => x !== IMAGE_PLACEHOLDER);
            if (stray.length)
              return rejectVerdict('malformed-placeholder', `message ${i} has ${stray[0]}, which is not the image placeholder ${IMAGE_PLACEHOLDER}`, {
                field: `messages.${i}.content`,
                found: stray,
              });
            if (noImagesInAnswers && m.role === 'assistant' && images > 0)
              return rejectVerdict('image-in-answer', `answer ${i} holds an image placeholder`, { field: `messages.${i}.content` });
            if (alternation && m.role !== 'system') {
              if (m.role !== expected)
                return rejectVerdict('role-order', `message ${i} is from the ${m.role}, expected the ${expected}`, { field: `messages.${i}.role` });
              expected = expected === 'user' ? 'assistant' : 'user';
            }
          }
          if (alternation && expected === 'assistant') return rejectVerdict('role-order', 'the last instruction has no answer', { field: 'messages' });
          return PASS;
        },
        keep(record) {
          seen.add(record.id);
        },
      };
    },
  };
}

/** Why an image path is refused on its face, or undefined when it looks like a path under the root. */
export function lexicalPathProblem(path: string): { reason: 'path-escape' | 'remote-image'; message: string } | undefined {
  if (path.includes('\0')) return { reason: 'path-escape', message: 'path contains a NUL byte' };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) || /^data:/i.test(path))
    return { reason: 'remote-image', message: `'${path}' is a URL, not a path under the dataset root` };
  if (path.startsWith('/') || path.startsWith('\\') || /^[a-z]:/i.test(path)) return { reason: 'path-escape', message: `'${path}' is absolute` };
  let depth = 0;
  for (const seg of path.split(/[\\/]+/)) {
    if (seg === '..') depth--;
    else if (seg !== '.' && seg !== '') depth++;
    if (depth < 0) return { reason: 'path-escape', message: `'${path}' leaves the dataset root` };
  }
  return undefined;
}

/**
 * Refuse image references that leave the dataset root on their face (absolute, `..`), or are URLs.
 * Symbolic links are caught when images are loaded through `createRootImageLoader` (node entry).
 */
export function imagePathFilter(): QualityFilter {
  return {
    name: 'image-path',
    start: () => ({
      check(record) {
        for (const [i, ref] of record.images.entries()) {
          const problem = lexicalPathProblem(imageRefPath(ref));
          if (problem) return rejectVerdict(problem.reason, problem.message, { field: `images.${i}`, path: imageRefPath(ref) });
        }
        return PASS;
      },
    }),
  };
}
