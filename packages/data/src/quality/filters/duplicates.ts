import { InvalidArgumentError, type VlitRecord } from '@vlit/core';
import { createLshIndex, createMinHashParams, estimateJaccard, minhashSignature, wordShingles, type LshIndex } from '../minhash.js';
import { imageRefPath } from '../pipeline.js';
import { recordTurns, words } from '../text.js';
import { PASS, rejectVerdict, type QualityFilter } from '../types.js';

/** Which text of a record is compared. */
export type DuplicateTarget = 'conversation' | 'instructions' | 'answers';

/** Options of textDuplicateFilter. */
export interface TextDuplicateFilterOptions {
  /** Text compared (default `conversation`: every instruction and answer). */
  target?: DuplicateTarget;
  /**
   * `image` compares only records about the same image set (a copied record, a question asked
   * twice); `global` compares across the dataset (boilerplate answers). Default `image`.
   */
  scope?: 'image' | 'global';
  /** Estimated Jaccard similarity of word shingles at or above which texts are near-duplicates (default 0.8). */
  threshold?: number;
  /** Words per shingle (default 3). */
  shingleSize?: number;
  /** LSH bands x rows = MinHash permutations (default 32 x 4 = 128). */
  bands?: number;
  rows?: number;
  /** Texts with fewer words are not checked (default 0); short answers such as "Yes." repeat legitimately. */
  minWords?: number;
  /** Seed of the MinHash permutations (default `vlit-minhash`). */
  seed?: number | string;
  /** Filter name in reject reports (default `duplicate-<target>`). */
  name?: string;
}

/** The text a duplicate filter compares. */
export function duplicateText(record: VlitRecord, target: DuplicateTarget): string {
  const turns = recordTurns(record);
  if (target === 'instructions') return turns.map((t) => t.instruction).join('\n');
  if (target === 'answers') return turns.map((t) => t.answer).join('\n');
  return turns.map((t) => `${t.instruction}\n${t.answer}`).join('\n');
}

/**
 * Exact and near-duplicate text: exact after lower-casing and dropping punctuation (reason
 * `duplicate-exact`), near by MinHash over word shingles with banded LSH, verified by the
 * signature estimate (reason `duplicate-near`). The first kept record wins.
 */
export function textDuplicateFilter(options: TextDuplicateFilterOptions = {}): QualityFilter {
  const target = options.target ?? 'conversation';
  const scope = options.scope ?? 'image';
  const threshold = options.threshold ?? 0.8;
  const k = options.shingleSize ?? 3;
  const bands = options.bands ?? 32;
  const rows = options.rows ?? 4;
  const minWords = options.minWords ?? 0;
  if (!(threshold > 0 && threshold <= 1)) throw new InvalidArgumentError(`threshold must be in (0, 1], got ${threshold}`, { details: { field: 'threshold' } });
  const params = createMinHashParams(bands * rows, options.seed ?? 'vlit-minhash');
  return {
    name: options.name ?? `duplicate-${target}`,
    start() {
      const exact = new Map<string, string>();
      const indices = new Map<string, LshIndex<{ id: string; sig: Uint32Array }>>();
      let pending: { index: number; group: string; norm: string; sig?: Uint32Array } | undefined;
      const groupOf = (r: VlitRecord): string => (scope === 'global' ? '' : r.images.map(imageRefPath).join('\u0000'));
      return {
        check(record, index) {
          const ws = words(duplicateText(record, target));
          const group = groupOf(record);
          const norm = ws.join(' ');
          if (ws.length < minWords) return PASS;
          pending = { index, group, norm };
          const first = exact.get(`${group}\u0001${norm}`);
          if (first !== undefined)
            return rejectVerdict('duplicate-exact', `same ${target} as kept record ${first}`, { duplicateOf: first, target, similarity: 1 });
          const sig = minhashSignature(wordShingles(norm, k), params);
          pending.sig = sig;
          for (const c of indices.get(group)?.candidates(sig) ?? []) {
            const s = estimateJaccard(sig, c.sig);
            if (s >= threshold) {
              return rejectVerdict(
                'duplicate-near',
                `${target} is a near-duplicate of kept record ${c.id} (estimated Jaccard ${s.toFixed(3)} >= ${threshold})`,
                {
                  duplicateOf: c.id,
                  target,
                  similarity: s,
                },
              );
            }
          }
          return PASS;
        },
        keep(record, index) {
          const p = pending?.index === index ? pending : undefined;
          if (!p) return;
          exact.set(`${p.group}\u0001${p.norm}`, record.id);
          if (p.sig) {
            let lsh = indices.get(p.group);
            if (!lsh) indices.set(p.group, (lsh = createLshIndex(bands, rows)));
            lsh.add({ id: record.id, sig: p.sig }, p.sig);
          }
        },
      };
    },
  };
}
