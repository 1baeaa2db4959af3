import type { ImageCodec, ImageRef, ProgressCallback, RawImage, VlitRecord, VlitWarning } from '@vlit/core';
import type { ImageAnnotations } from '../annotations.js';
import type { CategoryVocabulary } from './vocabulary/coco-categories.js';

/** Fetches the bytes of an image reference; throws a VlitError (PathEscapeError, NotFoundError, ...) when it cannot. */
export type ImageBytesLoader = (path: string, record: VlitRecord) => Promise<Uint8Array>;

/** Where a run gets image pixels from. */
export interface QualityImageSource {
  codec: ImageCodec;
  load: ImageBytesLoader;
}

/** How a record finds its annotations. */
export type AnnotationSource = Iterable<ImageAnnotations> | ReadonlyMap<string, ImageAnnotations> | ((record: VlitRecord) => ImageAnnotations | undefined);

/** Everything filters may need, given once per run. */
export interface QualityContext {
  /** Per-image annotations for consistency and hallucination checks (matched by `metadata.imageId`, else by image path = `file`). */
  annotations?: AnnotationSource;
  /** Codec + loader for image checks; filters needing pixels fail fast without it. */
  images?: QualityImageSource;
  /** Object vocabulary (default: COCO's 80 categories with synonyms and plurals). */
  vocabulary?: CategoryVocabulary;
  /** Decoded images kept in memory at once (LRU; default 32). */
  imageCacheSize?: number;
  onProgress?: ProgressCallback;
}

/** Why an image could not be used. */
export type ImageFailureReason = 'path-escape' | 'image-missing' | 'image-not-a-file' | 'image-too-large' | 'image-undecodable' | 'image-unreadable';

/** A loaded image, or why not. */
export type LoadedImage =
  | { ok: true; path: string; image: RawImage; byteLength: number }
  | { ok: false; path: string; reason: ImageFailureReason; message: string; code?: string };

/** What a filter sees of the run: shared lookups with caches. */
export interface QualityRun {
  readonly vocabulary: CategoryVocabulary;
  /** Annotations of a record's (first) image, if known. */
  annotationsFor(record: VlitRecord): ImageAnnotations | undefined;
  /** Load and decode an image reference once per run (LRU-cached). Throws InvalidArgumentError when the context has no images. */
  image(ref: ImageRef, record: VlitRecord): Promise<LoadedImage>;
  /** True when the context can load images. */
  readonly hasImages: boolean;
  /** Report a recoverable problem. */
  warn(warning: VlitWarning): void;
}

/** A filter's decision on one record. */
export type QualityVerdict = { ok: true } | { ok: false; reason: string; message: string; details?: Record<string, unknown> };

/** The per-run checker a filter starts. */
export interface QualityCheck {
  /** Decide on one record (already schema-valid). */
  check(record: VlitRecord, index: number): QualityVerdict | Promise<QualityVerdict>;
  /** Told when a record passed every filter; stateful filters (duplicates) remember kept records here. */
  keep?(record: VlitRecord, index: number): void;
}

/** A composable quality-control step. `start` is called once per run, so state never leaks between runs. */
export interface QualityFilter {
  readonly name: string;
  start(run: QualityRun): QualityCheck | Promise<QualityCheck>;
}

/** A removed record and why. */
export interface QualityReject {
  /** Record id (or `#<index>` when the input had no readable id). */
  id: string;
  /** Position in the input, from 0. */
  index: number;
  /** Name of the filter that removed it. */
  filter: string;
  /** Stable reason code, e.g. `count-mismatch`. */
  reason: string;
  message: string;
  details?: Record<string, unknown>;
  /** The record as read (unparsed when it failed the schema). */
  record: unknown;
}

/** Counts of a run; `read = kept + rejected` always. */
export interface QualityCounts {
  read: number;
  kept: number;
  rejected: number;
  byFilter: Record<string, number>;
  byReason: Record<string, number>;
}

/** One step of a streaming run. */
export type QualityEvent = { kind: 'kept'; index: number; record: VlitRecord } | { kind: 'rejected'; index: number; reject: QualityReject };

/** The collected outcome of runQualityControl. */
export interface QualityResult {
  kept: VlitRecord[];
  rejects: QualityReject[];
  counts: QualityCounts;
  warnings: VlitWarning[];
}

/** A passing verdict. */
export const PASS: QualityVerdict = Object.freeze({ ok: true });

/** A failing verdict. */
export function rejectVerdict(reason: string, message: string, details?: Record<string, unknown>): QualityVerdict {
  return details ? { ok: false, reason, message, details } : { ok: false, reason, message };
}

/** Make a stateless filter from a check function. */
export function defineFilter(
  name: string,
  check: (record: VlitRecord, run: QualityRun, index: number) => QualityVerdict | Promise<QualityVerdict>,
): QualityFilter {
  return { name, start: (run) => ({ check: (record, index) => check(record, run, index) }) };
}
