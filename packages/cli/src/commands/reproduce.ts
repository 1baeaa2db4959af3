/** `vlit reproduce`: the review's variants (a)-(f) over several seeds, with mean ± spread (../main-job/reproduce.ts). */
import { REPRODUCE_VARIANTS, runReproduction } from '../main-job/reproduce.js';
import { defineCommand, list, str } from '../define.js';
import { withProgress } from '../progress.js';
import { EXIT, positionals, printJson, UsageError } from '../shared.js';

/** Parse `--seeds 1,2,3`. */
export function parseSeeds(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const seeds = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (seeds.length === 0 || seeds.some((n) => !Number.isInteger(n)))
    throw new UsageError(`--seeds must be a comma-separated list of integers, got '${text}'`, { details: { field: '--seeds' } });
  return seeds;
}

export const reproduceCommand = defineCommand({
  name: 'reproduce',
  summary: "rerun the review's data variants (a)-(f) over several seeds and write results.md with mean ± spread",
  usage: 'reproduce [OUT] [--quick] [--seeds 1,2,3] [--variant ID ...] [--force] [--json]',
  description: `Train and evaluate the main job's small LLaVA once per data variant and seed — phrasings (one per task or
the full pools), planted faults with and without quality control, natural or balanced task mix, the
connector — on the same held-out world benchmark, and write OUT/results.md: accuracy per dimension as
mean ± sample standard deviation over seeds, chance, and the reading of the differences. OUT (default
./vlit-reproduce) must be new, empty or made by an earlier Vlit run, unless --force.
Variants: ${REPRODUCE_VARIANTS.map((v) => `${v.id} (${v.label})`).join(', ')}.`,
  flags: [
    { name: 'quick', type: 'boolean', description: 'the small CI-sized reproduction (seeds 1,2 by default)' },
    { name: 'seeds', type: 'string', arg: 'N,N,...', description: 'seeds of every variant (default 1,2,3; 1,2 with --quick)' },
    { name: 'variant', type: 'string', arg: 'ID', multiple: true, description: 'run only these variants (default all)' },
    { name: 'force', type: 'boolean', description: 'write into a non-empty folder Vlit did not make' },
  ],
  examples: [
    { command: 'vlit reproduce runs/reproduce --quick', note: 'the CI-sized reproduction over seeds 1 and 2' },
    { command: 'vlit reproduce runs/reproduce --seeds 1,2,3,4,5 --json', note: 'five seeds; the per-variant statistics as JSON' },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    const [out = 'vlit-reproduce'] = positionals(pos, ['OUT'], 1);
    const seeds = parseSeeds(str(values, 'seeds'));
    const variants = list(values, 'variant');
    const known = REPRODUCE_VARIANTS.map((v) => v.id);
    const unknown = variants.find((v) => !known.includes(v));
    if (unknown !== undefined) throw new UsageError(`unknown --variant '${unknown}'; expected one of ${known.join(', ')}`, { details: { field: '--variant' } });
    const result = await withProgress(io, (onProgress) =>
      runReproduction({
        out,
        quick: values.quick === true,
        force: values.force === true,
        ...(seeds ? { seeds } : {}),
        ...(variants.length ? { variants } : {}),
        onProgress,
      }),
    );
    if (json)
      printJson(io, {
        out,
        markdownPath: result.markdownPath,
        seeds: result.seeds,
        seconds: result.seconds,
        chance: result.chance,
        variants: result.variants.map((v) => ({ id: v.variant.id, label: v.variant.label, seen: v.seen, unseen: v.unseen, blankSeen: v.blankSeen ?? null })),
      });
    else io.stdout(`${result.markdown}\nresults: ${result.markdownPath}\n`);
    return EXIT.ok;
  },
});
