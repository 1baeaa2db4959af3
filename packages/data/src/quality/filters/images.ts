import type { VlitRecord } from '@vlit/core';
import { dHash, hammingDistance, hashToHex, pHash, pixelStats, type ImageHash } from '../image-hash.js';
import { imageRefPath } from '../pipeline.js';
import { PASS, rejectVerdict, type QualityFilter, type QualityVerdict } from '../types.js';

/** Options of imageFilter. */
export interface ImageFilterOptions {
  /** Smallest accepted width in pixels (default 32). */
  minWidth?: number;
  /** Smallest accepted height in pixels (default 32). */
  minHeight?: number;
  /** Smallest accepted standard deviation of pixel values (0..255, over R, G, B); below it the image is blank (default 3). */
  minStd?: number;
}

/** Image checks: the image loads, decodes with the injected codec, is large enough and not blank (low pixel variance). */
export function imageFilter(options: ImageFilterOptions = {}): QualityFilter {
  const minWidth = options.minWidth ?? 32;
  const minHeight = options.minHeight ?? 32;
  const minStd = options.minStd ?? 3;
  return {
    name: 'image',
    start: (run) => ({
      async check(record: VlitRecord): Promise<QualityVerdict> {
        for (const [i, ref] of record.images.entries()) {
          const loaded = await run.image(ref, record);
          const field = `images.${i}`;
          if (!loaded.ok) return rejectVerdict(loaded.reason, loaded.message, { field, path: loaded.path, code: loaded.code });
          const { width, height } = loaded.image;
          if (width < minWidth || height < minHeight) {
            return rejectVerdict('image-too-small', `${loaded.path} is ${width}x${height}, below ${minWidth}x${minHeight}`, {
              field,
              path: loaded.path,
              width,
              height,
            });
          }
          const { mean, std } = pixelStats(loaded.image);
          if (std < minStd) {
            return rejectVerdict('image-blank', `${loaded.path} is blank (pixel std ${std.toFixed(2)} < ${minStd})`, { field, path: loaded.path, mean, std });
          }
        }
        return PASS;
      },
    }),
  };
}

/** Options of imageDuplicateFilter. */
export interface ImageDuplicateFilterOptions {
  /** Perceptual hash to compare (default `phash`). */
  hash?: 'phash' | 'dhash';
  /** Largest Hamming distance (of 64 bits) that still counts as the same picture (default 6). */
  maxDistance?: number;
}

/**
 * Near-duplicate images: a record whose image file differs from every kept record's image file
 * but whose perceptual hash lies within `maxDistance` bits of one of them is removed. Several
 * records about the same file are fine. Distances up to 7 use an exact 8-way byte index
 * (pigeonhole: two hashes within 7 bits agree on at least one of 8 bytes); larger ones scan.
 */
export function imageDuplicateFilter(options: ImageDuplicateFilterOptions = {}): QualityFilter {
  const method = options.hash ?? 'phash';
  const maxDistance = options.maxDistance ?? 6;
  const hashOf = method === 'phash' ? pHash : dHash;
  return {
    name: 'image-duplicate',
    start(run) {
      const hashes = new Map<string, ImageHash | null>();
      const kept: Array<{ path: string; hash: ImageHash; record: string }> = [];
      const keptPaths = new Set<string>();
      const index: Array<Map<number, number[]>> = Array.from({ length: 8 }, () => new Map());
      const byte = (h: ImageHash, b: number): number => Number((h >> BigInt(8 * b)) & 0xffn);
      const hashFor = async (path: string, record: VlitRecord, ref: VlitRecord['images'][number]): Promise<ImageHash | null> => {
        if (!hashes.has(path)) {
          const loaded = await run.image(ref, record);
          hashes.set(path, loaded.ok ? hashOf(loaded.image) : null);
        }
        return hashes.get(path) ?? null;
      };
      const candidates = (h: ImageHash): number[] => {
        if (maxDistance > 7) return kept.map((_, i) => i);
        const found = new Set<number>();
        for (let b = 0; b < 8; b++) for (const i of index[b].get(byte(h, b)) ?? []) found.add(i);
        return [...found].sort((x, y) => x - y);
      };
      return {
        async check(record) {
          for (const [i, ref] of record.images.entries()) {
            const path = imageRefPath(ref);
            if (keptPaths.has(path)) continue;
            const h = await hashFor(path, record, ref);
            if (h === null) continue;
            for (const c of candidates(h)) {
              const d = hammingDistance(h, kept[c].hash);
              if (d <= maxDistance) {
                return rejectVerdict(
                  'duplicate-image',
                  `${path} looks like ${kept[c].path} (kept with record ${kept[c].record}): ${method} distance ${d} <= ${maxDistance}`,
                  {
                    field: `images.${i}`,
                    path,
                    duplicateOf: kept[c].path,
                    duplicateRecord: kept[c].record,
                    distance: d,
                    hash: hashToHex(h),
                  },
                );
              }
            }
          }
          return PASS;
        },
        keep(record) {
          for (const ref of record.images) {
            const path = imageRefPath(ref);
            const h = hashes.get(path);
            if (keptPaths.has(path) || h === undefined || h === null) continue;
            keptPaths.add(path);
            const at = kept.length;
            kept.push({ path, hash: h, record: record.id });
            for (let b = 0; b < 8; b++) {
              const key = byte(h, b);
              const list = index[b].get(key);
              if (list) list.push(at);
              else index[b].set(key, [at]);
            }
          }
        },
      };
    },
  };
}
