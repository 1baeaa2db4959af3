import { formatBox } from '@vlit/templates';
import type { ImageAnnotations } from '../annotations.js';
import { cocoBoxToXyxy } from '../adapt/geometry.js';
import type { ChatCompletionsRequest } from '@vlit/core/openai';

/** One message of a Self-Instruct prompt (text only; sent as a chat-completions message). */
export interface ChatCompletionMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Sampling parameters sent with each request: any chat-completions field but `model`, `messages` and `stream`. */
export type ChatCompletionParams = Omit<ChatCompletionsRequest, 'model' | 'messages' | 'stream'>;

/** The conversation types Self-Instruct generation asks an LLM for (LLaVA's three). */
export const SELF_INSTRUCT_TYPES = ['dialogue', 'detailed-description', 'complex-reasoning'] as const;
export type SelfInstructType = (typeof SELF_INSTRUCT_TYPES)[number];

const ROLE = [
  'You are an AI visual assistant looking at a single image.',
  'You do not see the image itself: you receive what annotators wrote about it, namely several captions,',
  'and a list of objects, each with its category, any known attributes and its bounding box as',
  '[x1, y1, x2, y2] normalised to 0..1 from the top-left corner.',
  'Answer as if you were looking at the image: never mention captions, annotations, coordinates or boxes.',
].join(' ');

const TASKS: Record<SelfInstructType, string> = {
  dialogue: [
    'Write a conversation between a person asking about this image and you answering.',
    'Ask varied questions: object types, counts, actions, locations and relative positions of objects.',
    'Only ask questions the information answers with confidence; for an object that is not there, say clearly that it is not.',
    'Write 3 to 5 exchanges. Put every turn on its own line, starting with "User:" or "Assistant:", user first, assistant last.',
  ].join(' '),
  'detailed-description': [
    'Write a detailed description of the image in one or two paragraphs: the scene, the objects, their',
    'attributes, counts and where they are relative to each other. Do not invent objects.',
    'Reply with the description only.',
  ].join(' '),
  'complex-reasoning': [
    'Write one question about the image that needs reasoning beyond describing it (the purpose of objects,',
    'what happened before or may happen next, background knowledge), and a detailed answer that reasons',
    'step by step from what is in the image. Format: a line starting with "User:" holding the question,',
    'then a line starting with "Assistant:" holding the answer.',
  ].join(' '),
};

/** The image's annotations as the text an LLM sees: captions, then objects with normalised boxes. */
export function describeAnnotations(image: ImageAnnotations): string {
  const lines: string[] = [];
  if (image.captions.length) {
    lines.push('Captions:');
    for (const c of image.captions) lines.push(`- ${c.trim()}`);
  }
  if (image.objects.length) {
    if (lines.length) lines.push('');
    lines.push('Objects:');
    for (const o of image.objects) {
      const box = formatBox({ box: cocoBoxToXyxy(o.bbox, image.width, image.height), width: image.width, height: image.height }, 'xyxy-norm1');
      const attributes = o.attributes?.length ? ` (${o.attributes.join(', ')})` : '';
      lines.push(`- ${o.category.trim()}${attributes}: ${box}`);
    }
  }
  if (image.regions.length) {
    lines.push('', 'Regions:');
    for (const r of image.regions) {
      const box = formatBox({ box: cocoBoxToXyxy(r.bbox, image.width, image.height), width: image.width, height: image.height }, 'xyxy-norm1');
      lines.push(`- ${r.description.trim()}: ${box}`);
    }
  }
  if (image.ocr.length) lines.push('', `Text visible in the image: ${image.ocr.map((o) => JSON.stringify(o.text)).join(', ')}`);
  return lines.join('\n');
}

/** The chat messages asking an LLM for one conversation of `type` about `image`. */
export function buildSelfInstructMessages(image: ImageAnnotations, type: SelfInstructType, options: { systemPrompt?: string } = {}): ChatCompletionMessage[] {
  return [
    { role: 'system', content: `${options.systemPrompt ?? ROLE}\n\n${TASKS[type]}` },
    { role: 'user', content: describeAnnotations(image) },
  ];
}
