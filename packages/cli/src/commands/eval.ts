/** `vlit eval`: a multiple-choice benchmark file against a model folder or an OpenAI-compatible endpoint. */
import { basename, dirname, extname, resolve } from 'node:path';
import { createMultipleChoiceBenchmark, evaluate, renderResultsTable, type MultipleChoiceMethod } from '@vlit/eval';
import { createFileImageLoader, loadMmbenchFile, loadSeedBenchFile, writeReports } from '@vlit/eval/node';
import { defineCommand, num, optionalNum, str } from '../define.js';
import { openEndpoint, openModelFolder } from '../model-source.js';
import { withProgress } from '../progress.js';
import { EXIT, positionals, printJson, required, UsageError } from '../shared.js';

export const evalCommand = defineCommand({
  name: 'eval',
  summary: 'evaluate a model folder or an OpenAI-compatible endpoint on a benchmark file; write the report',
  usage: 'eval BENCHMARK (--model DIR | --endpoint URL --model-name NAME) --out DIR [options]',
  description: `Run a multiple-choice benchmark — a SEED-Bench-format JSON file (such as the world benchmark
'vlit demo' writes) or an MMBench TSV (.tsv) — against a LLaVA checkpoint folder (--model: options ranked
by likelihood, SEED-Bench's method) or an OpenAI-compatible endpoint (--endpoint: the model answers with
a letter, generation). Images are read from --images (default: the benchmark file's folder), never from
outside it. DIR receives report.json, report.md and report.html; accuracy overall and per dimension is
printed. The endpoint's API key comes from the variable named by --api-key-env (default VLIT_API_KEY).`,
  flags: [
    { name: 'model', type: 'string', arg: 'DIR', description: 'a LLaVA checkpoint folder (config.json, model.safetensors, tokenizer)' },
    { name: 'endpoint', type: 'string', arg: 'URL', description: 'an OpenAI-compatible base URL including /v1, instead of --model' },
    { name: 'model-name', type: 'string', arg: 'NAME', description: "the endpoint's model name (with --endpoint; required)" },
    { name: 'api-key-env', type: 'string', arg: 'VAR', description: 'environment variable holding the endpoint key (default VLIT_API_KEY)' },
    { name: 'images', type: 'string', arg: 'DIR', description: "root of the benchmark's image paths (default: the benchmark's folder)" },
    { name: 'out', type: 'string', arg: 'DIR', description: 'report folder (required)' },
    { name: 'method', type: 'string', arg: 'likelihood|generate', description: 'scoring (default likelihood for --model, generate for --endpoint)' },
    { name: 'max-new-tokens', type: 'integer', arg: 'N', default: 16, min: 1, description: 'tokens generated per answer with --method generate' },
    { name: 'limit', type: 'integer', arg: 'N', min: 1, description: 'only the first N questions (a smoke run)' },
    { name: 'name', type: 'string', arg: 'NAME', description: "the run's name in the report (default: the model)" },
  ],
  examples: [
    {
      command: 'vlit eval runs/demo/world/benchmark-seed.json --model runs/demo/model --out runs/demo/eval',
      note: 'the demo model on its held-out world benchmark, by likelihood',
    },
    {
      command: 'vlit eval bench.json --endpoint http://127.0.0.1:8000/v1 --model-name vlit --out eval/ --json',
      note: "a server's model (such as 'vlit serve'), by generated letter; scores as JSON",
    },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    const [file] = positionals(pos, ['BENCHMARK']);
    const out = required(str(values, 'out'), 'out');
    const dir = str(values, 'model');
    const endpoint = str(values, 'endpoint');
    if ((dir === undefined) === (endpoint === undefined))
      throw new UsageError('give exactly one of --model DIR and --endpoint URL', { details: { field: '--model' } });
    const method = str(values, 'method') ?? (dir !== undefined ? 'likelihood' : 'generate');
    if (method !== 'likelihood' && method !== 'generate')
      throw new UsageError(`--method must be likelihood or generate, got '${method}'`, { details: { field: '--method' } });
    const modelName = endpoint !== undefined ? required(str(values, 'model-name'), 'model-name') : undefined;
    const limit = optionalNum(values, 'limit');
    const bench = extname(file).toLowerCase() === '.tsv' ? await loadMmbenchFile(file) : await loadSeedBenchFile(file);
    const items = limit !== undefined ? bench.items.slice(0, limit) : bench.items;
    const opened =
      dir !== undefined
        ? await openModelFolder(dir)
        : openEndpoint(endpoint as string, modelName as string, process.env[str(values, 'api-key-env') ?? 'VLIT_API_KEY'] || undefined);
    try {
      const benchmark = createMultipleChoiceBenchmark({
        id: basename(file, extname(file)),
        items,
        method: method as MultipleChoiceMethod,
        source: bench.sha256,
      });
      const run = await withProgress(io, (onProgress) =>
        evaluate({
          model: opened.model,
          benchmarks: [benchmark],
          name: str(values, 'name') ?? dir ?? `${endpoint} ${modelName}`,
          loadImage: createFileImageLoader({ root: resolve(str(values, 'images') ?? dirname(file)), codec: opened.runtime.images }),
          decoding: { maxNewTokens: num(values, 'max-new-tokens'), temperature: 0 },
          onProgress,
        }),
      );
      const files = await writeReports(out, [run], { title: `vlit eval: ${file}` });
      const result = run.benchmarks[0];
      const byDimension = Object.fromEntries(Object.entries(result.groups).map(([k, v]) => [k, v.accuracy]));
      if (json) printJson(io, { benchmark: file, model: dir ?? endpoint, method, items: items.length, accuracy: result.metrics.accuracy, byDimension, files });
      else io.stdout(`${renderResultsTable([run])}\nreport: ${files.html}, ${files.markdown}, ${files.json}\n`);
      return EXIT.ok;
    } finally {
      await opened.dispose();
    }
  },
});
