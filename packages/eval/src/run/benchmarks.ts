// The four benchmark families as `Benchmark` objects: how each asks the model, and how it scores.

import { IMAGE_PLACEHOLDER, InvalidArgumentError, type ChatMessage } from '@vlit/core';
import { z } from 'zod';
import type { JudgeVerdict } from '../judge.js';
import { scoreCaptions } from '../metrics/caption.js';
import { parsePopeAnswer, popeScores, type PopeQuestion } from '../metrics/pope.js';
import { scoreVqa } from '../metrics/vqa.js';
import { benchmarkImageSchema, multipleChoiceItemSchema, type BenchmarkImage, type MultipleChoiceItem } from '../mc/datasets.js';
import { extractChoice, optionLetter, type ExtractionMethod } from '../mc/extract.js';
import { sha256Hex, stableStringify } from '../sha256.js';
import type { BenchmarkDescription } from './manifest.js';
import type { Benchmark, BenchmarkResult, EvalUnit, GroupScore, ItemResult, Prediction } from './types.js';

function userMessage(images: readonly BenchmarkImage[], prompt: string): ChatMessage[] {
  const marks = images.map(() => IMAGE_PLACEHOLDER).join('');
  return [{ role: 'user', content: marks ? `${marks}\n${prompt}` : prompt }];
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in values ? values[k] : m));
}

function describe(
  id: string,
  kind: BenchmarkDescription['kind'],
  items: unknown[],
  source: string | undefined,
  settings: Record<string, unknown>,
): BenchmarkDescription {
  return { id, kind, sha256: sha256Hex(stableStringify(items)), source: source ?? null, items: items.length, settings };
}

function groupsFrom(entries: Array<{ group: string | undefined; value: number }>): Record<string, GroupScore> {
  const acc = new Map<string, { sum: number; correct: number; total: number }>();
  for (const { group, value } of entries) {
    if (group === undefined) continue;
    const g = acc.get(group) ?? { sum: 0, correct: 0, total: 0 };
    g.sum += value;
    g.correct += value === 1 ? 1 : 0;
    g.total += 1;
    acc.set(group, g);
  }
  const out: Record<string, GroupScore> = {};
  for (const [k, g] of acc) out[k] = { accuracy: g.sum / g.total, correct: g.correct, total: g.total };
  return out;
}

/** Multiple-choice scoring methods. */
export type MultipleChoiceMethod = 'likelihood' | 'generate';

/** Options for `createMultipleChoiceBenchmark`. */
export interface MultipleChoiceBenchmarkOptions {
  id: string;
  items: readonly MultipleChoiceItem[];
  /**
   * `likelihood` (SEED-Bench's method): score each option's text as the reply and pick the most
   * likely; `generate`: ask for a letter, read the reply with the extraction cascade (and a judge
   * when one is given and the cascade fails). Default `likelihood`.
   */
  method?: MultipleChoiceMethod;
  /** Likelihood: `mean` log-probability per token (length-normalised; SEED-Bench's choice) or `sum` (raw). Default `mean`. */
  normalization?: 'mean' | 'sum';
  /** Ask each question once per rotation of the options; correct only if every rotation is. */
  circular?: boolean;
  /** Prompt for likelihood scoring; `{hint}`, `{question}`, `{options}` are filled in. */
  likelihoodTemplate?: string;
  /** Prompt for generation; `{hint}`, `{question}`, `{options}` are filled in. */
  generateTemplate?: string;
  /** SHA-256 of the source file, for the manifest. */
  source?: string;
}

/** LLaVA-1.5's multiple-choice instruction. */
export const DEFAULT_MC_GENERATE_TEMPLATE = "{hint}{question}\n{options}\nAnswer with the option's letter from the given choices directly.";
/** SEED-Bench scores option texts as the reply to the bare question. */
export const DEFAULT_MC_LIKELIHOOD_TEMPLATE = '{hint}{question}';

/** Option order for rotation r of n options: position i shows original option (i + r) mod n. */
export function rotation(n: number, r: number): number[] {
  return Array.from({ length: n }, (_, i) => (i + r) % n);
}

/** A multiple-choice benchmark (SEED-Bench, MMBench, ...). */
export function createMultipleChoiceBenchmark(options: MultipleChoiceBenchmarkOptions): Benchmark {
  const items = options.items.map((it, i) => {
    const parsed = multipleChoiceItemSchema.safeParse(it);
    if (!parsed.success)
      throw new InvalidArgumentError(`invalid multiple-choice item: ${parsed.error.issues[0]?.message}`, {
        cause: parsed.error,
        details: { record: it.id ?? i, field: parsed.error.issues[0]?.path.join('.') },
      });
    if (parsed.data.answer >= parsed.data.options.length)
      throw new InvalidArgumentError(`answer ${parsed.data.answer} out of range`, { details: { record: it.id, field: 'answer' } });
    return parsed.data;
  });
  const ids = new Set<string>();
  for (const it of items) {
    if (ids.has(it.id)) throw new InvalidArgumentError(`duplicate item id ${it.id}`, { details: { record: it.id, field: 'id' } });
    ids.add(it.id);
  }
  const method = options.method ?? 'likelihood';
  const normalization = options.normalization ?? 'mean';
  const circular = options.circular ?? false;
  const likelihoodTemplate = options.likelihoodTemplate ?? DEFAULT_MC_LIKELIHOOD_TEMPLATE;
  const generateTemplate = options.generateTemplate ?? DEFAULT_MC_GENERATE_TEMPLATE;
  const settings = {
    method,
    circular,
    ...(method === 'likelihood' ? { normalization, template: likelihoodTemplate } : { template: generateTemplate }),
  };
  const rotations = (it: MultipleChoiceItem) => (circular ? it.options.length : 1);
  const promptFor = (it: MultipleChoiceItem, order: number[]) => {
    const shown = order.map((j) => it.options[j]);
    return fill(method === 'likelihood' ? likelihoodTemplate : generateTemplate, {
      hint: it.hint ? `${it.hint}\n` : '',
      question: it.question,
      options: shown.map((o, i) => `${optionLetter(i)}. ${o}`).join('\n'),
    });
  };
  return {
    id: options.id,
    kind: 'multiple-choice',
    describe: () => describe(options.id, 'multiple-choice', items, options.source, settings),
    units() {
      const out: EvalUnit[] = [];
      for (const it of items) {
        for (let r = 0; r < rotations(it); r++) {
          const order = rotation(it.options.length, r);
          const unit: EvalUnit = {
            key: `${it.id}#${r}`,
            mode: method === 'likelihood' ? 'score' : 'generate',
            messages: userMessage(it.images, promptFor(it, order)),
            images: it.images,
          };
          if (method === 'likelihood') unit.candidates = order.map((j) => it.options[j]);
          out.push(unit);
        }
      }
      return out;
    },
    async score(predictions, context) {
      const extraction: Partial<Record<ExtractionMethod, number>> = {};
      const judgeLog: Array<JudgeVerdict & { item: string }> = [];
      const itemResults: ItemResult[] = [];
      let passCorrect = 0;
      let passes = 0;
      for (const it of items) {
        const chosen: Array<number | null> = [];
        const methods: ExtractionMethod[] = [];
        let output: string | undefined;
        for (let r = 0; r < rotations(it); r++) {
          const order = rotation(it.options.length, r);
          const p: Prediction | undefined = predictions.get(`${it.id}#${r}`);
          let position: number | null = null;
          if (method === 'likelihood') {
            const scores = p?.scores;
            if (scores && scores.length === order.length) {
              let best = -Infinity;
              scores.forEach((s, i) => {
                const v = normalization === 'mean' ? (s.tokens > 0 ? s.logLikelihood / s.tokens : -Infinity) : s.logLikelihood;
                // Strictly greater: ties go to the earlier position.
                if (v > best) {
                  best = v;
                  position = i;
                }
              });
            }
          } else {
            const text = p?.text ?? '';
            if (r === 0) output = text;
            const shown = order.map((j) => it.options[j]);
            let read = extractChoice(text, shown);
            if (read.index === null && context.judge && p?.text !== undefined) {
              const verdict = await context.judge.choose({ question: it.question, options: shown, answer: text });
              judgeLog.push({ ...verdict, item: `${it.id}#${r}` });
              read = { index: verdict.index, method: verdict.index === null ? 'none' : 'judge' };
            }
            position = read.index;
            methods.push(read.method);
            extraction[read.method] = (extraction[read.method] ?? 0) + 1;
          }
          const original = position === null ? null : order[position];
          chosen.push(original);
          passes++;
          if (original === it.answer) passCorrect++;
        }
        const correct = chosen.every((c) => c === it.answer);
        itemResults.push({
          id: it.id,
          dimension: it.dimension,
          correct,
          chosen,
          answer: it.answer,
          ...(methods.length ? { methods } : {}),
          ...(output !== undefined ? { output } : {}),
        });
      }
      const correctCount = itemResults.filter((r) => r.correct).length;
      const metrics: Record<string, number> = { accuracy: items.length ? correctCount / items.length : 0 };
      if (circular) metrics.perPassAccuracy = passes ? passCorrect / passes : 0;
      const result: BenchmarkResult = {
        id: options.id,
        kind: 'multiple-choice',
        metrics,
        groups: groupsFrom(itemResults.map((r) => ({ group: r.dimension, value: r.correct ? 1 : 0 }))),
        items: itemResults,
        settings,
      };
      if (method === 'generate') result.extraction = extraction;
      if (judgeLog.length) result.judgeLog = judgeLog;
      return result;
    },
  };
}

/** One VQA question. */
export const vqaItemSchema = z.object({
  id: z.string().min(1),
  question: z.string(),
  images: z.array(benchmarkImageSchema).default([]),
  /** The human answers (ten in VQAv2). */
  answers: z.array(z.string()).min(1),
  answerType: z.string().optional(),
  questionType: z.string().optional(),
});
export type VqaItem = z.infer<typeof vqaItemSchema>;

/** LLaVA-1.5's short-answer instruction. */
export const DEFAULT_VQA_TEMPLATE = '{question}\nAnswer the question using a single word or phrase.';

/** A VQA benchmark scored with the official VQAv2 accuracy, broken down by answer type. */
export function createVqaBenchmark(options: { id: string; items: readonly VqaItem[]; template?: string; source?: string }): Benchmark {
  const items = options.items.map((it) => vqaItemSchema.parse(it));
  const template = options.template ?? DEFAULT_VQA_TEMPLATE;
  const settings = { template, metric: 'vqav2-accuracy' };
  return {
    id: options.id,
    kind: 'vqa',
    describe: () => describe(options.id, 'vqa', items, options.source, settings),
    units: () =>
      items.map((it) => ({ key: it.id, mode: 'generate', messages: userMessage(it.images, fill(template, { question: it.question })), images: it.images })),
    async score(predictions) {
      const preds = new Map(items.map((it) => [it.id, predictions.get(it.id)?.text ?? '']));
      const s = scoreVqa(items, preds);
      const groups: Record<string, GroupScore> = {};
      for (const [k, v] of Object.entries(s.perAnswerType))
        groups[k] = {
          accuracy: v,
          correct: items.filter((i) => i.answerType === k && s.perQuestion[i.id] === 1).length,
          total: items.filter((i) => i.answerType === k).length,
        };
      return {
        id: options.id,
        kind: 'vqa',
        metrics: { accuracy: s.accuracy },
        groups,
        items: items.map((it) => ({ id: it.id, dimension: it.answerType, score: s.perQuestion[it.id], output: preds.get(it.id) })),
        settings,
      };
    },
  };
}

/** One image to caption with its references. */
export const captionItemSchema = z.object({
  id: z.string().min(1),
  images: z.array(benchmarkImageSchema).min(1),
  references: z.array(z.string()).min(1),
});
export type CaptionItem = z.infer<typeof captionItemSchema>;

/** LLaVA-1.5's COCO caption instruction. */
export const DEFAULT_CAPTION_TEMPLATE = 'Provide a one-sentence caption for the provided image.';

/** A captioning benchmark scored with BLEU-1..4, ROUGE-L and CIDEr-D as pycocoevalcap computes them. */
export function createCaptionBenchmark(options: { id: string; items: readonly CaptionItem[]; template?: string; source?: string }): Benchmark {
  const items = options.items.map((it) => captionItemSchema.parse(it));
  const template = options.template ?? DEFAULT_CAPTION_TEMPLATE;
  const settings = { template, metrics: 'coco-caption (PTB rules, BLEU closest, ROUGE-L beta 1.2, CIDEr-D sigma 6)' };
  return {
    id: options.id,
    kind: 'caption',
    describe: () => describe(options.id, 'caption', items, options.source, settings),
    units: () => items.map((it) => ({ key: it.id, mode: 'generate', messages: userMessage(it.images, template), images: it.images })),
    async score(predictions) {
      const s = scoreCaptions(items.map((it) => ({ id: it.id, candidate: predictions.get(it.id)?.text ?? '', references: it.references })));
      return {
        id: options.id,
        kind: 'caption',
        metrics: { bleu1: s.bleu1, bleu2: s.bleu2, bleu3: s.bleu3, bleu4: s.bleu4, rougeL: s.rougeL, ciderD: s.ciderD },
        groups: {},
        items: items.map((it, i) => ({ id: it.id, score: s.perImage[i].ciderD, output: predictions.get(it.id)?.text ?? '' })),
        settings,
      };
    },
  };
}

/** POPE's question as LLaVA-1.5 asks it. */
export const DEFAULT_POPE_TEMPLATE = '{question}\nAnswer the question using a single word or phrase.';

/** A POPE benchmark over questions from `buildPopeQuestions` (or a POPE question file). */
export function createPopeBenchmark(options: { id: string; questions: readonly PopeQuestion[]; template?: string; source?: string }): Benchmark {
  const questions = [...options.questions];
  const template = options.template ?? DEFAULT_POPE_TEMPLATE;
  const settings = { template, answerRule: 'pope-evaluate.py' };
  return {
    id: options.id,
    kind: 'pope',
    describe: () => describe(options.id, 'pope', questions, options.source, settings),
    units: () =>
      questions.map((q) => ({ key: q.id, mode: 'generate', messages: userMessage([q.image], fill(template, { question: q.question })), images: [q.image] })),
    async score(predictions) {
      const outputs = questions.map((q) => predictions.get(q.id)?.text ?? '');
      const preds = outputs.map(parsePopeAnswer);
      const s = popeScores(
        questions.map((q) => q.label),
        preds,
      );
      const { count: _count, ...metrics } = s;
      return {
        id: options.id,
        kind: 'pope',
        metrics,
        groups: groupsFrom(questions.map((q, i) => ({ group: q.label, value: preds[i] === q.label ? 1 : 0 }))),
        items: questions.map((q, i) => ({ id: q.id, correct: preds[i] === q.label, output: outputs[i], answer: q.label })),
        settings,
      };
    },
  };
}
