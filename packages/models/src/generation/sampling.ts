/**
 * Next-token selection from one row of logits, in the order Hugging Face's logits processors apply:
 * repetition penalty, temperature, top-k, top-p, then greedy argmax or a draw from the seeded RNG.
 */
import { InvalidArgumentError, type Rng } from '@vlit/core';

/** Settings of one sampling step. */
export interface SamplingOptions {
  /** 0 or undefined: greedy (argmax). Otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (0/undefined: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1/undefined: all). */
  topP?: number;
  /** > 1 discourages tokens already present: positive logits divided, negative ones multiplied (CTRL / Hugging Face). */
  repetitionPenalty?: number;
}

/** Check sampling settings; InvalidArgumentError names the field. */
export function checkSamplingOptions(o: SamplingOptions): void {
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) {
    throw new InvalidArgumentError(`temperature must be >= 0, got ${o.temperature}`, { details: { field: 'temperature' } });
  }
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) {
    throw new InvalidArgumentError(`topK must be a non-negative integer, got ${o.topK}`, { details: { field: 'topK' } });
  }
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) {
    throw new InvalidArgumentError(`topP must be in (0, 1], got ${o.topP}`, { details: { field: 'topP' } });
  }
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) {
    throw new InvalidArgumentError(`repetitionPenalty must be > 0, got ${o.repetitionPenalty}`, { details: { field: 'repetitionPenalty' } });
  }
}

/** True when the settings pick the argmax. */
export function isGreedy(o: SamplingOptions): boolean {
  return !o.temperature || o.topK === 1;
}

/** Apply the repetition penalty to logits (float64 copy) for every id in `history`. */
export function applyRepetitionPenalty(logits: ArrayLike<number>, history: Iterable<number>, penalty: number | undefined): Float64Array {
  const out = Float64Array.from(logits as ArrayLike<number>);
  if (penalty === undefined || penalty === 1) return out;
  for (const id of new Set(history)) {
    if (id < 0 || id >= out.length) continue;
    out[id] = out[id] < 0 ? out[id] * penalty : out[id] / penalty;
  }
  return out;
}

/** Index of the largest value (the lowest index on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * The distribution sampling draws from: penalised logits / temperature, softmax, restricted to the
 * top-k and then the top-p nucleus, renormalised. Zero outside the kept set.
 */
export function samplingDistribution(logits: ArrayLike<number>, history: Iterable<number>, o: SamplingOptions): Float64Array {
  const x = applyRepetitionPenalty(logits, history, o.repetitionPenalty);
  const t = o.temperature && o.temperature > 0 ? o.temperature : 1;
  // Stable descending order: ties keep the lower id first, as argmax does.
  const order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b);
  let keep = o.topK && o.topK > 0 ? Math.min(o.topK, order.length) : order.length;
  const max = x[order[0]];
  const p = new Float64Array(x.length);
  let z = 0;
  for (let r = 0; r < keep; r++) z += p[order[r]] = Math.exp((x[order[r]] - max) / t);
  if (o.topP !== undefined && o.topP < 1) {
    let cum = 0;
    let r = 0;
    for (; r < keep; r++) {
      cum += p[order[r]] / z;
      if (cum >= o.topP) break;
    }
    const cut = Math.min(r + 1, keep);
    for (let i = cut; i < keep; i++) p[order[i]] = 0;
    keep = cut;
    z = 0;
    for (let i = 0; i < keep; i++) z += p[order[i]];
  }
  for (let i = 0; i < keep; i++) p[order[i]] /= z;
  return p;
}

/** Pick the next token: argmax when greedy, else a draw from samplingDistribution with `rng`. */
export function selectNextToken(logits: ArrayLike<number>, history: Iterable<number>, o: SamplingOptions, rng: Rng): number {
  if (isGreedy(o))
    return o.repetitionPenalty === undefined || o.repetitionPenalty === 1
      ? argmax(logits)
      : argmax(applyRepetitionPenalty(logits, history, o.repetitionPenalty));
  const p = samplingDistribution(logits, history, o);
  const u = rng.float();
  let cum = 0;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    cum += p[i];
    last = i;
    if (u < cum) return i;
  }
  return last;
}

/** log-softmax of one row in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] - max);
  const lz = max + Math.log(z);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lz;
  return out;
}
