/** `vlit data lint` (alias `vlit lint-template`): check that a chat template and tokenizer agree on every sample's labels. */
import { FormatError } from '@vlit/core';
import { assertRegularFile } from '@vlit/core/node';
import { builtinTemplateNames, createBuiltinTemplate, formatLintReport, lintTemplate, type BuiltinTemplateName } from '@vlit/templates';
import { loadTokenizerDir } from '@vlit/templates/node';
import { readJsonLinesFile, readRecordsFile } from '@vlit/data/node';
import { defineCommand, num, str } from '../define.js';
import { EXIT, dialect, positionals, printJson, required, UsageError } from '../shared.js';

const ROUND_TRIPS = ['exact', 'ignore-whitespace', 'off'] as const;
const TURNS = ['all', 'last', 'flagged'] as const;

export const lintTemplateCommand = defineCommand({
  name: 'data lint',
  aliases: ['lint-template'],
  summary: 'lint a chat template + tokenizer over records (exit 1 when it finds errors)',
  usage: 'data lint --tokenizer DIR [--template NAME] IN [options]',
  description: `Encode every record of IN with the chat template and the tokenizer of DIR (tokenizer.json, and
tokenizer_config.json when present), and report masked-label, image-count, inference-mismatch,
boundary-straddle and round-trip problems, each naming the sample and the offending tokens.
Exits 1 when any sample fails.`,
  flags: [
    { name: 'tokenizer', type: 'string', arg: 'DIR', description: 'directory with tokenizer.json [+ tokenizer_config.json] (required)' },
    {
      name: 'template',
      type: 'string',
      arg: 'NAME',
      description: `a built-in template (${builtinTemplateNames.join(', ')});\ndefault: the chat_template of DIR's tokenizer_config.json`,
    },
    { name: 'image-token', type: 'string', arg: 'TEXT', description: 'the single token an image expands from (template option)' },
    { name: 'image-text', type: 'string', arg: 'TEXT', description: 'what an image renders as (template option)' },
    { name: 'image-tokens', type: 'integer', arg: 'N', default: 1, min: 1, description: 'tokens per image after expansion' },
    { name: 'assistant-turns', type: 'string', arg: 'all|last|flagged', description: 'which assistant turns are trained (default all)' },
    { name: 'round-trip', type: 'string', arg: 'exact|ignore-whitespace|off', description: 'decode(encode(x)) strictness (default ignore-whitespace)' },
    { name: 'dialect', type: 'string', arg: 'NAME', description: 'dialect of IN (default vlit)' },
    { name: 'max-tokens', type: 'integer', arg: 'N', default: 400, min: 1, description: 'tokens shown per sample' },
    { name: 'no-color', type: 'boolean', description: 'plain output (trained tokens in [brackets]); default when not a terminal' },
  ],
  examples: [
    {
      command: 'vlit data lint --tokenizer models/qwen3 --template chatml kept.jsonl',
      note: 'check that chatml + the Qwen3 tokenizer mask exactly the assistant tokens',
    },
    { command: 'vlit data lint --tokenizer models/qwen3 kept.jsonl --json > lint.json', note: 'the full report as JSON (exit 1 when a sample fails)' },
  ],
  action: async ({ values, positionals: pos, io }) => {
    const [input] = positionals(pos, ['IN']);
    const dir = required(str(values, 'tokenizer'), 'tokenizer');
    const name = str(values, 'template');
    if (name !== undefined && !(builtinTemplateNames as readonly string[]).includes(name)) {
      throw new UsageError(`unknown template '${name}' for --template; expected one of ${builtinTemplateNames.join(', ')}`, {
        details: { field: '--template' },
      });
    }
    const roundTrip = str(values, 'round-trip') ?? 'ignore-whitespace';
    if (!(ROUND_TRIPS as readonly string[]).includes(roundTrip))
      throw new UsageError(`--round-trip must be one of ${ROUND_TRIPS.join(', ')}, got '${roundTrip}'`, { details: { field: '--round-trip' } });
    const turns = str(values, 'assistant-turns') ?? 'all';
    if (!(TURNS as readonly string[]).includes(turns))
      throw new UsageError(`--assistant-turns must be one of ${TURNS.join(', ')}, got '${turns}'`, { details: { field: '--assistant-turns' } });
    const imageTokens = num(values, 'image-tokens');
    const maxTokens = num(values, 'max-tokens');
    const recordsDialect = dialect(str(values, 'dialect') ?? 'vlit', 'dialect');

    const templateOptions = {
      ...(str(values, 'image-token') !== undefined ? { imageToken: str(values, 'image-token') } : {}),
      ...(str(values, 'image-text') !== undefined ? { imageText: str(values, 'image-text') } : {}),
    };
    const loaded = await loadTokenizerDir(dir, templateOptions);
    const template = name !== undefined ? createBuiltinTemplate(name as BuiltinTemplateName, templateOptions) : loaded.chatTemplate;
    if (!template)
      throw new UsageError(`${dir} has no chat_template in tokenizer_config.json; pass --template NAME`, { details: { file: dir, field: '--template' } });

    let records: unknown[];
    if (recordsDialect === 'vlit') {
      // Canonical lines go to the linter unparsed, so a bad record is reported as a failing sample.
      await assertRegularFile(input, { what: 'input' });
      const lines = await readJsonLinesFile(input);
      if (lines.rejects.length)
        throw new FormatError(`line ${lines.rejects[0].line} is not JSON: ${lines.rejects[0].message}`, {
          details: { file: input, record: lines.rejects[0].line },
        });
      records = lines.values;
    } else {
      records = [];
      await assertRegularFile(input, { what: 'input' });
      for await (const r of readRecordsFile(input, { dialect: recordsDialect })) records.push(r);
    }
    const report = lintTemplate(records, {
      template,
      tokenizer: loaded.tokenizer,
      imageTokens,
      assistantTurns: turns as (typeof TURNS)[number],
      roundTrip: roundTrip as (typeof ROUND_TRIPS)[number],
    });
    if (values.json === true) printJson(io, report);
    else {
      io.stdout(formatLintReport(report, { color: !(values['no-color'] === true) && io.isTty === true, maxTokens }));
      io.stdout(
        `\n${report.ok ? 'ok' : 'FAILED'}: ${report.counts.samples} samples, ${report.counts.failed} failed, ${report.counts.issues} issues (template ${report.template})\n`,
      );
    }
    return report.ok ? EXIT.ok : EXIT.failed;
  },
});
