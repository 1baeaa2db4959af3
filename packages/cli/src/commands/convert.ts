/** `vlit convert`: one dataset dialect to another, bad records to a rejects file. */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { isVlitError, type VlitWarning } from '@vlit/core';
import { assertDistinctPaths, assertRegularFile, type AtomicFileWriter } from '@vlit/core/node';
import { DIALECT_NAMES, dialectFromDatasetInfo, type DatasetInfo, type DialectName, type RecordDialect, type RejectedRecord } from '@vlit/data';
import { convertFile, readDatasetInfoFile } from '@vlit/data/node';
import { EXIT, assertOutputFiles, dialect, guarded, openOutput, parseFlags, positionals, printJson, required, UsageError, type CliIo, type Command } from '../shared.js';

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
  const formatting = entry.formatting === 'openai' ? 'sharegpt' : entry.formatting ?? 'alpaca';
  if (formatting !== from) {
    throw new UsageError(`dataset_info.json entry '${name}' has formatting ${entry.formatting ?? 'alpaca (the default)'}, but --from is ${from}`, {
      details: { file: infoFile, record: name, field: 'formatting' },
    });
  }
  return { file: infoFile, name, dialect: dialectFromDatasetInfo(entry, from) };
}

async function datasetInfoFor(io: CliIo, explicit: string | undefined, input: string, from: DialectName, wanted: string | undefined): Promise<DatasetInfoChoice | undefined> {
  if (explicit !== undefined) {
    if (from !== 'sharegpt' && from !== 'alpaca') {
      throw new UsageError(`--dataset-info describes sharegpt or alpaca files, not --from ${from}`, { details: { field: '--dataset-info' } });
    }
    await assertRegularFile(explicit, { what: '--dataset-info' });
    const info = await readDatasetInfoFile(explicit);
    const choice = chooseDatasetInfo(info, explicit, input, from, wanted);
    if (!choice) {
      throw new UsageError(`${explicit} has ${Object.keys(info).length} entries and none names ${input} as its file_name; pass --dataset NAME (one of ${Object.keys(info).join(', ')})`, {
        details: { file: explicit, field: '--dataset' },
      });
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

export const convertCommand: Command = {
  name: 'convert',
  summary: 'convert a dataset file from one dialect to another',
  help: `Usage: vlit convert --from <dialect> --to <dialect> IN OUT [options]

Convert IN (dialect --from) to OUT (dialect --to) in constant memory. Counts add up:
read = written + rejected. OUT, --rejects and --warnings are written to temporary files and
renamed into place at the end, so a failed run leaves no truncated file; any two of IN, OUT,
--rejects, --warnings and --dataset-info that are the same file (also through a link) are refused.

Dialects: ${DIALECT_NAMES.join(', ')}

Options:
  --from <dialect>         dialect of IN (required)
  --to <dialect>           dialect of OUT (required)
  --rejects FILE           write bad records (JSON Lines, with reasons) here; without it the
                           first bad record stops the run
  --root DIR               dataset root: every image must resolve under it (symlinks followed)
  --dataset NAME           dataset name recorded in each record's source (with --dataset-info:
                           also the entry to use)
  --dataset-info FILE      LLaMA-Factory dataset_info.json describing IN's columns and tags
                           (--from sharegpt or alpaca); a dataset_info.json beside IN with an
                           entry whose file_name is IN is used without this flag
  --to-container json|jsonl  container of OUT (default: from OUT's name, .json a JSON array and
                           .jsonl JSON Lines; otherwise the dialect's own)
  --warnings FILE          write every warning here (JSON Lines); only the first
                           ${MAX_WARNINGS_SHOWN} are printed, the rest are counted
  --json                   print the counts as JSON
  -h, --help               show this help
`,
  run: (argv, io) =>
    guarded('convert', io, async () => {
      const { values, positionals: pos } = parseFlags(argv, {
        from: { type: 'string' },
        to: { type: 'string' },
        rejects: { type: 'string' },
        root: { type: 'string' },
        dataset: { type: 'string' },
        'dataset-info': { type: 'string' },
        'to-container': { type: 'string' },
        warnings: { type: 'string' },
      });
      if (values.help) {
        io.stdout(convertCommand.help);
        return EXIT.ok;
      }
      const from = dialect(required(values.from, 'from'), 'from');
      const to = dialect(required(values.to, 'to'), 'to');
      const [input, output] = positionals(pos, ['IN', 'OUT']);
      const container = values['to-container'];
      if (container !== undefined && container !== 'json' && container !== 'jsonl') {
        throw new UsageError(`--to-container must be json or jsonl, got '${container}'`, { details: { field: '--to-container' } });
      }
      // Before anything is opened: an output that is an input (or another output) would be truncated.
      await assertDistinctPaths({ IN: input, OUT: output, '--rejects': values.rejects, '--warnings': values.warnings, '--dataset-info': values['dataset-info'] });
      await assertRegularFile(input, { what: 'input' });
      await assertOutputFiles({ OUT: output, '--rejects': values.rejects, '--warnings': values.warnings });
      const info = await datasetInfoFor(io, values['dataset-info'], input, from, values.dataset);

      const rejects = values.rejects !== undefined ? await openOutput(values.rejects, '--rejects') : undefined;
      const warningsFile = values.warnings !== undefined ? await openOutput(values.warnings, '--warnings') : undefined;
      const warnings = createWarningSink(MAX_WARNINGS_SHOWN, warningsFile);
      let stats;
      try {
        stats = await convertFile({
          input,
          output,
          from: info?.dialect ?? from,
          to,
          root: values.root,
          dataset: values.dataset ?? info?.name,
          toContainer: container ?? containerFromName(output),
          onReject: rejects ? (r: RejectedRecord) => void rejects.write(`${JSON.stringify(r)}\n`) : undefined,
          onWarning: (w) => warnings.add(w),
        });
        await rejects?.commit();
        await warningsFile?.commit();
      } catch (err) {
        await rejects?.abort();
        await warningsFile?.abort();
        throw err;
      }
      if (values.json) {
        printJson(io, { input, output, from, to, ...stats, rejects: values.rejects ?? null, warningsFile: values.warnings ?? null, datasetInfo: info ? { file: info.file, entry: info.name } : null });
        return EXIT.ok;
      }
      for (const w of warnings.kept) io.stderr(`warning: ${w.code} ${w.message}${where(w)}\n`);
      if (warnings.count > warnings.kept.length) {
        io.stderr(`warning: ... and ${warnings.count - warnings.kept.length} more${values.warnings ? ` (all in ${values.warnings})` : ' (--warnings FILE keeps them all)'}\n`);
      }
      io.stdout(`converted ${input} (${from}) -> ${output} (${to}): read ${stats.read} = written ${stats.written} + rejected ${stats.rejected}; ${stats.warnings} warnings\n`);
      if (values.rejects) io.stdout(`rejects: ${values.rejects}\n`);
      if (values.warnings) io.stdout(`warnings: ${values.warnings}\n`);
      return EXIT.ok;
    }),
};
