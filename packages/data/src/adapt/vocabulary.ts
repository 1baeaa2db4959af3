// Internal to adaption (not re-exported): English helpers for filling instruction slots. The category
// list and its synonyms come from quality control's vocabulary, so both sides agree on what counts as a mention.
// Words whose plural is not the regular suffix; keyed by the last word of a category name.
const IRREGULAR_PLURALS: Record<string, string> = {
  person: 'people',
  man: 'men',
  woman: 'women',
  child: 'children',
  mouse: 'mice',
  sheep: 'sheep',
  skis: 'skis',
  scissors: 'scissors',
  knife: 'knives',
  broccoli: 'broccoli',
  fish: 'fish',
  deer: 'deer',
  tv: 'tvs',
  goose: 'geese',
  foot: 'feet',
  tooth: 'teeth',
  leaf: 'leaves',
  shelf: 'shelves',
};

/** English plural of a category name (`dog` -> `dogs`, `wine glass` -> `wine glasses`, `person` -> `people`). */
export function pluralize(name: string): string {
  const trimmed = name.trim();
  const space = trimmed.lastIndexOf(' ');
  const head = trimmed.slice(0, space + 1);
  const last = trimmed.slice(space + 1);
  const lower = last.toLowerCase();
  if (IRREGULAR_PLURALS[lower] !== undefined) return head + IRREGULAR_PLURALS[lower];
  if (/(s|x|z|ch|sh)$/i.test(last)) return `${head}${last}es`;
  if (/[^aeiou]y$/i.test(last)) return `${head}${last.slice(0, -1)}ies`;
  return `${head}${last}s`;
}

/** The indefinite article for a word (`an apple`, `a dog`), by its first letter. */
export function indefiniteArticle(word: string): 'a' | 'an' {
  return /^[aeiou]/i.test(word.trim()) ? 'an' : 'a';
}

/** Lower-cased singular and plural forms of a category, for matching it in free text. */
export function categoryForms(name: string): string[] {
  const lower = name.trim().toLowerCase();
  return [...new Set([lower, pluralize(lower)])];
}

const mentionPatterns = new Map<string, RegExp>();

/** True when lower-case `text` contains the lower-case `form` as whole words. */
export function mentionsForm(text: string, form: string): boolean {
  let pattern = mentionPatterns.get(form);
  if (!pattern) {
    const escaped = form.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '\\s+');
    pattern = new RegExp(`(^|[^a-z0-9])${escaped}([^a-z0-9]|$)`);
    // Bounded: a vocabulary has hundreds of forms, not millions.
    if (mentionPatterns.size < 10_000) mentionPatterns.set(form, pattern);
  }
  return pattern.test(text);
}

/** True when `text` mentions the category (singular or plural) as whole words. */
export function mentionsCategory(text: string, name: string): boolean {
  const lower = text.toLowerCase();
  return categoryForms(name).some((form) => mentionsForm(lower, form));
}
