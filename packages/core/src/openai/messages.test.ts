import { describe, expect, it } from 'vitest';
import type { ImageCodec, RawImage } from '../contracts/image-codec.js';
import { toChatCompletionsMessages } from './messages.js';

// A codec whose "encoding" is the raw pixels behind a one-byte format tag, so the data URL can be
// checked by decoding the base64 by hand.
const codec: ImageCodec = {
  name: 'raw-pixels',
  decode: async () => {
    throw new Error('not used');
  },
  encode: async (image, format) => new Uint8Array([format.length, ...image.data]),
};
const img = (v: number): RawImage => ({ width: 1, height: 1, channels: 3, data: new Uint8Array([v, v + 1, v + 2]) });
const pixels = (url: string) => Array.from(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));

describe('toChatCompletionsMessages', () => {
  it('turns <image> markers and image parts into data-URL parts in order, keeping text byte for byte', async () => {
    const out = await toChatCompletionsMessages(
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: '<image>\nWhat is this?\n' },
        { role: 'assistant', content: 'A cat.' },
        { role: 'user', content: [{ type: 'text', text: 'And ' }, { type: 'image' }, { type: 'text', text: ' this?' }] },
      ],
      [img(10), img(200)],
      { codec, format: 'jpeg' },
    );
    expect(out[0]).toEqual({ role: 'system', content: 'Be brief.' });
    expect(out[2]).toEqual({ role: 'assistant', content: 'A cat.' });
    const first = out[1].content as Array<{ type: string; text?: string; image_url?: { url: string } }>;
    expect(first.map((p) => p.type)).toEqual(['image_url', 'text']);
    expect(first[1].text).toBe('\nWhat is this?\n');
    expect(first[0].image_url!.url.startsWith('data:image/jpeg;base64,')).toBe(true);
    expect(pixels(first[0].image_url!.url)).toEqual([4, 10, 11, 12]);
    const second = out[3].content as Array<{ type: string; text?: string; image_url?: { url: string } }>;
    expect(second.map((p) => p.text ?? 'IMG')).toEqual(['And ', 'IMG', ' this?']);
    expect(pixels(second[1].image_url!.url)).toEqual([4, 200, 201, 202]);
  });

  it('refuses a count mismatch or images without a codec, with typed errors', async () => {
    await expect(toChatCompletionsMessages([{ role: 'user', content: '<image><image>' }], [img(1)], { codec })).rejects.toMatchObject({
      code: 'VLIT_INVALID_ARGUMENT',
    });
    await expect(toChatCompletionsMessages([{ role: 'user', content: 'no image' }], [img(1)], { codec })).rejects.toMatchObject({
      code: 'VLIT_INVALID_ARGUMENT',
    });
    await expect(toChatCompletionsMessages([{ role: 'user', content: '<image>' }], [img(1)])).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    expect(await toChatCompletionsMessages([{ role: 'user', content: 'text only' }], [])).toEqual([{ role: 'user', content: 'text only' }]);
  });
});
