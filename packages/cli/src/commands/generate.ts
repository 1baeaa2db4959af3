/** `vlit data generate`: Self-Instruct generation of conversations against an OpenAI-compatible endpoint. */
import { SELF_INSTRUCT_TYPES, type ImageAnnotationsInput, type SelfInstructType } from '@vlit/data';
import { readJsonLinesFile, runGenerationJob } from '@vlit/data/node';
import { defineCommand, num, str } from '../define.js';
import { withProgress } from '../progress.js';
import { EXIT, positionals, printJson, required, UsageError } from '../shared.js';

/** Parse `--types dialogue=1,complex-reasoning=2`. */
function parseTypes(text: string | undefined): Partial<Record<SelfInstructType, number>> | undefined {
  if (text === undefined) return undefined;
  const types: Partial<Record<SelfInstructType, number>> = {};
  for (const part of text.split(',').filter((p) => p.trim())) {
    const [name, n = '1'] = part.split('=').map((s) => s.trim());
    const count = Number(n);
    if (!(SELF_INSTRUCT_TYPES as readonly string[]).includes(name) || !Number.isInteger(count) || count < 0) {
      throw new UsageError(`--types: '${part}' is not TYPE=N with TYPE one of ${SELF_INSTRUCT_TYPES.join(', ')}`, { details: { field: '--types' } });
    }
    types[name as SelfInstructType] = count;
  }
  return types;
}

export const generateCommand = defineCommand({
  name: 'data generate',
  summary: 'generate conversations from image annotations with a teacher model (Self-Instruct, resumable)',
  usage: 'data generate ANNOTATIONS --out DIR --endpoint URL --model NAME [options]',
  description: `Self-Instruct: for each image of ANNOTATIONS (one ImageAnnotations JSON per line) ask the teacher
at --endpoint (an OpenAI-compatible /v1 base URL, such as 'vlit serve' or vLLM) for conversations of each
type, built from the annotations as text. DIR receives records.jsonl (valid conversations, canonical),
rejects.jsonl (replies that are not conversations, with the raw text and reason), done.log and a reply
cache; rerunning with the same DIR resumes where it stopped. The API key comes from --api-key-env (the
name of an environment variable, default VLIT_API_KEY), never from a flag value, so it stays out of
shell history and process lists.`,
  flags: [
    { name: 'out', type: 'string', arg: 'DIR', description: "the job's folder (required; rerun to resume)" },
    { name: 'endpoint', type: 'string', arg: 'URL', description: 'OpenAI-compatible base URL including /v1 (required)' },
    { name: 'model', type: 'string', arg: 'NAME', description: 'model name sent with each request (required)' },
    { name: 'api-key-env', type: 'string', arg: 'VAR', description: 'environment variable holding the API key (default VLIT_API_KEY)' },
    { name: 'dataset', type: 'string', arg: 'NAME', description: "dataset name in each record's source (default self-instruct)" },
    { name: 'types', type: 'string', arg: 'TYPE=N,...', description: `conversations per image of each type (${SELF_INSTRUCT_TYPES.join(', ')})` },
    { name: 'concurrency', type: 'integer', arg: 'N', default: 4, min: 1, description: 'requests in flight' },
    { name: 'seed', type: 'integer', arg: 'N', default: 0, description: 'seed of prompts and phrasings' },
    { name: 'no-cache', type: 'boolean', description: 'do not cache replies' },
  ],
  examples: [
    {
      command: 'VLIT_API_KEY=... vlit data generate annotations.jsonl --out gen/ --endpoint https://api.openai.com/v1 --model gpt-4o-mini',
      note: 'three conversation types per image from a hosted teacher',
    },
    {
      command: 'vlit data generate annotations.jsonl --out gen/ --endpoint http://127.0.0.1:8000/v1 --model local --types dialogue=1 --json',
      note: 'one dialogue per image from a local server; the summary as JSON',
    },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    const [input] = positionals(pos, ['ANNOTATIONS']);
    const outDir = required(str(values, 'out'), 'out');
    const baseURL = required(str(values, 'endpoint'), 'endpoint');
    const model = required(str(values, 'model'), 'model');
    const keyVar = str(values, 'api-key-env') ?? 'VLIT_API_KEY';
    const apiKey = process.env[keyVar] || undefined;
    const types = parseTypes(str(values, 'types'));
    const concurrency = num(values, 'concurrency');
    const { values: images, rejects } = await readJsonLinesFile(input);
    if (rejects.length) io.stderr(`note: ${rejects.length} lines of ${input} are not JSON and were skipped (first: line ${rejects[0].line})\n`);
    const summary = await withProgress(io, (onProgress) =>
      runGenerationJob({
        images: images as ImageAnnotationsInput[],
        outDir,
        dataset: str(values, 'dataset') ?? 'self-instruct',
        seed: num(values, 'seed'),
        ...(types ? { types } : {}),
        model,
        endpoint: { baseURL, ...(apiKey ? { apiKey } : {}) },
        concurrency,
        ...(values['no-cache'] === true ? { cacheDir: false as const } : {}),
        onProgress,
      }),
    );
    const result = {
      input,
      outDir,
      planned: summary.planned,
      alreadyDone: summary.alreadyDone,
      written: summary.written,
      rejected: summary.rejected,
      failed: summary.failed,
      warnings: summary.warnings.length,
      files: summary.files,
      skippedLines: rejects.length,
    };
    if (json) printJson(io, result);
    else {
      io.stdout(
        `generated into ${outDir}: planned ${summary.planned} = already done ${summary.alreadyDone} + written ${summary.written} + rejected ${summary.rejected} + failed ${summary.failed}\n`,
      );
      for (const f of summary.failures.slice(0, 5)) io.stderr(`failed: ${f.id}: ${f.message}\n`);
      io.stdout(`records: ${summary.files.records}\nrejects: ${summary.files.rejects}\n`);
    }
    return summary.failed > 0 ? EXIT.failed : EXIT.ok;
  },
});
