import { ValidationError, isVlitError, parseVlitRecord, type RenderedSegment, type Tokenizer } from '@vlit/core';
import { encodeConversation, type EncodeOptions, type EncodedSample } from './encode.js';

/** What a lint finding is about. */
export type LintIssueCode = 'invalid-record' | 'image-count' | 'all-masked' | 'inference-mismatch' | 'boundary-straddle' | 'round-trip' | 'encode-error';

/** One finding; `message` always names the sample and, where tokens are at fault, the tokens. */
export interface LintIssue {
  code: LintIssueCode;
  message: string;
  field?: string;
  messageIndex?: number;
  /** The offending tokens, decoded. */
  tokens?: string[];
  /** For inference mismatches: what the inference prompt tokenizes to at the same place. */
  expectedTokens?: string[];
}

/** One token of a linted sample. */
export interface LintToken {
  id: number;
  text: string;
  trained: boolean;
  /** Part of an expanded image span. */
  image: boolean;
}

/** The linter's finding for one record. */
export interface LintSampleReport {
  id: string | number;
  ok: boolean;
  issues: LintIssue[];
  tokens: LintToken[];
}

/** The linter's report: JSON-serialisable as is. */
export interface LintReport {
  template: string;
  tokenizer: string;
  ok: boolean;
  samples: LintSampleReport[];
  counts: { samples: number; failed: number; issues: number };
}

/** Options of lintTemplate. */
export interface LintOptions extends Omit<EncodeOptions, 'boundaries' | 'allowEmptyLabels' | 'maxLength' | 'truncation'> {
  /**
   * How decode(encode(x)) must match x per segment: `exact`, or `ignore-whitespace` (default) for
   * tokenizers whose decoders re-space text (word-level, SentencePiece); lost characters still fail.
   */
  roundTrip?: 'exact' | 'ignore-whitespace' | 'off';
}

const show = (t: string): string => JSON.stringify(t);

function tokenTexts(tokenizer: Tokenizer, ids: readonly number[]): string[] {
  return ids.map((id) => tokenizer.decode([id]));
}

function checkInference(sample: EncodedSample, messagesOf: (n: number) => unknown[], options: LintOptions, issues: LintIssue[]): void {
  const { template, tokenizer } = options;
  const segs: RenderedSegment[] = sample.segments;
  const full = tokenizer.encode(sample.text, { addSpecialTokens: false });
  let charAt = 0;
  for (let j = 0; j < segs.length; j++) {
    const seg = segs[j];
    const segStart = charAt;
    charAt += seg.text.length;
    if (!seg.trainable || seg.messageIndex < 0) continue;
    if (j > 0 && segs[j - 1].trainable && segs[j - 1].messageIndex === seg.messageIndex) continue;
    const i = seg.messageIndex;
    const history = messagesOf(i) as Parameters<typeof template.render>[0];
    const prompt = template.render(history, { ...options.renderOptions, addGenerationPrompt: true });
    const trainingText = sample.text.slice(0, segStart);
    if (prompt !== trainingText) {
      issues.push({
        code: 'inference-mismatch',
        messageIndex: i,
        message: `sample ${sample.id}: the inference prompt for messages 0..${i - 1} is not the training text before assistant message ${i}: inference ends ${show(prompt.slice(-40))}, training ends ${show(trainingText.slice(-40))}`,
      });
      continue;
    }
    if (!full.offsets) continue;
    const promptIds = tokenizer.encode(prompt, { addSpecialTokens: false }).ids;
    let k = 0;
    while (k < full.ids.length && full.offsets[k][1] <= segStart) k++;
    let d = 0;
    while (d < promptIds.length && d < k && promptIds[d] === full.ids[d]) d++;
    if (d === promptIds.length && d === k) continue;
    const got = tokenTexts(tokenizer, full.ids.slice(d, Math.max(k, d) + 1));
    const expected = tokenTexts(tokenizer, promptIds.slice(d));
    issues.push({
      code: 'inference-mismatch',
      messageIndex: i,
      tokens: got,
      expectedTokens: expected,
      message: `sample ${sample.id}: before assistant message ${i} the prompt tokenizes differently in context: inference ends with tokens [${expected.map(show).join(', ')}], training has [${got.map(show).join(', ')}] at token ${d}`,
    });
  }
}

function checkRoundTrip(sample: EncodedSample, options: LintOptions, issues: LintIssue[]): void {
  const mode = options.roundTrip ?? 'ignore-whitespace';
  if (mode === 'off') return;
  const { tokenizer } = options;
  const full = tokenizer.encode(sample.text, { addSpecialTokens: false });
  if (!full.offsets) return;
  let charAt = 0;
  let t = 0;
  for (const seg of sample.segments) {
    const start = charAt;
    const end = charAt + seg.text.length;
    charAt = end;
    while (t < full.ids.length && full.offsets[t][0] < start) t++;
    const inside: number[] = [];
    let u = t;
    while (u < full.ids.length && full.offsets[u][1] <= end) inside.push(u++);
    if (!inside.length) continue;
    const covered = sample.text.slice(full.offsets[inside[0]][0], full.offsets[inside[inside.length - 1]][1]);
    const decoded = tokenizer.decode(inside.map((k) => full.ids[k]));
    const same = mode === 'exact' ? decoded === covered : decoded.replace(/\s+/g, '') === covered.replace(/\s+/g, '');
    if (!same) {
      issues.push({
        code: 'round-trip',
        messageIndex: seg.messageIndex,
        tokens: tokenTexts(
          tokenizer,
          inside.map((k) => full.ids[k]),
        ),
        message: `sample ${sample.id}: tokens of segment ${show(seg.text.slice(0, 40))} decode to ${show(decoded.slice(0, 60))}, not ${show(covered.slice(0, 60))}`,
      });
    }
  }
}

/** Lint a template + tokenizer against records: which tokens are trained, and every way labels could be wrong. */
export function lintTemplate(records: Iterable<unknown>, options: LintOptions): LintReport {
  const { template, tokenizer } = options;
  const ignore = options.ignoreIndex ?? -100;
  const samples: LintSampleReport[] = [];
  let index = 0;
  for (const raw of records) {
    const issues: LintIssue[] = [];
    let tokens: LintToken[] = [];
    let id: string | number = index;
    try {
      const record = parseVlitRecord(raw, { record: index });
      id = record.id;
      const sample = encodeConversation(record, { ...options, boundaries: 'warn', allowEmptyLabels: true }, index);
      const imageAt = new Set<number>();
      for (const s of sample.imageSpans) for (let k = s.start; k < s.end; k++) imageAt.add(k);
      tokens = sample.inputIds.map((tid, k) => ({
        id: tid,
        text: imageAt.has(k) ? template.imageToken : tokenizer.decode([tid]),
        trained: sample.labels[k] !== ignore,
        image: imageAt.has(k),
      }));
      if (!tokens.some((t) => t.trained)) {
        issues.push({ code: 'all-masked', field: 'messages', message: `sample ${id}: every label is masked, so its loss is zero` });
      }
      for (const b of sample.boundaryIssues) {
        issues.push({
          code: 'boundary-straddle',
          tokens: [b.token],
          message: `sample ${id}: token ${show(b.token)} (id ${b.tokenId}) at position ${b.position} spans segments ${b.segments.map((s) => show(s.slice(-30))).join(' | ')}, so the turn boundary falls inside a token`,
        });
      }
      checkInference(sample, (n) => record.messages.slice(0, n), options, issues);
      checkRoundTrip(sample, options, issues);
    } catch (err) {
      if (!isVlitError(err)) throw err;
      const field = err.details.field;
      if (typeof err.details.record === 'string' || typeof err.details.record === 'number') id = err.details.record;
      const reason = typeof err.details.reason === 'string' ? err.details.reason : err.message;
      const code: LintIssueCode = field === 'images' ? 'image-count' : err.code === 'VLIT_VALIDATION' ? 'invalid-record' : 'encode-error';
      issues.push({ code, ...(field !== undefined ? { field } : {}), message: `sample ${id}: ${reason}` });
    }
    samples.push({ id, ok: issues.length === 0, issues, tokens });
    index++;
  }
  const failed = samples.filter((s) => !s.ok).length;
  return {
    template: template.name,
    tokenizer: tokenizer.id,
    ok: failed === 0,
    samples,
    counts: { samples: samples.length, failed, issues: samples.reduce((n, s) => n + s.issues.length, 0) },
  };
}

/** Throw a ValidationError listing every failing sample (id, issue, offending tokens) when the report is not clean. */
export function assertLintClean(report: LintReport): void {
  if (report.ok) return;
  const lines = report.samples.flatMap((s) => s.issues.map((i) => `[${i.code}] ${i.message}`));
  const first = report.samples.find((s) => !s.ok)!;
  throw new ValidationError(`template ${report.template} failed lint on ${report.counts.failed} sample(s):\n${lines.join('\n')}`, {
    details: { record: first.id, field: first.issues[0].field ?? 'messages', issues: lines },
  });
}

const ANSI = { reset: '\u001b[0m', green: '\u001b[42;30m', dim: '\u001b[2m', magenta: '\u001b[35m', red: '\u001b[31m', bold: '\u001b[1m' };

/** Render a lint report as terminal text: trained tokens highlighted, masked ones dim, images collapsed. */
export function formatLintReport(report: LintReport, options: { color?: boolean; maxTokens?: number } = {}): string {
  const color = options.color ?? true;
  const maxTokens = options.maxTokens ?? 400;
  const paint = (code: string, text: string): string => (color ? code + text + ANSI.reset : text);
  const out: string[] = [];
  out.push(paint(ANSI.bold, `template ${report.template} / tokenizer ${report.tokenizer}: ${report.counts.samples} sample(s), ${report.counts.failed} failed`));
  for (const s of report.samples) {
    out.push(`${s.ok ? paint(ANSI.green, ' OK ') : paint(ANSI.red, 'FAIL')} sample ${s.id}`);
    const parts: string[] = [];
    for (let k = 0; k < s.tokens.length && k < maxTokens; k++) {
      const t = s.tokens[k];
      if (t.image) {
        let n = 1;
        while (k + n < s.tokens.length && s.tokens[k + n].image) n++;
        parts.push(paint(ANSI.magenta, `[${t.text}x${n}]`));
        k += n - 1;
        continue;
      }
      // Plain (uncoloured) output marks trained tokens with brackets so the split stays visible.
      const text = JSON.stringify(t.text).slice(1, -1);
      parts.push(t.trained ? (color ? paint(ANSI.green, text) : `[${text}]`) : paint(ANSI.dim, text));
    }
    if (s.tokens.length > maxTokens) parts.push(`... (${s.tokens.length - maxTokens} more)`);
    if (parts.length) out.push('  ' + parts.join(color ? '' : ' '));
    for (const i of s.issues) out.push('  ' + paint(ANSI.red, `x ${i.code}: ${i.message}`));
  }
  return out.join('\n');
}
