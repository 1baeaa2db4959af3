/**
 * JSON Lines files read whole for commands that need every record at once (quality control, reports,
 * template linting), built on `streamJsonLines`: a line that is not JSON becomes a reject with its line
 * number instead of a bare SyntaxError, and annotation files are validated line by line.
 */
import { ValidationError } from '@vlit/core';
import { imageAnnotationsSchema, type ImageAnnotations } from '../annotations.js';
import { streamJsonLines } from './json-stream.js';
import { fileSource } from './node.js';

/** Largest JSON Lines file read whole: past V8's string limits such a read would crash untyped. */
export const MAX_JSON_LINES_FILE_BYTES = 512 * 1024 * 1024;

/** A line of a JSON Lines file that is not JSON. */
export interface JsonLineReject {
  /** 1-based line number. */
  line: number;
  /** The line's text. */
  text: string;
  /** Why it is not JSON. */
  message: string;
}

/** Values of a JSON Lines file with their line numbers, and the lines that are not JSON. */
export interface JsonLinesFile {
  values: unknown[];
  /** 1-based line number of each value. */
  lines: number[];
  rejects: JsonLineReject[];
}

/** Options of readJsonLinesFile. */
export interface ReadJsonLinesFileOptions {
  /** Refuse larger files (LimitExceededError). Default MAX_JSON_LINES_FILE_BYTES. */
  maxBytes?: number;
  /** Called with the bytes read so far (for a progress bar). */
  onBytes?: (bytesRead: number) => void;
}

/**
 * Read a JSON Lines file (a regular file only: a FIFO or folder is a typed error naming it): its values
 * with their line numbers, and the lines that are not JSON as rejects.
 */
export async function readJsonLinesFile(file: string, options: ReadJsonLinesFileOptions = {}): Promise<JsonLinesFile> {
  const values: unknown[] = [];
  const lines: number[] = [];
  const rejects: JsonLineReject[] = [];
  const source = fileSource(file, { maxBytes: options.maxBytes ?? MAX_JSON_LINES_FILE_BYTES, onBytes: options.onBytes });
  for await (const item of streamJsonLines(source, { file })) {
    if (item.kind === 'value') {
      values.push(item.value);
      lines.push(item.line);
    } else {
      rejects.push({ line: item.line, text: item.text, message: item.error.message });
    }
  }
  return { values, lines, rejects };
}

/**
 * Read an annotations JSON Lines file (one `ImageAnnotations` per line); the first line that is not JSON
 * or not valid annotations is a ValidationError naming the file, line and field.
 */
export async function readImageAnnotationsJsonl(file: string): Promise<ImageAnnotations[]> {
  const { values, lines, rejects } = await readJsonLinesFile(file);
  if (rejects.length)
    throw new ValidationError(`annotations line ${rejects[0].line} is not JSON: ${rejects[0].message}`, { details: { file, record: rejects[0].line } });
  return values.map((v, i) => {
    const parsed = imageAnnotationsSchema.safeParse(v);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.map(String).join('.') || '(root)';
      throw new ValidationError(`annotations line ${lines[i]}: ${issue.message}`, { details: { file, record: lines[i], field } });
    }
    return parsed.data as ImageAnnotations;
  });
}
