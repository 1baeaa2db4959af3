/** `vlit data convert` (alias `vlit convert`): one dataset dialect to another, bad records to a rejects file. */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { isVlitError, type VlitRecord, type VlitWarning } from '@vlit/core';
import { assertDistinctPaths, assertRegularFile, type AtomicFileWriter } from '@vlit/core/node';
import {
  convertRecords,
  DIALECT_NAMES,
  dialectFromDatasetInfo,
  type ConversionStats,
  type DatasetInfo,
  type DialectName,
  type RecordDialect,
  type RejectedRecord,
} from '@vlit/data';
import { checkRecordImages, convertFile, fileSource, readDatasetInfoFile } from '@vlit/data/node';
import { defineCommand, optionalNum, str } from '../define.js';
import { withProgress } from '../progress.js';
import { EXIT, assertOutputFiles, dialect, openOutput, positionals, printJson, required, UsageError, type CliIo } from '../shared.js';

/** Warnings shown on stderr; the rest are counted (and streamed to --warnings FILE when given). */
export const MAX_WARNINGS_SHOWN = 10;

function where(w: VlitWarning): string {
  const d = w.details ?? {};
  const parts = (['file', 'record', 'field'] as const).filter((k) => d[k] !== undefined).map((k) => `${k} ${String(d[k])}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** Collects a conversion's warnings in bounded memory: all are counted, the first `keep` are kept, each is streamed to `file` when given. */
export interface WarningSink {
  add(warning: VlitWarning): void;
  readonly count: number;
  readonly kept: readonly VlitWarning[];
}

/** A warning sink keeping at most `keep` warnings in memory (200k warnings must not cost 100 MB). */
export function createWarningSink(keep: number, file?: AtomicFileWriter): WarningSink {
  const kept: VlitWarning[] = [];
  let count = 0;
  return {
    add(w) {
      count++;
      if (kept.length < keep) kept.push(w);
      if (file) void file.write(`${JSON.stringify(w)}\n`);
    },
    get count() {
      return count;
    },
    kept,
  };
}

/** The container OUT's name asks for (`.json`: a JSON array, as LLaVA's loader reads; `.jsonl`: JSON Lines). */
export function containerFromName(file: string): 'json' | 'jsonl' | undefined {
  const ext = path.extname(file).toLowerCase();
  return ext === '.json' ? 'json' : ext === '.jsonl' ? 'jsonl' : undefined;
}

/** A LLaMA-Factory `dataset_info.json` entry chosen for IN, as a dialect. */
interface DatasetInfoChoice {
  file: string;
  name: string;
  dialect: RecordDialect;
}

/**
 * Pick the entry of `info` that describes `input`: the one named by `--dataset`, else the one whose
 * `file_name` is IN, else the only entry. Its `formatting` must agree with `--from`.
 */
function chooseDatasetInfo(info: DatasetInfo, infoFile: string, input: string, from: DialectName, wanted: string | undefined): DatasetInfoChoice | undefined {
  const names = Object.keys(info);
  let name: string | undefined;
  if (wanted !== undefined && Object.hasOwn(info, wanted)) name = wanted;
  else {
    const target = path.resolve(input);
    const byFile = names.filter((n) => {
      const f = info[n].file_name;
      return f !== undefined && path.resolve(path.dirname(infoFile), f) === target;
    });
    if (byFile.length === 1) name = byFile[0];
    else if (names.length === 1) name = names[0];
  }
  if (name === undefined) return undefined;
  const entry = info[name];
  // LLaMA-Factory's default formatting is alpaca; its "openai" formatting is ShareGPT with OpenAI tags.
  const formatting = entry.formatting === 'openai' ? 'sharegpt' : (entry.formatting ?? 'alpaca');
  if (formatting !== from) {
    throw new UsageError(`dataset_info.json entry '${name}' has formatting ${entry.formatting ?? 'alpaca (the default)'}, but --from is ${from}`, {
      details: { file: infoFile, record: name, field: 'formatting' },
    });
  }
  return { file: infoFile, name, dialect: dialectFromDatasetInfo(entry, from) };
}

async function datasetInfoFor(
  io: CliIo,
  explicit: string | undefined,
  input: string,
  from: DialectName,
  wanted: string | undefined,
): Promise<DatasetInfoChoice | undefined> {
  if (explicit !== undefined) {
    if (from !== 'sharegpt' && from !== 'alpaca') {
      throw new UsageError(`--dataset-info describes sharegpt or alpaca files, not --from ${from}`, { details: { field: '--dataset-info' } });
    }
    await assertRegularFile(explicit, { what: '--dataset-info' });
    const info = await readDatasetInfoFile(explicit);
    const choice = chooseDatasetInfo(info, explicit, input, from, wanted);
    if (!choice) {
      throw new UsageError(
        `${explicit} has ${Object.keys(info).length} entries and none names ${input} as its file_name; pass --dataset NAME (one of ${Object.keys(info).join(', ')})`,
        {
          details: { file: explicit, field: '--dataset' },
        },
      );
    }
    return choice;
  }
  // LLaMA-Factory keeps dataset_info.json beside its data files: an entry naming IN is what IN means.
  if (from !== 'sharegpt' && from !== 'alpaca') return undefined;
  const sibling = path.join(path.dirname(input), 'dataset_info.json');
  if (!existsSync(sibling) || path.resolve(sibling) === path.resolve(input)) return undefined;
  let info: DatasetInfo;
  try {
    await assertRegularFile(sibling);
    info = await readDatasetInfoFile(sibling);
  } catch (err) {
    if (!isVlitError(err)) throw err;
    io.stderr(`note: ignoring ${sibling}: ${err.code} ${err.message}\n`);
    return undefined;
  }
  const target = path.resolve(input);
  const named = Object.keys(info).filter((n) => info[n].file_name !== undefined && path.resolve(path.dirname(sibling), info[n].file_name!) === target);
  if (named.length !== 1) return undefined;
  const choice = chooseDatasetInfo(info, sibling, input, from, named[0]);
  if (choice) io.stderr(`note: reading ${input} with entry '${choice.name}' of ${sibling} (columns and tags); pass --dataset-info to choose another file\n`);
  return choice;
}

/**
 * `-` as IN reads standard input, `-` as OUT writes standard output (constant memory either way); the
 * summary then goes to stderr, and --json (which would share stdout with the data) is refused.
 */
async function convertStreams(
  io: CliIo,
  a: {
    input: string;
    output: string;
    from: DialectName;
    to: DialectName;
    container: string | undefined;
    values: { rejects?: string; root?: string; dataset?: string; json: boolean };
  },
): Promise<number> {
  if (a.output === '-' && a.values.json)
    throw new UsageError('--json prints to standard output, which OUT - already uses; give OUT a file name', { details: { field: '--json' } });
  if (a.input === '-' && !io.stdin) throw new UsageError('standard input is not available here', { details: { field: 'IN' } });
  if (a.input !== '-') await assertRegularFile(a.input, { what: 'input' });
  await assertDistinctPaths({ IN: a.input === '-' ? undefined : a.input, OUT: a.output === '-' ? undefined : a.output, '--rejects': a.values.rejects });
  await assertOutputFiles({ OUT: a.output === '-' ? undefined : a.output, '--rejects': a.values.rejects });
  const rejects = a.values.rejects !== undefined ? await openOutput(a.values.rejects, '--rejects') : undefined;
  const out = a.output === '-' ? undefined : await openOutput(a.output, 'OUT');
  const stats = { read: 0, written: 0, rejected: 0, warnings: 0 };
  const root = a.values.root;
  const toContainer = (a.container as 'json' | 'jsonl' | undefined) ?? (a.output === '-' ? undefined : containerFromName(a.output));
  try {
    const chunks = convertRecords(
      a.input === '-' ? (io.stdin as AsyncIterable<Uint8Array>) : fileSource(a.input),
      {
        from: a.from,
        to: a.to,
        file: a.input === '-' ? '<stdin>' : a.input,
        ...(a.values.dataset !== undefined ? { dataset: a.values.dataset } : {}),
        ...(toContainer !== undefined ? { toContainer } : {}),
        ...(rejects ? { onReject: (r: RejectedRecord) => void rejects.write(`${JSON.stringify(r)}\n`) } : {}),
        ...(root !== undefined ? { check: (r: VlitRecord) => checkRecordImages(r, root).then(() => undefined) } : {}),
      },
      stats,
    );
    for await (const chunk of chunks) {
      if (out) await out.write(chunk);
      else io.stdout(chunk);
    }
    await out?.commit();
    await rejects?.commit();
  } catch (err) {
    await out?.abort();
    await rejects?.abort();
    throw err;
  }
  const summary = { input: a.input, output: a.output, from: a.from, to: a.to, ...stats, rejects: a.values.rejects ?? null };
  if (a.values.json) printJson(io, summary);
  else
    io.stderr(
      `converted ${a.input === '-' ? 'stdin' : a.input} (${a.from}) -> ${a.output === '-' ? 'stdout' : a.output} (${a.to}): read ${stats.read} = written ${stats.written} + rejected ${stats.rejected}; ${stats.warnings} warnings\n`,
    );
  return EXIT.ok;
}

export const convertCommand = defineCommand({
  name: 'data convert',
  aliases: ['convert'],
  summary: 'convert a dataset file from one dialect to another',
  usage: 'data convert --from <dialect> --to <dialect> IN OUT [options]',
  description: `Convert IN (dialect --from) to OUT (dialect --to) in constant memory; IN or OUT may be -
for standard input or output (the summary then goes to stderr). Counts add up:
read = written + rejected. OUT, --rejects and --warnings are written to temporary files and
renamed into place at the end, so a failed run leaves no truncated file; any two of IN, OUT,
--rejects, --warnings and --dataset-info that are the same file (also through a link) are refused.
Dialects: ${DIALECT_NAMES.join(', ')}.`,
  flags: [
    { name: 'from', type: 'string', arg: '<dialect>', description: 'dialect of IN (required)' },
    { name: 'to', type: 'string', arg: '<dialect>', description: 'dialect of OUT (required)' },
    {
      name: 'rejects',
      type: 'string',
      arg: 'FILE',
      description: 'write bad records (JSON Lines, with reasons) here; without it the\nfirst bad record stops the run',
    },
    { name: 'root', type: 'string', arg: 'DIR', description: 'dataset root: every image must resolve under it (symlinks followed)' },
    {
      name: 'dataset',
      type: 'string',
      arg: 'NAME',
      description: "dataset name recorded in each record's source (with --dataset-info:\nalso the entry to use)",
    },
    {
      name: 'dataset-info',
      type: 'string',
      arg: 'FILE',
      description:
        "LLaMA-Factory dataset_info.json describing IN's columns and tags\n(--from sharegpt or alpaca); a dataset_info.json beside IN with an\nentry whose file_name is IN is used without this flag",
    },
    {
      name: 'to-container',
      type: 'string',
      arg: 'json|jsonl',
      description: "container of OUT (default: from OUT's name, .json a JSON array and\n.jsonl JSON Lines; otherwise the dialect's own)",
    },
    {
      name: 'workers',
      type: 'integer',
      arg: 'N',
      description:
        'worker threads that decode and encode records while the main thread\nreads and writes (files only; the output is the same for any N; default:\none per core besides the main thread, up to 3, for files of 8 MiB or\nmore; 0: convert on the main thread)',
    },
    {
      name: 'warnings',
      type: 'string',
      arg: 'FILE',
      description: `write every warning here (JSON Lines); only the first\n${MAX_WARNINGS_SHOWN} are printed, the rest are counted`,
    },
  ],
  examples: [
    { command: 'cat records.jsonl | vlit data convert --from vlit --to llava - - > llava.jsonl', note: 'standard input to standard output' },
    {
      command: 'vlit data convert --from llava --to sharegpt llava_v1_5_mix665k.json mix.json --rejects rejects.jsonl',
      note: "LLaVA's JSON array to ShareGPT, bad records kept with their reasons",
    },
    {
      command: 'vlit data convert --from sharegpt --to vlit data/mllm_demo.json demo.jsonl --json',
      note: "LLaMA-Factory's mllm_demo (dataset_info.json beside it) to canonical records, counts as JSON",
    },
  ],
  action: async ({ values, positionals: pos, io }) => {
    const flag_rejects = str(values, 'rejects');
    const flag_warnings = str(values, 'warnings');
    const flag_dataset_info = str(values, 'dataset-info');
    const flag_dataset = str(values, 'dataset');
    const flag_root = str(values, 'root');
    const flag_to_container = str(values, 'to-container');
    const flag_from = str(values, 'from');
    const flag_to = str(values, 'to');
    const from = dialect(required(flag_from, 'from'), 'from');
    const to = dialect(required(flag_to, 'to'), 'to');
    const [input, output] = positionals(pos, ['IN', 'OUT']);
    const container = flag_to_container;
    if (container !== undefined && container !== 'json' && container !== 'jsonl') {
      throw new UsageError(`--to-container must be json or jsonl, got '${container}'`, { details: { field: '--to-container' } });
    }
    if ((input === '-' || output === '-') && (flag_warnings !== undefined || flag_dataset_info !== undefined)) {
      throw new UsageError('--warnings and --dataset-info need IN and OUT to be files, not -', {
        details: { field: flag_warnings !== undefined ? '--warnings' : '--dataset-info' },
      });
    }
    if (input === '-' || output === '-')
      return convertStreams(io, {
        input,
        output,
        from,
        to,
        container,
        values: { rejects: flag_rejects, root: flag_root, dataset: flag_dataset, json: values.json === true },
      });
    // Before anything is opened: an output that is an input (or another output) would be truncated.
    await assertDistinctPaths({ IN: input, OUT: output, '--rejects': flag_rejects, '--warnings': flag_warnings, '--dataset-info': flag_dataset_info });
    await assertRegularFile(input, { what: 'input' });
    await assertOutputFiles({ OUT: output, '--rejects': flag_rejects, '--warnings': flag_warnings });
    const info = await datasetInfoFor(io, flag_dataset_info, input, from, flag_dataset);

    const rejects = flag_rejects !== undefined ? await openOutput(flag_rejects, '--rejects') : undefined;
    const warningsFile = flag_warnings !== undefined ? await openOutput(flag_warnings, '--warnings') : undefined;
    const warnings = createWarningSink(MAX_WARNINGS_SHOWN, warningsFile);
    let stats: ConversionStats;
    try {
      stats = await withProgress(io, (onProgress) =>
        convertFile({
          onProgress,
          input,
          output,
          from: info?.dialect ?? from,
          to,
          root: flag_root,
          dataset: flag_dataset ?? info?.name,
          toContainer: container ?? containerFromName(output),
          onReject: rejects ? (r: RejectedRecord) => void rejects.write(`${JSON.stringify(r)}\n`) : undefined,
          onWarning: (w) => warnings.add(w),
          workers: optionalNum(values, 'workers'),
        }),
      );
      await rejects?.commit();
      await warningsFile?.commit();
    } catch (err) {
      await rejects?.abort();
      await warningsFile?.abort();
      throw err;
    }
    if (values.json === true) {
      printJson(io, {
        input,
        output,
        from,
        to,
        ...stats,
        rejects: flag_rejects ?? null,
        warningsFile: flag_warnings ?? null,
        datasetInfo: info ? { file: info.file, entry: info.name } : null,
      });
      return EXIT.ok;
    }
    for (const w of warnings.kept) io.stderr(`warning: ${w.code} ${w.message}${where(w)}\n`);
    if (warnings.count > warnings.kept.length) {
      io.stderr(
        `warning: ... and ${warnings.count - warnings.kept.length} more${flag_warnings ? ` (all in ${flag_warnings})` : ' (--warnings FILE keeps them all)'}\n`,
      );
    }
    io.stdout(
      `converted ${input} (${from}) -> ${output} (${to}): read ${stats.read} = written ${stats.written} + rejected ${stats.rejected}; ${stats.warnings} warnings\n`,
    );
    if (flag_rejects) io.stdout(`rejects: ${flag_rejects}\n`);
    if (flag_warnings) io.stdout(`warnings: ${flag_warnings}\n`);
    return EXIT.ok;
  },
});
