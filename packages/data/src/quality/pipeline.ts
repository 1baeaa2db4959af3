import { InvalidArgumentError, isVlitError, safeParseVlitRecord, WarningCollector, type ImageRef, type VlitRecord } from '@vlit/core';
import type { ImageAnnotations } from '../annotations.js';
import { cocoVocabulary } from './vocabulary/coco-categories.js';
import type {
  AnnotationSource,
  ImageFailureReason,
  LoadedImage,
  QualityContext,
  QualityCounts,
  QualityEvent,
  QualityFilter,
  QualityReject,
  QualityResult,
  QualityRun,
} from './types.js';

/** Name of the built-in first step that validates every input against the canonical record schema. */
export const SCHEMA_STEP = 'schema';

/** Path of an image reference. */
export function imageRefPath(ref: ImageRef): string {
  return typeof ref === 'string' ? ref : ref.path;
}

function normalisePath(p: string): string {
  return p.replace(/\\/g, '/').replace(/^(\.\/)+/, '');
}

/** Build the annotation lookup of a run: `metadata.imageId` first, then the first image's path against `file`. */
export function createAnnotationLookup(source: AnnotationSource | undefined): (record: VlitRecord) => ImageAnnotations | undefined {
  if (!source) return () => undefined;
  if (typeof source === 'function') return source;
  const byId = new Map<string, ImageAnnotations>();
  const byFile = new Map<string, ImageAnnotations>();
  const entries = source instanceof Map ? source.values() : (source as Iterable<ImageAnnotations>);
  for (const a of entries) {
    byId.set(a.imageId, a);
    byFile.set(normalisePath(a.file), a);
  }
  return (record) => {
    const id = record.metadata?.imageId;
    if ((typeof id === 'string' || typeof id === 'number') && byId.has(String(id))) return byId.get(String(id));
    const first = record.images[0];
    return first === undefined ? undefined : byFile.get(normalisePath(imageRefPath(first)));
  };
}

function failureReason(code: string | undefined, stage: 'load' | 'decode'): ImageFailureReason {
  if (code === 'VLIT_PATH_ESCAPE') return 'path-escape';
  if (code === 'VLIT_NOT_FOUND') return 'image-missing';
  if (stage === 'load' && code === 'VLIT_LIMIT_EXCEEDED') return 'image-too-large';
  // Loaders refuse FIFOs, devices and folders with InvalidArgumentError before reading a byte.
  if (stage === 'load' && code === 'VLIT_INVALID_ARGUMENT') return 'image-not-a-file';
  if (stage === 'decode') return 'image-undecodable';
  return 'image-unreadable';
}

function createRun(context: QualityContext, warnings: WarningCollector): QualityRun {
  const cacheSize = context.imageCacheSize ?? 32;
  const cache = new Map<string, Promise<LoadedImage>>();
  const lookup = createAnnotationLookup(context.annotations);
  const images = context.images;
  return {
    vocabulary: context.vocabulary ?? cocoVocabulary(),
    annotationsFor: lookup,
    hasImages: images !== undefined,
    warn: (w) => warnings.warn(w),
    image(ref, record) {
      if (!images) {
        throw new InvalidArgumentError('this filter needs images: pass context.images = { codec, load }', { details: { field: 'images' } });
      }
      const path = imageRefPath(ref);
      const hit = cache.get(path);
      if (hit) {
        cache.delete(path);
        cache.set(path, hit);
        return hit;
      }
      const loaded = (async (): Promise<LoadedImage> => {
        let bytes: Uint8Array;
        try {
          bytes = await images.load(path, record);
        } catch (err) {
          // One unreadable file (EACCES, a loader bug) becomes a reject, not the end of the batch.
          const code = isVlitError(err) ? err.code : undefined;
          return { ok: false, path, reason: failureReason(code, 'load'), message: err instanceof Error ? err.message : String(err), ...(code ? { code } : {}) };
        }
        try {
          const image = await images.codec.decode(bytes, { source: path, channels: 3 });
          return { ok: true, path, image, byteLength: bytes.byteLength };
        } catch (err) {
          const code = isVlitError(err) ? err.code : undefined;
          return {
            ok: false,
            path,
            reason: failureReason(code, 'decode'),
            message: err instanceof Error ? err.message : String(err),
            ...(code ? { code } : {}),
          };
        }
      })();
      cache.set(path, loaded);
      while (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
      return loaded;
    },
  };
}

function readableId(value: unknown, index: number): string {
  const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length > 0 ? id : `#${index}`;
}

/**
 * Run quality control as a stream: every input yields exactly one event, `kept` or `rejected`
 * (by the first filter that fails it). Inputs are first validated against the canonical record
 * schema (step `schema`, reason `invalid-schema`), so filters always see typed records.
 */
export async function* qualityControl(
  records: Iterable<unknown> | AsyncIterable<unknown>,
  filters: readonly QualityFilter[],
  context: QualityContext = {},
  warnings: WarningCollector = new WarningCollector(),
): AsyncGenerator<QualityEvent> {
  const names = new Set<string>();
  for (const f of filters) {
    if (names.has(f.name)) {
      throw new InvalidArgumentError(`two filters are named '${f.name}'; reject reports need unique names`, { details: { field: 'filters' } });
    }
    names.add(f.name);
  }
  const run = createRun(context, warnings);
  const checks = [];
  for (const f of filters) checks.push({ name: f.name, check: await f.start(run) });
  let index = 0;
  for await (const value of records as AsyncIterable<unknown>) {
    const i = index++;
    const parsed = safeParseVlitRecord(value);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((x) => ({ path: x.path.map(String).join('.') || '(root)', message: x.message }));
      yield {
        kind: 'rejected',
        index: i,
        reject: {
          id: readableId(value, i),
          index: i,
          filter: SCHEMA_STEP,
          reason: 'invalid-schema',
          message: `${issues[0].path}: ${issues[0].message}`,
          details: { field: issues[0].path, issues },
          record: value,
        },
      };
      continue;
    }
    const record = parsed.data;
    let rejected: QualityReject | undefined;
    for (const { name, check } of checks) {
      const verdict = await check.check(record, i);
      if (!verdict.ok) {
        rejected = { id: record.id, index: i, filter: name, reason: verdict.reason, message: verdict.message, record: value };
        if (verdict.details) rejected.details = verdict.details;
        break;
      }
    }
    if (rejected) {
      yield { kind: 'rejected', index: i, reject: rejected };
    } else {
      for (const { check } of checks) check.keep?.(record, i);
      yield { kind: 'kept', index: i, record };
    }
    context.onProgress?.({ stage: 'quality-control', done: index });
  }
}

/** Run quality control and collect kept records, rejects `{ id, filter, reason, details }` and counts (read = kept + rejected). */
export async function runQualityControl(
  records: Iterable<unknown> | AsyncIterable<unknown>,
  filters: readonly QualityFilter[],
  context: QualityContext = {},
): Promise<QualityResult> {
  const warnings = new WarningCollector();
  const kept: VlitRecord[] = [];
  const rejects: QualityReject[] = [];
  const counts: QualityCounts = { read: 0, kept: 0, rejected: 0, byFilter: {}, byReason: {} };
  for await (const event of qualityControl(records, filters, context, warnings)) {
    counts.read++;
    if (event.kind === 'kept') {
      kept.push(event.record);
      counts.kept++;
    } else {
      rejects.push(event.reject);
      counts.rejected++;
      counts.byFilter[event.reject.filter] = (counts.byFilter[event.reject.filter] ?? 0) + 1;
      counts.byReason[event.reject.reason] = (counts.byReason[event.reject.reason] ?? 0) + 1;
    }
  }
  return { kept, rejects, counts, warnings: warnings.warnings };
}
