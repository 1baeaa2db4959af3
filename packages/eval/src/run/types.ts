import type { CandidateScore, ChatMessage } from '@vlit/core';
import type { JudgeVerdict } from '../judge.js';
import type { BenchmarkImage } from '../mc/datasets.js';
import type { ExtractionMethod } from '../mc/extract.js';
import type { BenchmarkDescription } from './manifest.js';

/** The benchmark families. */
export type BenchmarkKind = 'multiple-choice' | 'vqa' | 'caption' | 'pope';

/** One model call a benchmark needs: a generation, or a scoring of candidate replies. */
export interface EvalUnit {
  /** Unique within the benchmark, e.g. `item-7#2` (item 7, rotation 2). */
  key: string;
  mode: 'generate' | 'score';
  messages: ChatMessage[];
  images: BenchmarkImage[];
  candidates?: string[];
}

/** What the model returned for a unit (this is what the prediction cache stores). */
export interface Prediction {
  text?: string;
  finishReason?: string;
  scores?: CandidateScore[];
  /** The model call failed (only with `onModelError: 'record'`); never cached. */
  error?: string;
}

/** Per-item outcome, for reports and audits. */
export interface ItemResult {
  id: string;
  dimension?: string;
  /** Correct (multiple choice, POPE) or the item's score (VQA accuracy, CIDEr-D). */
  correct?: boolean;
  score?: number;
  /** Raw model output (first rotation for multiple choice). */
  output?: string;
  /** Multiple choice: option index chosen per rotation (in original option order) and how it was read. */
  chosen?: Array<number | null>;
  methods?: ExtractionMethod[];
  answer?: string | number;
}

/** Accuracy of a group (dimension, answer type, ...). */
export interface GroupScore {
  accuracy: number;
  correct: number;
  total: number;
}

/** Scores of one benchmark in one run. Metric values are fractions (accuracy 0.283 = 28.3%). */
export interface BenchmarkResult {
  id: string;
  kind: BenchmarkKind;
  metrics: Record<string, number>;
  /** Multiple choice: by dimension code; VQA: by answer type; POPE: by label (yes / no). */
  groups: Record<string, GroupScore>;
  items: ItemResult[];
  /** Multiple choice by generation: how many answers each extraction step read. */
  extraction?: Partial<Record<ExtractionMethod, number>>;
  /** Every judge call with its prompt and reply. */
  judgeLog?: Array<JudgeVerdict & { item: string }>;
  settings: Record<string, unknown>;
}

/** Help a benchmark gets while scoring. */
export interface ScoringContext {
  judge?: import('../judge.js').Judge;
}

/** A benchmark: items, how to ask the model about them, and how to score the answers. */
export interface Benchmark {
  readonly id: string;
  readonly kind: BenchmarkKind;
  /** Content hash, source hash and settings, for the manifest. */
  describe(): BenchmarkDescription;
  /** The model calls needed. */
  units(): EvalUnit[];
  /** Score the predictions (by unit key). */
  score(predictions: ReadonlyMap<string, Prediction>, context: ScoringContext): Promise<BenchmarkResult>;
}
