import { IMAGE_PLACEHOLDER, type ChatMessage } from '@vlit/core';

/** How a dialect that names images by id maps ids to paths under the dataset root and back. */
export interface ImageIdOptions {
  /** Path of an image id relative to the dataset root (default `${id}.jpg`). */
  imagePath?: (id: string) => string;
  /** Image id of a path (default: the file name without its extension). */
  imageId?: (path: string) => string;
}

/** Default id -> path mapping. */
export function defaultImagePath(id: string): string {
  return `${id}.jpg`;
}

/** Default path -> id mapping. */
export function defaultImageId(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

function markerCount(messages: ChatMessage[]): number {
  let n = 0;
  for (const m of messages) {
    if (typeof m.content === 'string') n += m.content.split(IMAGE_PLACEHOLDER).length - 1;
    else n += m.content.filter((p) => p.type === 'image').length;
  }
  return n;
}

/**
 * Dialects that list images beside the text without `<image>` markers get one `<image>\n` per image
 * in front of the first user turn, as LLaVA places them. Text that already has markers is kept.
 */
export function insertImageMarkers(messages: ChatMessage[], count: number): ChatMessage[] {
  if (count === 0 || markerCount(messages) !== 0) return messages;
  const at = messages.findIndex((m) => m.role === 'user' && typeof m.content === 'string');
  if (at === -1) return messages;
  const out = messages.slice();
  out[at] = { ...out[at], content: `${`${IMAGE_PLACEHOLDER}\n`.repeat(count)}${out[at].content as string}` };
  return out;
}

/** The inverse of insertImageMarkers for the first user turn's text, when all markers sit in that prefix. */
export function stripImageMarkers(messages: ChatMessage[], firstUserText: string, count: number): string {
  const prefix = `${IMAGE_PLACEHOLDER}\n`.repeat(count);
  if (count > 0 && markerCount(messages) === count && firstUserText.startsWith(prefix) && !firstUserText.slice(prefix.length).includes(IMAGE_PLACEHOLDER)) {
    return firstUserText.slice(prefix.length);
  }
  return firstUserText;
}
