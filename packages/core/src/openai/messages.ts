import { InvalidArgumentError } from '../errors.js';
import { IMAGE_PLACEHOLDER, type ChatMessage } from '../schemas/record.js';
import type { ImageCodec, ImageFormat, RawImage } from '../contracts/image-codec.js';
import type { ChatCompletionsContentPart, ChatCompletionsMessage } from './wire.js';

/** Options of toChatCompletionsMessages. */
export interface ToChatCompletionsMessagesOptions {
  /** Encodes the images (e.g. `runtime.images`); needed only when a message refers to an image. */
  codec?: ImageCodec;
  /** Image encoding (default png: lossless, so the server sees the same pixels). */
  format?: ImageFormat;
}

const MIME: Record<ImageFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/**
 * Vlit chat messages (`<image>` markers or image parts, consumed in order) as chat-completions
 * messages with data-URL images. The number of references must equal `images.length`.
 */
export async function toChatCompletionsMessages(
  messages: readonly ChatMessage[],
  images: readonly RawImage[],
  options: ToChatCompletionsMessagesOptions = {},
): Promise<ChatCompletionsMessage[]> {
  const format = options.format ?? 'png';
  let next = 0;
  const imagePart = async (): Promise<ChatCompletionsContentPart> => {
    const image = images[next++];
    if (!image) throw new InvalidArgumentError(`the messages refer to image ${next} but ${images.length} are given`, { details: { field: 'images' } });
    if (!options.codec) throw new InvalidArgumentError('sending images needs an image codec (e.g. runtime.images)', { details: { field: 'images' } });
    const bytes = await options.codec.encode(image, format);
    return { type: 'image_url', image_url: { url: `data:${MIME[format]};base64,${bytesToBase64(bytes)}` } };
  };
  const out: ChatCompletionsMessage[] = [];
  for (const m of messages) {
    const parts: ChatCompletionsContentPart[] = [];
    if (typeof m.content === 'string') {
      const pieces = m.content.split(IMAGE_PLACEHOLDER);
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0) parts.push(await imagePart());
        // Text is kept byte for byte (newlines included): the server must see the same prompt.
        if (pieces[i]) parts.push({ type: 'text', text: pieces[i] });
      }
    } else {
      for (const p of m.content) parts.push(p.type === 'image' ? await imagePart() : { type: 'text', text: p.text });
    }
    const textOnly = parts.every((p) => p.type === 'text');
    out.push({ role: m.role, content: textOnly ? parts.map((p) => (p as { text: string }).text).join('') : parts });
  }
  if (next !== images.length) {
    throw new InvalidArgumentError(`${images.length} images given but the messages refer to ${next}`, { details: { field: 'images' } });
  }
  return out;
}
