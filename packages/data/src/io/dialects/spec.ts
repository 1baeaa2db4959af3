import type { RecordDialect } from '../codec.js';
import type { ShareGptOptions } from './sharegpt.js';

/**
 * How to build a built-in dialect again from data alone: its kind, its columns and tags, its name.
 * Another thread (the parallel `convertFile`) rebuilds a dialect from this; a dialect built with code
 * (custom `RecordDialect`s, image-id functions) has none and is converted on the calling thread.
 */
export interface DialectSpec {
  kind: 'vlit' | 'llava' | 'openai' | 'sharegpt' | 'alpaca' | 'mimicit' | 'review';
  options?: ShareGptOptions;
  name?: string;
}

const specs = new WeakMap<RecordDialect, DialectSpec>();

/** Remember how `dialect` was built (a copy of `spec`, so later changes to the options do not leak in); returns the dialect. */
export function registerDialectSpec<D extends RecordDialect>(dialect: D, spec: DialectSpec): D {
  let copy: DialectSpec;
  try {
    copy = structuredClone(spec);
  } catch {
    return dialect; // options that cannot be copied: the dialect converts on the calling thread
  }
  specs.set(dialect, copy);
  return dialect;
}

/** How `dialect` was built, when it is a built-in one built from data alone. */
export function dialectSpec(dialect: RecordDialect): DialectSpec | undefined {
  return specs.get(dialect);
}
