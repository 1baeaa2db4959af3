/** `vlit data mix`: a training mixture drawn from several record files by a mixing plan. */
import { ValidationError } from '@vlit/core';
import { assertDistinctPaths } from '@vlit/core/node';
import { planMixture, sampleMixture, type MixSource, type MixStrategy } from '@vlit/data';
import { readJsonLinesFile } from '@vlit/data/node';
import { defineCommand, list, num, optionalNum, str } from '../define.js';
import { EXIT, assertOutputFiles, openOutput, positionals, printJson, UsageError } from '../shared.js';

const STRATEGIES: readonly MixStrategy[] = ['proportional', 'temperature', 'weighted'];

/** Parse `--source NAME=FILE[@WEIGHT]`. */
export function parseSource(text: string): { name: string; file: string; weight?: number } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`--source '${text}' is not NAME=FILE[@WEIGHT]`, { details: { field: '--source' } });
  const name = text.slice(0, eq);
  let file = text.slice(eq + 1);
  let weight: number | undefined;
  const at = file.lastIndexOf('@');
  if (at > 0) {
    weight = Number(file.slice(at + 1));
    if (!Number.isFinite(weight) || weight < 0) throw new UsageError(`--source '${text}': weight must be a number >= 0`, { details: { field: '--source' } });
    file = file.slice(0, at);
  }
  return { name, file, ...(weight !== undefined ? { weight } : {}) };
}

export const mixCommand = defineCommand({
  name: 'data mix',
  summary: 'draw a seeded training mixture from several record files (proportional, temperature or weighted)',
  usage: 'data mix --source NAME=FILE[@WEIGHT] ... --out FILE [options]',
  description: `Plan how many records each source contributes (planMixture: proportional p ∝ n, temperature
p ∝ n^(1/T), or weighted p ∝ w; optional cap on passes over a source) and draw them deterministically by
seed (sampleMixture: whole shuffled passes, sources interleaved so every prefix keeps the proportions).
Records are copied line for line (JSON Lines in, JSON Lines out); a line that is not JSON stops the run.`,
  flags: [
    {
      name: 'source',
      type: 'string',
      arg: 'NAME=FILE[@WEIGHT]',
      multiple: true,
      description: 'a source: its name, its JSON Lines file and optional weight (at least one)',
    },
    { name: 'out', type: 'string', arg: 'FILE', description: 'the mixture, JSON Lines (required)' },
    {
      name: 'strategy',
      type: 'string',
      arg: STRATEGIES.join('|'),
      description: 'how probabilities are chosen (default: weighted when every source has a\nweight, else temperature)',
    },
    { name: 'temperature', type: 'number', arg: 'T', description: 'T of temperature mixing (default 1 = proportional)' },
    { name: 'total', type: 'integer', arg: 'N', min: 1, description: 'records in the mixture (default: the sum of the sources)' },
    { name: 'max-epochs', type: 'number', arg: 'E', description: 'cap on passes over any source' },
    { name: 'seed', type: 'integer', arg: 'N', default: 0, description: 'seed of the draw' },
  ],
  examples: [
    {
      command: 'vlit data mix --source adapted=adapted.jsonl --source generated=generated.jsonl --temperature 2 --out mix.jsonl',
      note: 'flatten towards uniform with temperature 2',
    },
    {
      command: 'vlit data mix --source a=a.jsonl@3 --source b=b.jsonl@1 --total 1000 --out mix.jsonl --json',
      note: '3:1 weighted, 1000 records, the plan as JSON',
    },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    positionals(pos, []);
    const sources = list(values, 'source').map(parseSource);
    if (sources.length === 0) throw new UsageError('missing required flag --source (at least one)', { details: { field: '--source' } });
    const out = str(values, 'out');
    if (!out) throw new UsageError('missing required flag --out', { details: { field: '--out' } });
    const strategy = str(values, 'strategy');
    if (strategy !== undefined && !(STRATEGIES as readonly string[]).includes(strategy)) {
      throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}, got '${strategy}'`, { details: { field: '--strategy' } });
    }
    await assertDistinctPaths({ '--out': out, ...Object.fromEntries(sources.map((s) => [`--source ${s.name}`, s.file])) });
    await assertOutputFiles({ '--out': out });
    const items: Record<string, string[]> = {};
    for (const s of sources) {
      if (Object.hasOwn(items, s.name)) throw new UsageError(`--source name '${s.name}' given twice`, { details: { field: '--source' } });
      const { values: recs, rejects } = await readJsonLinesFile(s.file);
      if (rejects.length)
        throw new ValidationError(`${s.file} line ${rejects[0].line} is not JSON: ${rejects[0].message}`, {
          details: { file: s.file, record: rejects[0].line },
        });
      items[s.name] = recs.map((r) => JSON.stringify(r));
    }
    const mixSources: MixSource[] = sources.map((s) => ({ name: s.name, size: items[s.name].length, ...(s.weight !== undefined ? { weight: s.weight } : {}) }));
    const total = optionalNum(values, 'total');
    const maxEpochs = optionalNum(values, 'max-epochs');
    const temperature = optionalNum(values, 'temperature');
    const plan = planMixture({
      sources: mixSources,
      ...(strategy ? { strategy: strategy as MixStrategy } : {}),
      ...(temperature !== undefined ? { temperature } : {}),
      ...(total !== undefined ? { total } : {}),
      ...(maxEpochs !== undefined ? { maxEpochs } : {}),
    });
    const drawn = sampleMixture(items, plan, { seed: num(values, 'seed') });
    const file = await openOutput(out, '--out');
    for (const d of drawn) void file.write(`${d.item}\n`);
    await file.commit();
    const result = { out, total: drawn.length, strategy: plan.strategy, sources: plan.sources, warnings: plan.warnings };
    if (json) printJson(io, result);
    else {
      io.stdout(`mixed ${drawn.length} records into ${out} (${plan.strategy})\n`);
      for (const s of plan.sources)
        io.stdout(`  ${s.name}: ${s.samples} of ${s.size} (p ${s.probability.toFixed(3)}, ${s.effectiveEpochs.toFixed(2)} epochs)\n`);
      for (const w of plan.warnings) io.stderr(`warning: ${w.code} ${w.message}\n`);
    }
    return EXIT.ok;
  },
});
