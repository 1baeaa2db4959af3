// Multiple-choice benchmark files: SEED-Bench JSON and MMBench TSV, read into one item shape.

import { FormatError } from '@vlit/core';
import { z } from 'zod';
import { base64ToBytes } from '../sha256.js';

/** An image reference inside a benchmark: a path (resolved by the image loader) or inline bytes. */
export type BenchmarkImage = string | { name: string; bytes: Uint8Array };

/** Schema of a benchmark image reference. */
export const benchmarkImageSchema = z.union([
  z.string().min(1),
  z.object({ name: z.string(), bytes: z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected a Uint8Array') }),
]);

/** One multiple-choice question. */
export const multipleChoiceItemSchema = z.object({
  id: z.string().min(1),
  question: z.string(),
  /** Context shown before the question (MMBench's hint). */
  hint: z.string().optional(),
  options: z.array(z.string()).min(2).max(26),
  /** 0-based index of the correct option. */
  answer: z.number().int().nonnegative(),
  /** Dimension / category code, e.g. `SU` for SEED-Bench's Scene Understanding. */
  dimension: z.string().optional(),
  images: z.array(benchmarkImageSchema).default([]),
});
export type MultipleChoiceItem = z.infer<typeof multipleChoiceItemSchema>;

/** SEED-Bench-1 image dimensions in the review's column order, with SEED-Bench's question_type_id. */
export const SEED_DIMENSIONS: ReadonlyArray<{ code: string; name: string; id: number; aliases: readonly string[] }> = [
  { code: 'SU', name: 'Scene Understanding', id: 1, aliases: [] },
  { code: 'II', name: 'Instance Identity', id: 2, aliases: [] },
  { code: 'IA', name: 'Instance Attributes', id: 3, aliases: ['Instance Attribute'] },
  { code: 'IL', name: 'Instance Location', id: 4, aliases: [] },
  { code: 'IC', name: 'Instance Counting', id: 5, aliases: ['Instances Counting'] },
  { code: 'SR', name: 'Spatial Relation', id: 6, aliases: ['Spatial Relations'] },
  { code: 'IIR', name: 'Instance Interaction', id: 7, aliases: [] },
  { code: 'VR', name: 'Visual Reasoning', id: 8, aliases: [] },
  { code: 'TR', name: 'Text Recognition', id: 9, aliases: ['Text Understanding'] },
];

/** The dimension code for a SEED-Bench dimension name (case-insensitive, aliases accepted), or undefined. */
export function seedDimensionCode(name: string): string | undefined {
  const n = name.trim().toLowerCase();
  return SEED_DIMENSIONS.find((d) => d.code.toLowerCase() === n || d.name.toLowerCase() === n || d.aliases.some((a) => a.toLowerCase() === n))?.code;
}

/** An input record that was not turned into an item, and why. */
export interface SkippedRecord {
  record: string | number;
  reason: string;
}

/** Items read from a benchmark file; read = items + skipped. */
export interface MultipleChoiceFile {
  items: MultipleChoiceItem[];
  skipped: SkippedRecord[];
  read: number;
}

const seedQuestionSchema = z.object({
  question_id: z.union([z.string(), z.number()]),
  question: z.string(),
  choice_a: z.string(),
  choice_b: z.string(),
  choice_c: z.string(),
  choice_d: z.string(),
  answer: z.string(),
  question_type_id: z.number().int(),
  data_id: z.string(),
  data_type: z.string().optional(),
});

/**
 * Read SEED-Bench JSON (`{ questions: [...], question_type: { name: id } }`). Image questions become
 * items whose image is `data_id` (a path for the image loader); video questions and malformed ones
 * are listed in `skipped` with the reason. Dimensions are mapped by the file's own `question_type`
 * table (SEED-Bench's README and JSON disagree on ids 3/4), falling back to SEED-Bench-1's ids.
 */
export function parseSeedBench(json: unknown, options: { file?: string } = {}): MultipleChoiceFile {
  const top = z.object({ questions: z.array(z.unknown()), question_type: z.record(z.string(), z.number()).optional() }).safeParse(json);
  if (!top.success) throw new FormatError('not a SEED-Bench file: expected { questions: [...] }', { cause: top.error, details: { file: options.file } });
  const idToCode = new Map<number, string>();
  for (const d of SEED_DIMENSIONS) idToCode.set(d.id, d.code);
  if (top.data.question_type) {
    idToCode.clear();
    for (const [name, id] of Object.entries(top.data.question_type)) idToCode.set(id, seedDimensionCode(name) ?? name);
  }
  const items: MultipleChoiceItem[] = [];
  const skipped: SkippedRecord[] = [];
  top.data.questions.forEach((raw, index) => {
    const q = seedQuestionSchema.safeParse(raw);
    if (!q.success) {
      skipped.push({ record: index, reason: `invalid question: ${q.error.issues[0]?.path.join('.')} ${q.error.issues[0]?.message}` });
      return;
    }
    const r = q.data;
    const id = String(r.question_id);
    if (r.data_type !== undefined && r.data_type !== 'image') {
      skipped.push({ record: id, reason: `data_type ${r.data_type} (only image questions are evaluated)` });
      return;
    }
    const answer = 'ABCD'.indexOf(r.answer.trim().toUpperCase());
    if (answer < 0 || r.answer.trim().length !== 1) {
      skipped.push({ record: id, reason: `answer ${JSON.stringify(r.answer)} is not A-D` });
      return;
    }
    items.push({
      id,
      question: r.question,
      options: [r.choice_a, r.choice_b, r.choice_c, r.choice_d],
      answer,
      dimension: idToCode.get(r.question_type_id) ?? String(r.question_type_id),
      images: [r.data_id],
    });
  });
  return { items, skipped, read: top.data.questions.length };
}

/** Split tab-separated text with pandas-style quoting (quoted fields may hold tabs, newlines and doubled quotes). */
export function parseTsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  while (i < src.length) {
    const c = src[i];
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === '\t') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
    i++;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

/**
 * Read an MMBench-style TSV (columns index, question, hint, A, B, C, D[, E...], answer, category,
 * image as base64). Options are the non-empty letter columns in order (pandas writes missing ones
 * as empty or `nan`); the category becomes the dimension; images become inline bytes.
 */
export function parseMmbenchTsv(text: string, options: { file?: string } = {}): MultipleChoiceFile {
  const rows = parseTsv(text);
  if (rows.length === 0) throw new FormatError('empty TSV', { details: { file: options.file } });
  const header = rows[0].map((h) => h.trim());
  const col = (name: string) => header.indexOf(name);
  for (const required of ['index', 'question', 'answer', 'A', 'B']) {
    if (col(required) < 0) throw new FormatError(`MMBench TSV lacks the ${required} column`, { details: { file: options.file, field: required } });
  }
  const letters = header.filter((h) => /^[A-Z]$/.test(h));
  const items: MultipleChoiceItem[] = [];
  const skipped: SkippedRecord[] = [];
  const missing = (v: string | undefined) => v === undefined || v.trim() === '' || v.trim().toLowerCase() === 'nan';
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r];
    const get = (name: string) => (col(name) >= 0 ? row[col(name)] : undefined);
    const id = get('index') ?? String(r);
    const presentLetters = letters.filter((l) => !missing(get(l)));
    const opts = presentLetters.map((l) => (get(l) ?? '').trim());
    const answer = presentLetters.indexOf((get('answer') ?? '').trim().toUpperCase());
    if (opts.length < 2) {
      skipped.push({ record: id, reason: 'fewer than two options' });
      continue;
    }
    if (answer < 0) {
      skipped.push({ record: id, reason: `answer ${JSON.stringify(get('answer'))} is not one of the options` });
      continue;
    }
    const image = get('image');
    let images: BenchmarkImage[] = [];
    if (!missing(image)) {
      try {
        images = [{ name: `${options.file ?? 'mmbench'}#${id}`, bytes: base64ToBytes(image as string) }];
      } catch (e) {
        skipped.push({ record: id, reason: `image is not base64: ${(e as Error).message}` });
        continue;
      }
    }
    const hint = get('hint');
    items.push({
      id,
      question: (get('question') ?? '').trim(),
      ...(missing(hint) ? {} : { hint: (hint as string).trim() }),
      options: opts,
      answer,
      ...(missing(get('category')) ? {} : { dimension: (get('category') as string).trim() }),
      images,
    });
  }
  return { items, skipped, read: rows.length - 1 };
}
