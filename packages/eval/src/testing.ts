/**
 * `@vlit/eval/testing`: mock vision-language models for testing your own evaluation code, as the
 * package's own tests use them. Each implements core's VisionLanguageModel contract with behaviour chosen
 * so that the right score is known in advance (an oracle that knows every answer, a model that always
 * picks the first option, a model whose answer depends on the image's pixels), plus seeded test images.
 * @packageDocumentation
 */
import {
  createRng,
  type CandidateScore,
  type ChatMessage,
  type GenerationOptions,
  type GenerationResult,
  type RawImage,
  type VisionLanguageModel,
  type VisionLanguageRequest,
} from '@vlit/core';

/** The text of a request's last user message. */
export function promptText(messages: readonly ChatMessage[]): string {
  const m = [...messages].reverse().find((x) => x.role === 'user');
  if (!m) return '';
  return typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '<image>')).join('');
}

/** Options listed in a prompt as "A. text" lines. */
export function listedOptions(prompt: string): string[] {
  return [...prompt.matchAll(/^([A-Z])\. (.*)$/gm)].map((m) => m[2]);
}

function result(text: string): GenerationResult {
  return { text, tokenIds: [], finishReason: 'stop', usage: { promptTokens: 0, completionTokens: text.split(' ').length } };
}

/** A model that knows the correct option text of every question and prefers it, by likelihood and in generation. */
export function createOracleModel(key: ReadonlyMap<string, string>, id = 'oracle'): VisionLanguageModel & { calls: number } {
  const styles = [(l: string) => l, (l: string) => `The answer is (${l}).`, (l: string, t: string) => `${l}. ${t}`, (_l: string, t: string) => `It is ${t}.`];
  let n = 0;
  const known = (prompt: string) => {
    for (const [q, a] of key) if (prompt.includes(q)) return a;
    return undefined;
  };
  return {
    id,
    get calls() {
      return n;
    },
    async generate(request) {
      n++;
      const prompt = promptText(request.messages);
      const options = listedOptions(prompt);
      const answer = known(prompt);
      const i = answer === undefined ? 0 : options.indexOf(answer);
      const style = styles[prompt.length % styles.length];
      return result(style(String.fromCharCode(65 + i), options[i] ?? ''));
    },
    async score(request, candidates) {
      n++;
      const answer = known(promptText(request.messages));
      // Per-token log-probability -0.5 for the known answer, -2 for the others; longer wrong options
      // get a larger raw sum, so 'sum' and 'mean' must both still pick the answer.
      return candidates.map((c) => {
        const tokens = c.split(/\s+/).length;
        return { logLikelihood: (c === answer ? -0.5 : -2) * tokens, tokens };
      });
    },
  };
}

/** A model that always answers with the first listed option ("A"). */
export function createFirstPositionModel(): VisionLanguageModel {
  return {
    id: 'always-a',
    async generate() {
      return result('A');
    },
    async score(_r, candidates) {
      return candidates.map((_c, i) => ({ logLikelihood: i === 0 ? -1 : -3, tokens: 1 }));
    },
  };
}

/** A deterministic test image (8x8 RGB) whose pixels come from a seed. */
export function makeImage(seed: number | string, width = 8, height = 8): RawImage {
  const rng = createRng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(0, 256);
  return { width, height, channels: 3, data };
}

/** A number summarising an image's pixels (sensitive to any pixel change). */
export function imageSignature(images: readonly RawImage[] | undefined): number {
  let h = 2166136261;
  for (const img of images ?? []) for (const v of img.data) h = Math.imul(h ^ v, 16777619) >>> 0;
  return h;
}

const VQA_ANSWERS = ['two', '2', 'Yes.', 'red', "it's", 'a dog', 'dont', 'black and white'];
const CAPTION_WORDS = ['a', 'man', 'dog', 'riding', 'on', 'the', 'street', 'red', 'bus', 'near', 'park', 'two', 'cats'];

/**
 * A model whose replies depend on the image pixels, the prompt and the decoding settings: used to
 * check that the remote path (PNG round trip, HTTP, retries) gives exactly the local replies, and
 * that a seeded sampling setting is reproduced from a manifest.
 */
export function createPixelModel(id = 'pixel-model'): VisionLanguageModel & { calls: number } {
  let n = 0;
  return {
    id,
    get calls() {
      return n;
    },
    async generate(request: VisionLanguageRequest, options: GenerationOptions = {}) {
      n++;
      const prompt = promptText(request.messages);
      let sig = imageSignature(request.images);
      for (let i = 0; i < prompt.length; i++) sig = Math.imul(sig ^ prompt.charCodeAt(i), 16777619) >>> 0;
      // Sampling: with temperature > 0 the reply depends on the seed (as a real sampler would).
      if ((options.temperature ?? 0) > 0) sig = (sig ^ createRng(`${options.seed ?? 'unseeded'}:${sig}`).nextUint32()) >>> 0;
      const options4 = listedOptions(prompt);
      if (options4.length)
        return result(sig % 3 === 0 ? `The answer is ${String.fromCharCode(65 + (sig % options4.length))}.` : options4[sig % options4.length]);
      if (/caption/i.test(prompt)) {
        const len = 5 + (sig % 5);
        return result(Array.from({ length: len }, (_, i) => CAPTION_WORDS[(sig >>> i) % CAPTION_WORDS.length]).join(' ') + '.');
      }
      if (/^Is there an? /m.test(prompt)) return result(sig % 2 ? 'Yes, there is.' : 'No, there is not.');
      return result(VQA_ANSWERS[sig % VQA_ANSWERS.length]);
    },
    async score(request: VisionLanguageRequest, candidates: readonly string[]): Promise<CandidateScore[]> {
      n++;
      const sig = imageSignature(request.images);
      return candidates.map((c, i) => ({ logLikelihood: -(((sig >>> i) % 97) + c.length) / 10, tokens: c.split(' ').length }));
    },
  };
}
