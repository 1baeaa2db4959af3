/**
 * Mixing plans: how many samples each source (or task, or category) contributes to a training
 * mixture, and how many effective epochs that is per source.
 */
import { InvalidArgumentError, type VlitWarning } from '@vlit/core';

/** One source of a mixture. */
export interface MixSource {
  name: string;
  /** Records available. */
  size: number;
  /** Weight for the `weighted` strategy. */
  weight?: number;
  /** Cap on effective epochs of this source (samples <= maxEpochs * size); overrides the plan's cap. */
  maxEpochs?: number;
}

/** How mixing probabilities are chosen. */
export type MixStrategy = 'proportional' | 'temperature' | 'weighted';

/** Options of planMixture. */
export interface MixPlanOptions {
  sources: readonly MixSource[];
  /** `proportional`: p_i ∝ n_i; `temperature`: p_i ∝ n_i^(1/T); `weighted`: p_i ∝ w_i (default: weighted when every source has a weight, else temperature). */
  strategy?: MixStrategy;
  /** T of temperature mixing (default 1: proportional; larger flattens towards uniform). */
  temperature?: number;
  /** Samples in the mixture (default: the sum of sizes). */
  total?: number;
  /** Cap on effective epochs of every source; what a capped source cannot take goes to the others. */
  maxEpochs?: number;
}

/** One source in a plan. */
export interface MixPlanEntry {
  name: string;
  size: number;
  /** Mixing probability p_i (before integer rounding and caps). */
  probability: number;
  /** Samples drawn from it. */
  samples: number;
  /** samples / size: passes over the source. */
  effectiveEpochs: number;
}

/** A mixing plan. */
export interface MixPlan {
  strategy: MixStrategy;
  temperature?: number;
  total: number;
  sources: MixPlanEntry[];
  warnings: VlitWarning[];
}

/** Mixing probabilities of sources under a strategy. */
export function mixingProbabilities(sources: readonly MixSource[], strategy: MixStrategy, temperature = 1): number[] {
  if (!(temperature > 0)) throw new InvalidArgumentError(`temperature must be > 0, got ${temperature}`, { details: { field: 'temperature' } });
  const raw = sources.map((s) => {
    if (strategy === 'weighted') {
      if (s.weight === undefined || !(s.weight >= 0))
        throw new InvalidArgumentError(`source ${s.name} needs a weight >= 0 for weighted mixing`, { details: { field: `sources.${s.name}.weight` } });
      return s.size > 0 ? s.weight : 0;
    }
    return strategy === 'proportional' ? s.size : s.size ** (1 / temperature);
  });
  const total = raw.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new InvalidArgumentError('mixing weights sum to zero', { details: { field: 'sources' } });
  return raw.map((r) => r / total);
}

/** Integers summing to `total`, proportional to `shares` (largest remainder; ties to the earlier entry). */
export function largestRemainder(shares: readonly number[], total: number): number[] {
  const sum = shares.reduce((a, b) => a + b, 0);
  const exact = shares.map((s) => (sum > 0 ? (s / sum) * total : 0));
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0 && k < order.length; k++, left--) out[order[k][1]]++;
  return out;
}

/** Plan a mixture: probabilities, samples per source (summing to `total` unless caps prevent it) and effective epochs. */
export function planMixture(options: MixPlanOptions): MixPlan {
  const { sources } = options;
  if (!sources.length) throw new InvalidArgumentError('a mixture needs at least one source', { details: { field: 'sources' } });
  const names = new Set<string>();
  for (const s of sources) {
    if (names.has(s.name)) throw new InvalidArgumentError(`source ${s.name} appears twice`, { details: { field: 'sources' } });
    names.add(s.name);
    if (!Number.isInteger(s.size) || s.size < 0)
      throw new InvalidArgumentError(`source ${s.name} has size ${s.size}`, { details: { field: `sources.${s.name}.size` } });
  }
  const strategy = options.strategy ?? (sources.every((s) => s.weight !== undefined) ? 'weighted' : 'temperature');
  const temperature = options.temperature ?? 1;
  const p = mixingProbabilities(sources, strategy, temperature);
  const requested = options.total ?? sources.reduce((a, s) => a + s.size, 0);
  if (!Number.isInteger(requested) || requested < 0)
    throw new InvalidArgumentError(`total must be a non-negative integer, got ${requested}`, { details: { field: 'total' } });
  const caps = sources.map((s) => {
    const e = s.maxEpochs ?? options.maxEpochs;
    return e === undefined ? Infinity : Math.floor(e * s.size);
  });
  // Water-filling: fix capped sources at their cap and share the rest among the others by p.
  const samples = new Array<number>(sources.length).fill(0);
  const fixed = new Set<number>();
  let remaining = requested;
  for (;;) {
    const free = sources.map((_, i) => i).filter((i) => !fixed.has(i) && p[i] > 0);
    if (!free.length) break;
    const alloc = largestRemainder(
      free.map((i) => p[i]),
      remaining,
    );
    const over = free.filter((i, k) => alloc[k] > caps[i]);
    if (!over.length) {
      free.forEach((i, k) => (samples[i] = alloc[k]));
      remaining = 0;
      break;
    }
    for (const i of over) {
      samples[i] = caps[i];
      fixed.add(i);
      remaining -= caps[i];
    }
  }
  const warnings: VlitWarning[] = [];
  const total = samples.reduce((a, b) => a + b, 0);
  if (total < requested) {
    warnings.push({
      code: 'VLIT_W_MIX_CAPPED',
      message: `epoch caps allow only ${total} of the ${requested} requested samples`,
      details: { requested, total },
    });
  }
  return {
    strategy,
    ...(strategy === 'temperature' ? { temperature } : {}),
    total,
    sources: sources.map((s, i) => ({ name: s.name, size: s.size, probability: p[i], samples: samples[i], effectiveEpochs: s.size ? samples[i] / s.size : 0 })),
    warnings,
  };
}
