import { IMAGE_PLACEHOLDER, type ChatMessage } from '@vlit/core';

/** Text of a message with every image (part or `<image>` marker) replaced by `imageText`. */
export function messageText(message: ChatMessage, imageText: string): string {
  if (typeof message.content === 'string') {
    return imageText === IMAGE_PLACEHOLDER ? message.content : message.content.split(IMAGE_PLACEHOLDER).join(imageText);
  }
  let out = '';
  for (const part of message.content) out += part.type === 'image' ? imageText : part.text;
  return out;
}
