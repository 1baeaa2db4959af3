/**
 * Tensor-name patterns shared by optimiser groups and recipes. A pattern is a glob over the whole
 * name (`*` any run of characters, dots included; `?` one character), or `re:<regex>` for a regular
 * expression that must match the whole name. Globs are the default because tensor names are full of
 * dots, which a bare regex would read as wildcards.
 */
import { InvalidArgumentError } from '@vlit/core';

/** A compiled name pattern. */
export interface NamePattern {
  /** The pattern as written. */
  readonly source: string;
  /** True when the whole name matches. */
  test(name: string): boolean;
}

/** Compile a glob (`*`, `?`) or `re:` pattern; an invalid regex is an InvalidArgumentError naming `field`. */
export function compileNamePattern(pattern: string, field = 'pattern'): NamePattern {
  if (typeof pattern !== 'string' || pattern.length === 0) {
    throw new InvalidArgumentError('a name pattern must be a non-empty string', { details: { field } });
  }
  let re: RegExp;
  if (pattern.startsWith('re:')) {
    try {
      re = new RegExp(`^(?:${pattern.slice(3)})$`);
    } catch (cause) {
      throw new InvalidArgumentError(`invalid regular expression in pattern '${pattern}'`, { cause, details: { field } });
    }
  } else {
    const body = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${body}$`);
  }
  return { source: pattern, test: (name) => re.test(name) };
}

/** True when `name` matches any of the patterns. */
export function matchesAny(name: string, patterns: readonly NamePattern[]): boolean {
  for (const p of patterns) if (p.test(name)) return true;
  return false;
}
