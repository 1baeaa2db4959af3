import { InvalidArgumentError, ValidationError, createRng, type Rng } from '@vlit/core';
import { z } from 'zod';
import { BUILTIN_POOL_DATA } from './instruction-pool-data.js';

/** Bounding box coordinate formats an instruction pool can declare. */
export const boxFormatSchema = z.enum(['xyxy-pixels', 'xywh-pixels', 'xyxy-norm1', 'xyxy-norm1000']);
export type BoxFormat = z.infer<typeof boxFormatSchema>;

const SLOT_REGEX = /\{([a-z_][a-z0-9_]*)\}/g;

/** A pool of instruction phrasings for one task family; slots in braces are filled per sample. */
export const instructionPoolSchema = z
  .object({
    family: z.string().min(1),
    description: z.string().optional(),
    /** Slot names every phrasing may use; a phrasing using any other slot is invalid. */
    slots: z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/)).default([]),
    phrasings: z.array(z.string().min(1)).min(1),
    /** Coordinate format of boxes in this family's instructions and answers. */
    boxFormat: boxFormatSchema.optional(),
  })
  .superRefine((pool, ctx) => {
    const seen = new Set<string>();
    pool.phrasings.forEach((p, i) => {
      if (seen.has(p)) ctx.addIssue({ code: 'custom', path: ['phrasings', i], message: `duplicate phrasing ${JSON.stringify(p)}` });
      seen.add(p);
      for (const m of p.matchAll(SLOT_REGEX)) {
        if (!pool.slots.includes(m[1])) {
          ctx.addIssue({ code: 'custom', path: ['phrasings', i], message: `unknown slot {${m[1]}} (declared: ${pool.slots.join(', ') || 'none'})` });
        }
      }
    });
  });
export type InstructionPool = z.infer<typeof instructionPoolSchema>;
export type InstructionPoolInput = z.input<typeof instructionPoolSchema>;

/** Validate an instruction pool; throws ValidationError naming the pool and the failing field. */
export function parseInstructionPool(value: unknown): InstructionPool {
  const r = instructionPoolSchema.safeParse(value);
  if (r.success) return r.data;
  const family = value && typeof value === 'object' ? (value as { family?: unknown }).family : undefined;
  const issue = r.error.issues[0];
  throw new ValidationError(`invalid instruction pool: ${issue.message}`, {
    cause: r.error,
    details: { record: typeof family === 'string' ? family : '(pool)', field: issue.path.map(String).join('.') || '(root)' },
  });
}

/** The built-in pools, one per task family. */
export const builtinInstructionPools: readonly InstructionPool[] = BUILTIN_POOL_DATA.map(parseInstructionPool);

/** Fill `{slot}`s of a phrasing; a missing slot is an InvalidArgumentError (never left as literal braces). */
export function fillInstruction(phrasing: string, slots: Record<string, string | number> = {}): string {
  return phrasing.replace(SLOT_REGEX, (_, name: string) => {
    const v = slots[name];
    if (v === undefined) {
      throw new InvalidArgumentError(`slot {${name}} has no value`, { details: { field: `slots.${name}` } });
    }
    return String(v);
  });
}

/** A box as [x1, y1, x2, y2] in pixels of an image of the given size. */
export interface PixelBox {
  box: readonly [number, number, number, number];
  width: number;
  height: number;
}

/** Format a pixel box in a declared coordinate format, e.g. `[120, 40, 560, 380]` for xyxy-norm1000. */
export function formatBox(input: PixelBox, format: BoxFormat): string {
  const [x1, y1, x2, y2] = input.box;
  const { width, height } = input;
  if (!(width > 0 && height > 0) || !(x2 >= x1 && y2 >= y1) || x1 < 0 || y1 < 0 || x2 > width || y2 > height) {
    throw new InvalidArgumentError(`box [${input.box.join(', ')}] is not inside a ${width}x${height} image`, { details: { field: 'box' } });
  }
  const r = (v: number, digits: number): string => Number(v.toFixed(digits)).toString();
  switch (format) {
    case 'xyxy-pixels':
      return `[${[x1, y1, x2, y2].map((v) => Math.round(v)).join(', ')}]`;
    case 'xywh-pixels':
      return `[${[x1, y1, x2 - x1, y2 - y1].map((v) => Math.round(v)).join(', ')}]`;
    case 'xyxy-norm1':
      return `[${[x1 / width, y1 / height, x2 / width, y2 / height].map((v) => r(v, 3)).join(', ')}]`;
    case 'xyxy-norm1000':
      return `[${[x1 / width, y1 / height, x2 / width, y2 / height].map((v) => Math.round(v * 1000)).join(', ')}]`;
  }
}

/** Which phrasings to sample from: seen during training, or held out to test unseen instructions. */
export type InstructionSplit = 'train' | 'heldout';

/** Options of createInstructionSampler. */
export interface InstructionSamplerOptions {
  seed: number | string;
  /** Pools to use; defaults to the built-in pools. More can be registered later. */
  pools?: readonly InstructionPoolInput[];
  /** Phrasings held out per family: a count, or a fraction in (0, 1). Chosen by seed. Default 0. */
  holdout?: number;
}

/** One sampled instruction. */
export interface SampledInstruction {
  family: string;
  text: string;
  /** Index of the phrasing in its pool. */
  phrasingIndex: number;
  split: InstructionSplit;
}

/** Deterministic instruction sampling by seed, with held-out phrasings. */
export interface InstructionSampler {
  /** Family names, in registration order. */
  families(): string[];
  /** The pool of a family. */
  pool(family: string): InstructionPool;
  /** Phrasing indices of a family in a split. */
  phrasingIndices(family: string, split?: InstructionSplit): number[];
  /** Add or replace a pool (validated). */
  register(pool: unknown): void;
  /**
   * Sample a phrasing and fill its slots. With `key` (e.g. a record id) the choice depends only on
   * (seed, family, key), so it is stable under reordering; without it, a sequential stream is used.
   */
  sample(family: string, slots?: Record<string, string | number>, options?: { key?: string | number; split?: InstructionSplit }): SampledInstruction;
}

/** Create a seeded instruction sampler over the built-in (or given) pools. */
export function createInstructionSampler(options: InstructionSamplerOptions): InstructionSampler {
  const root = createRng(options.seed);
  const stream = root.fork('stream');
  const holdout = options.holdout ?? 0;
  if (!(holdout >= 0) || (holdout >= 1 && !Number.isInteger(holdout))) {
    throw new InvalidArgumentError(`holdout must be a count or a fraction in [0, 1), got ${holdout}`, { details: { field: 'holdout' } });
  }
  const pools = new Map<string, { pool: InstructionPool; train: number[]; heldout: number[] }>();
  const register = (value: unknown): void => {
    const pool = parseInstructionPool(value);
    const n = pool.phrasings.length;
    const k = holdout < 1 ? Math.floor(n * holdout) : holdout;
    if (k >= n) {
      throw new InvalidArgumentError(`holdout ${k} leaves no training phrasings in family ${pool.family} (${n} phrasings)`, {
        details: { record: pool.family, field: 'holdout' },
      });
    }
    // Fork by family name so holding out in one family never changes another's choice.
    const held = root
      .fork(`holdout:${pool.family}`)
      .sample(
        pool.phrasings.map((_, i) => i),
        k,
      )
      .sort((a, b) => a - b);
    const heldSet = new Set(held);
    pools.set(pool.family, { pool, heldout: held, train: pool.phrasings.map((_, i) => i).filter((i) => !heldSet.has(i)) });
  };
  for (const p of options.pools ?? builtinInstructionPools) register(p);
  const get = (family: string): { pool: InstructionPool; train: number[]; heldout: number[] } => {
    const entry = pools.get(family);
    if (!entry) {
      throw new InvalidArgumentError(`unknown instruction family '${family}'; known: ${[...pools.keys()].join(', ')}`, {
        details: { field: 'family' },
      });
    }
    return entry;
  };
  return {
    families: () => [...pools.keys()],
    pool: (family) => get(family).pool,
    phrasingIndices: (family, split = 'train') => get(family)[split].slice(),
    register,
    sample(family, slots = {}, sampleOptions = {}) {
      const entry = get(family);
      const split = sampleOptions.split ?? 'train';
      const indices = entry[split];
      if (!indices.length) {
        throw new InvalidArgumentError(`family ${family} has no ${split} phrasings`, { details: { field: 'split' } });
      }
      const rng: Rng = sampleOptions.key !== undefined ? root.fork(`${family}\u0000${split}\u0000${String(sampleOptions.key)}`) : stream;
      const phrasingIndex = rng.choice(indices);
      return { family, text: fillInstruction(entry.pool.phrasings[phrasingIndex], slots), phrasingIndex, split };
    },
  };
}
