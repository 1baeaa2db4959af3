/**
 * Which modules a LoRA config targets, by PEFT's rules (peft 0.21 `check_target_module_exists`): a
 * list of names matches a module whose full name equals an entry or ends with `.` + the entry; a
 * single string is a regular expression that must match the whole module name.
 */
import { InvalidArgumentError } from '@vlit/core';

/** `target_modules` as PEFT accepts it. */
export type PeftTargetModules = readonly string[] | string;

/** True when PEFT would wrap the module `moduleName` for `targets`. */
export function peftTargetMatches(moduleName: string, targets: PeftTargetModules): boolean {
  if (typeof targets === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targets})$`);
    } catch (cause) {
      throw new InvalidArgumentError(`target_modules '${targets}' is not a valid regular expression`, { cause, details: { field: 'target_modules' } });
    }
    return re.test(moduleName);
  }
  return targets.some((t) => moduleName === t || moduleName.endsWith(`.${t}`));
}

/** The entry of a rank/alpha pattern that applies to a module (peft's `get_pattern_key`), or undefined. */
export function peftPatternKey(patternKeys: readonly string[], moduleName: string): string | undefined {
  for (const key of patternKeys) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:.*\\.)?(?:${key})$`);
    } catch {
      continue;
    }
    if (re.test(moduleName)) return key;
  }
  return undefined;
}
