// Test support (not exported): images and a deterministic "LLM" for generation tests.
import type { ImageAnnotationsInput } from '../annotations.js';

/** Image n shows n dogs; its first caption names "scene n" so replies can be traced to their image. */
export function sceneImages(count: number): ImageAnnotationsInput[] {
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    return {
      imageId: `img-${n}`,
      file: `images/${String(n).padStart(6, '0')}.jpg`,
      width: 640,
      height: 480,
      captions: [`Scene ${n}: ${n} dogs on the grass.`],
      objects: Array.from({ length: n % 4 }, (_, k) => ({ category: 'dog', bbox: [10 + 100 * k, 300, 50, 40] as [number, number, number, number] })),
    };
  });
}

/** What the scripted model answers: dialogue for scenes divisible by 7 is a refusal (a reject). */
export function sceneReply(request: { messages: Array<{ role: string; content: string }> }): string {
  const system = request.messages[0].content;
  const n = Number(/Scene (\d+)/.exec(request.messages[1].content)?.[1]);
  if (system.includes('Write a conversation')) {
    if (n % 7 === 0) return "I'm sorry, but I can't help with that.";
    return `Sure! Here it is.\nUser: How many dogs are there?\nAssistant: There are ${n} dogs in scene ${n}.\nUser: Where are they?\n**Assistant:** On the grass.`;
  }
  if (system.includes('detailed description')) return `The picture shows scene ${n}: ${n} dogs playing on green grass near a bench under a clear sky.`;
  return `Question: Why might the dogs in scene ${n} be outside?\nAnswer: It is sunny, and the open grass gives them room to run.`;
}

/** Scene number of a unit id `<dataset>:img-<n>:<type>:<k>`. */
export function sceneOf(id: string): number {
  return Number(/:img-(\d+):/.exec(id)?.[1]);
}
