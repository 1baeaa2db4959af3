/** The tasks annotation adaption produces, the instruction family each samples from, and the default mix. */
/** The record kinds annotation adaption produces; each record's `task` is one of these. */
export const ADAPT_TASKS = ['caption', 'vqa', 'counting', 'existence', 'negative', 'location', 'region', 'spatial', 'ocr', 'dialogue'] as const;
export type AdaptTask = (typeof ADAPT_TASKS)[number];

/** The instruction family of @vlit/templates each task samples its phrasings from. */
export const ADAPT_TASK_FAMILIES: Readonly<Record<AdaptTask, string>> = {
  caption: 'caption-brief',
  vqa: 'vqa-open',
  counting: 'counting',
  existence: 'yes-no',
  negative: 'yes-no',
  location: 'region-location',
  region: 'region-description',
  spatial: 'spatial-relation',
  ocr: 'ocr',
  dialogue: 'dialogue',
};

/** Records per image per task when no `tasks` mix is given. */
export const DEFAULT_TASK_MIX: Readonly<Record<AdaptTask, number>> = {
  caption: 1,
  vqa: 2,
  counting: 1,
  existence: 1,
  negative: 1,
  location: 1,
  region: 1,
  spatial: 1,
  ocr: 1,
  dialogue: 1,
};
