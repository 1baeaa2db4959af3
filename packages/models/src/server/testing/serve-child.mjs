// A `vlit serve`-like process for the server tests: a tiny composed model (ViT-32 + MLP + Llama-48,
// seeded weights) served on 127.0.0.1 from the built packages.
// Arguments: IMAGE_ROOT [API_KEY] [OPTIONS_JSON]. An empty or absent API_KEY passes `apiKey: undefined`,
// as `apiKey: process.env.VLIT_API_KEY` does when the variable is unset. OPTIONS_JSON holds server
// options plus `gated` (default true): a gated model waits, ignoring its abort signal, until a line
// "release" arrives on stdin, so a test can fill the queue deterministically (or keep a request in flight).
// Lines on stdin: "stats" prints the queue load, "gc" runs a full collection (with --expose-gc) and
// prints {gc:true}, "mem" prints process.memoryUsage(). Prints the bound address as one JSON line; access logs go to stderr as JSON lines.
import { createInterface } from 'node:readline';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createBuiltinTemplate, buildWordLevelTokenizer } from '@vlit/templates';
import { createVitEncoder } from '@vlit/encoders';
import { createConnector } from '@vlit/connectors';
import { composeVisionLanguageModel, createLlamaDecoder, tinyLlamaConfig } from '@vlit/models';
import { startOpenAIServer } from '@vlit/models/node';

const [imageRoot, apiKeyArg, optionsJson] = process.argv.slice(2);
const { gated: gatedOption, ...serverOptions } = optionsJson ? JSON.parse(optionsJson) : {};
const apiKey = apiKeyArg === '' ? undefined : apiKeyArg;
const runtime = createNodeRuntime({ session: { intraOpThreads: 1 } });
const tokenizer = buildWordLevelTokenizer({
  corpus: ['system user assistant', 'What is in the picture ? Describe the image .', 'A red square .', '\n'],
  specialTokens: ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|image_pad|>', '<|vision_end|>'],
  roles: { eos: '<|im_end|>' },
});
const eos = tokenizer.tokenToId('<|im_end|>');
const model = composeVisionLanguageModel({
  encoder: await createVitEncoder({ backend: runtime.backend, config: { imageSize: 32, patchSize: 8, hiddenSize: 32, numLayers: 2, numHeads: 4 }, seed: 1 }),
  connector: createConnector({ kind: 'mlp', inputDim: 32, hiddenDim: 48, outputDim: 48 }, { backend: runtime.backend, seed: 3 }),
  languageModel: await createLlamaDecoder({
    backend: runtime.backend,
    config: tinyLlamaConfig({ hiddenSize: 48, vocabSize: tokenizer.vocabSize, numAttentionHeads: 4, numKeyValueHeads: 2, eosTokenId: eos }),
    seed: 2,
  }),
  template: createBuiltinTemplate('chatml'),
  tokenizer,
  id: 'vlit-tiny',
});

let release;
const gate = new Promise((resolve) => (release = resolve));
let server;
createInterface({ input: process.stdin }).on('line', (line) => {
  const command = line.trim();
  if (command === 'release') release();
  if (command === 'stats') process.stdout.write(`${JSON.stringify({ stats: server.stats() })}\n`);
  if (command === 'mem') process.stdout.write(`${JSON.stringify({ mem: process.memoryUsage() })}\n`);
  if (command === 'gc') {
    globalThis.gc?.();
    process.stdout.write(`${JSON.stringify({ gc: typeof globalThis.gc === 'function' })}\n`);
  }
});
const gated = {
  id: model.id,
  async generate(request, options) {
    await gate;
    return model.generate(request, options);
  },
  score: (request, candidates) => model.score(request, candidates),
};

try {
  server = await startOpenAIServer({
    models: gatedOption === false ? model : gated,
    images: runtime.images,
    imageRoot,
    apiKey,
    concurrency: 1,
    maxQueue: 1,
    maxBodyBytes: 256 * 1024,
    onLog: (entry) => process.stderr.write(`${JSON.stringify(entry)}\n`),
    ...serverOptions,
  });
} catch (err) {
  // What `vlit serve` would print: the typed error's code and message, then a non-zero exit.
  process.stderr.write(`${JSON.stringify({ startError: { code: err?.code, message: err?.message, field: err?.details?.field } })}\n`);
  process.exit(2);
}
process.stdout.write(`${JSON.stringify({ url: server.url, host: server.host, pid: process.pid })}\n`);
process.on('SIGTERM', () => {
  server.close().then(() => process.exit(0));
});
