/** `vlit lint-template`: check that a chat template and tokenizer agree on every sample's labels. */
import { FormatError } from '@vlit/core';
import { assertRegularFile } from '@vlit/core/node';
import { readRecordsFile } from '@vlit/data/node';
import { builtinTemplateNames, createBuiltinTemplate, formatLintReport, lintTemplate, type BuiltinTemplateName } from '@vlit/templates';
import { loadTokenizerDir } from '@vlit/templates/node';
import { EXIT, dialect, guarded, parseFlags, positionals, positiveInt, printJson, readJsonLines, required, UsageError, type Command } from '../shared.js';

const ROUND_TRIPS = ['exact', 'ignore-whitespace', 'off'] as const;
const TURNS = ['all', 'last', 'flagged'] as const;

export const lintTemplateCommand: Command = {
  name: 'lint-template',
  summary: 'lint a chat template + tokenizer over records (exit 1 when it finds errors)',
  help: `Usage: vlit lint-template --tokenizer DIR [--template NAME] IN [options]

Encode every record of IN with the chat template and the tokenizer of DIR (tokenizer.json, and
tokenizer_config.json when present), and report masked-label, image-count, inference-mismatch,
boundary-straddle and round-trip problems, each naming the sample and the offending tokens.
Exits 1 when any sample fails.

Options:
  --tokenizer DIR          directory with tokenizer.json [+ tokenizer_config.json] (required)
  --template NAME          a built-in template (${builtinTemplateNames.join(', ')});
                           default: the chat_template of DIR's tokenizer_config.json
  --image-token TEXT       the single token an image expands from (template option)
  --image-text TEXT        what an image renders as (template option)
  --image-tokens N         tokens per image after expansion (default 1)
  --assistant-turns all|last|flagged  which assistant turns are trained (default all)
  --round-trip exact|ignore-whitespace|off  decode(encode(x)) strictness (default ignore-whitespace)
  --dialect NAME           dialect of IN (default vlit)
  --max-tokens N           tokens shown per sample (default 400)
  --no-color               plain output (trained tokens in [brackets]); default when not a terminal
  --json                   print the full report as JSON
  -h, --help               show this help
`,
  run: (argv, io) =>
    guarded('lint-template', io, async () => {
      const { values, positionals: pos } = parseFlags(argv, {
        tokenizer: { type: 'string' },
        template: { type: 'string' },
        'image-token': { type: 'string' },
        'image-text': { type: 'string' },
        'image-tokens': { type: 'string' },
        'assistant-turns': { type: 'string' },
        'round-trip': { type: 'string' },
        dialect: { type: 'string' },
        'max-tokens': { type: 'string' },
        'no-color': { type: 'boolean' },
      });
      if (values.help) {
        io.stdout(lintTemplateCommand.help);
        return EXIT.ok;
      }
      const [input] = positionals(pos, ['IN']);
      const dir = required(values.tokenizer, 'tokenizer');
      const name = values.template;
      if (name !== undefined && !(builtinTemplateNames as readonly string[]).includes(name)) {
        throw new UsageError(`unknown template '${name}' for --template; expected one of ${builtinTemplateNames.join(', ')}`, { details: { field: '--template' } });
      }
      const roundTrip = values['round-trip'] ?? 'ignore-whitespace';
      if (!(ROUND_TRIPS as readonly string[]).includes(roundTrip)) throw new UsageError(`--round-trip must be one of ${ROUND_TRIPS.join(', ')}, got '${roundTrip}'`, { details: { field: '--round-trip' } });
      const turns = values['assistant-turns'] ?? 'all';
      if (!(TURNS as readonly string[]).includes(turns)) throw new UsageError(`--assistant-turns must be one of ${TURNS.join(', ')}, got '${turns}'`, { details: { field: '--assistant-turns' } });
      const imageTokens = positiveInt(values['image-tokens'], 'image-tokens', 1);
      const maxTokens = positiveInt(values['max-tokens'], 'max-tokens', 400);
      const recordsDialect = dialect(values.dialect ?? 'vlit', 'dialect');

      const templateOptions = {
        ...(values['image-token'] !== undefined ? { imageToken: values['image-token'] } : {}),
        ...(values['image-text'] !== undefined ? { imageText: values['image-text'] } : {}),
      };
      const loaded = await loadTokenizerDir(dir, templateOptions);
      const template = name !== undefined ? createBuiltinTemplate(name as BuiltinTemplateName, templateOptions) : loaded.chatTemplate;
      if (!template) throw new UsageError(`${dir} has no chat_template in tokenizer_config.json; pass --template NAME`, { details: { file: dir, field: '--template' } });

      let records: unknown[];
      if (recordsDialect === 'vlit') {
        // Canonical lines go to the linter unparsed, so a bad record is reported as a failing sample.
        const lines = await readJsonLines(input);
        if (lines.bad.length) throw new FormatError(`line ${lines.bad[0].line} is not JSON: ${lines.bad[0].message}`, { details: { file: input, record: lines.bad[0].line } });
        records = lines.values;
      } else {
        records = [];
        await assertRegularFile(input, { what: 'input' });
        for await (const r of readRecordsFile(input, { dialect: recordsDialect })) records.push(r);
      }
      const report = lintTemplate(records, { template, tokenizer: loaded.tokenizer, imageTokens, assistantTurns: turns as (typeof TURNS)[number], roundTrip: roundTrip as (typeof ROUND_TRIPS)[number] });
      if (values.json) printJson(io, report);
      else {
        io.stdout(formatLintReport(report, { color: !values['no-color'] && io.isTty === true, maxTokens }));
        io.stdout(`\n${report.ok ? 'ok' : 'FAILED'}: ${report.counts.samples} samples, ${report.counts.failed} failed, ${report.counts.issues} issues (template ${report.template})\n`);
      }
      return report.ok ? EXIT.ok : EXIT.failed;
    }),
};
