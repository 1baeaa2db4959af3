import { createRng, InvalidArgumentError } from '@vlit/core';
import { planMixture, type MixPlan, type MixStrategy } from './plan.js';

/** One drawn item of a mixture. */
export interface MixSample<T> {
  source: string;
  /** Index of the item in its source. */
  index: number;
  /** Pass over the source it came from (0 = first). */
  epoch: number;
  item: T;
}

/**
 * Draw a plan's samples deterministically by seed: each source gives whole passes, each a fresh
 * shuffle, then part of one more; sources are interleaved evenly (stratified positions), so every
 * prefix of the output is close to the planned proportions.
 */
export function sampleMixture<T>(sources: Readonly<Record<string, readonly T[]>>, plan: MixPlan, options: { seed: number | string }): MixSample<T>[] {
  const root = createRng(options.seed);
  const keyed: Array<{ key: number; sample: MixSample<T> }> = [];
  for (const entry of plan.sources) {
    const items = sources[entry.name];
    if (!items)
      throw new InvalidArgumentError(`plan names source ${entry.name} but no items were given for it`, { details: { field: `sources.${entry.name}` } });
    if (items.length !== entry.size)
      throw new InvalidArgumentError(`source ${entry.name} has ${items.length} items but the plan says ${entry.size}`, {
        details: { field: `sources.${entry.name}` },
      });
    const rng = root.fork(`source:${entry.name}`);
    const drawn: MixSample<T>[] = [];
    for (let epoch = 0; drawn.length < entry.samples; epoch++) {
      const order = rng.fork(`epoch:${epoch}`).shuffle(items.map((_, i) => i));
      for (const index of order.slice(0, entry.samples - drawn.length)) drawn.push({ source: entry.name, index, epoch, item: items[index] });
    }
    const jitter = rng.fork('interleave');
    drawn.forEach((sample, k) => keyed.push({ key: (k + jitter.float()) / entry.samples, sample }));
  }
  keyed.sort((a, b) => a.key - b.key);
  return keyed.map((k) => k.sample);
}

/** Group items by a key (task, category, source). */
export function groupBy<T>(items: Iterable<T>, key: (item: T) => string): Record<string, T[]> {
  const out: Record<string, T[]> = {};
  for (const it of items) (out[key(it)] ??= []).push(it);
  return out;
}

/** Options of balanceByCategory. */
export interface BalanceOptions<T> {
  category: (item: T) => string;
  /** `downsample` every category to the smallest (or `perCategory`); `upsample` to the largest (or `perCategory`), repeating items; `temperature` keeps the total with p ∝ n^(1/T). */
  mode: 'downsample' | 'upsample' | 'temperature';
  perCategory?: number;
  temperature?: number;
  seed: number | string;
}

/** Per-category balancing; returns the drawn items (in an even interleave) and the plan used. */
export function balanceByCategory<T>(items: readonly T[], options: BalanceOptions<T>): { items: T[]; plan: MixPlan } {
  const groups = groupBy(items, options.category);
  const names = Object.keys(groups).sort();
  const sizes = names.map((n) => groups[n].length);
  let plan: MixPlan;
  if (options.mode === 'temperature') {
    plan = planMixture({ sources: names.map((name, i) => ({ name, size: sizes[i] })), strategy: 'temperature', temperature: options.temperature ?? 2 });
  } else {
    const target = options.perCategory ?? (options.mode === 'downsample' ? Math.min(...sizes) : Math.max(...sizes));
    const per = names.map((_, i) => (options.mode === 'downsample' ? Math.min(sizes[i], target) : target));
    const strategy: MixStrategy = 'weighted';
    plan = planMixture({ sources: names.map((name, i) => ({ name, size: sizes[i], weight: per[i] })), strategy, total: per.reduce((a, b) => a + b, 0) });
  }
  return { items: sampleMixture(groups, plan, { seed: options.seed }).map((s) => s.item), plan };
}
