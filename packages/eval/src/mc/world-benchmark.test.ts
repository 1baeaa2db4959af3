// The synthetic world's held-out benchmark (built by @vlit/data) must read through eval's real SEED-Bench
// reader with nothing skipped, the same answers and the dimension codes SEED-Bench-1 defines.
import { describe, expect, it } from 'vitest';
import { buildWorldBenchmark, createWorld, toSeedBenchJson } from '@vlit/data';
import { parseSeedBench, SEED_DIMENSIONS } from './datasets.js';

describe('the synthetic world benchmark through the SEED-Bench reader', () => {
  const world = createWorld({ seed: 5 });
  const questions = buildWorldBenchmark(world.scenes('heldout', 60), { seed: 5 });

  it.each(['seen', 'unseen'] as const)('%s phrasings: every question is read, none skipped, answers and dimensions kept', (phrasing) => {
    // Through JSON text, as a file on disk would be read.
    const parsed = parseSeedBench(JSON.parse(JSON.stringify(toSeedBenchJson(questions, phrasing))));
    expect(parsed.skipped).toEqual([]);
    expect(parsed.read).toBe(questions.length);
    expect(parsed.items).toHaveLength(questions.length);
    const codes = new Set(SEED_DIMENSIONS.map((d) => d.code));
    parsed.items.forEach((item, i) => {
      const q = questions[i];
      expect(item.answer).toBe(q.answer);
      expect(item.options).toEqual(q.options);
      expect(item.images).toEqual([q.image]);
      expect(codes.has(item.dimension ?? '')).toBe(true);
      expect(item.dimension).toBe(q.dimension);
      expect(item.question).toBe(phrasing === 'seen' ? q.question : q.unseenQuestion);
    });
  });
});
