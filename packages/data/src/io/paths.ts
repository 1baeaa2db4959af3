import { PathEscapeError } from '@vlit/core';

const SIMPLE = /^[^\\/:\0.][^\\:\0]*$/;

/**
 * Pure (no file system) check that an image reference stays under its dataset root: refuses
 * absolute paths (POSIX, Windows drive or UNC), URLs, NUL bytes and `..` segments that climb out.
 * Symbolic links need the file system: `@vlit/data/node` resolves them with core's `resolveUnderRoot`.
 * Returns the normalised relative path (forward slashes, no `.` segments).
 */
export function checkRelativePath(reference: string, location: { file?: string; record?: string | number; field?: string } = {}): string {
  // fast path for the common already-clean relative path (no dot segments, separators or schemes)
  if (typeof reference === 'string' && SIMPLE.test(reference) && !reference.includes('/.') && !reference.includes('//') && !reference.endsWith('/'))
    return reference;
  const details = { ...location, path: reference };
  const refuse = (why: string): never => {
    throw new PathEscapeError(`image reference '${reference}' ${why}`, { details });
  };
  if (typeof reference !== 'string' || reference.length === 0) refuse('is empty');
  if (reference.includes('\0')) refuse('contains a NUL byte');
  if (reference.startsWith('/') || reference.startsWith('\\')) refuse('is absolute; a path relative to the dataset root is required');
  if (/^[A-Za-z]:/.test(reference)) refuse('is an absolute Windows path');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(reference)) refuse('is a URL, not a path under the dataset root');
  const out: string[] = [];
  for (const segment of reference.split(/[\\/]/)) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (out.length === 0) refuse('leaves the dataset root');
      out.pop();
    } else out.push(segment);
  }
  if (out.length === 0) refuse('names the dataset root itself, not a file');
  return out.join('/');
}
