/** Reading a training recipe file (JSON) for `vlit train` and `vlit export`. */
import { ValidationError, isVlitError } from '@vlit/core';
import { readUserFile } from '@vlit/core/node';
import { parseRecipe, type Recipe } from '@vlit/trainer';

/** A recipe JSON file, validated by trainer's recipe schema; errors name the file and field. */
export async function readRecipeFile(file: string): Promise<Recipe> {
  const text = (await readUserFile(file, { what: 'recipe file', maxBytes: 4 * 1024 * 1024 })).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`recipe ${file} is not JSON: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  try {
    return parseRecipe(raw);
  } catch (err) {
    if (isVlitError(err)) throw new ValidationError(`recipe ${file}: ${err.message}`, { cause: err, details: { file, field: err.details?.field } });
    throw err;
  }
}
