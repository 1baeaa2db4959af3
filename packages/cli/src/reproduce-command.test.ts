/**
 * `vlit reproduce` itself, run in-process at its smallest: one variant, one seed, the quick size. The
 * command's JSON must parse and agree with the results.md it wrote; the trained model beats the chance
 * its own benchmark implies; bad --seeds and --variant values are one line and exit 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vlit as run } from './testing/harness.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vlit-reproduce-cmd-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Stats {
  values: number[];
  mean: number;
  spread: number;
}

describe('vlit reproduce', () => {
  it('--quick --seeds 1 --variant b --json trains, evaluates and writes results.md that agrees with the JSON', async () => {
    const out = join(dir, 'run');
    const r = await run('reproduce', out, '--quick', '--seeds', '1', '--variant', 'b', '--json');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as {
      markdownPath: string;
      seeds: number[];
      chance: Record<string, number>;
      variants: Array<{ id: string; seen: Record<string, Stats>; unseen: Record<string, Stats> }>;
    };
    expect(json.seeds).toEqual([1]);
    expect(json.variants.map((v) => v.id)).toEqual(['b']);
    const [b] = json.variants;
    // Options per question are known (the benchmark's), so chance is a probability below one half.
    expect(json.chance.Overall).toBeGreaterThan(0);
    expect(json.chance.Overall).toBeLessThan(0.5);
    expect(b.seen.Overall.values).toHaveLength(1);
    // One seed: the mean is that seed's value and the spread is 0.
    expect(b.seen.Overall.mean).toBe(b.seen.Overall.values[0]);
    expect(b.seen.Overall.spread).toBe(0);
    expect(b.seen.Overall.mean).toBeGreaterThan(json.chance.Overall);
    expect(existsSync(json.markdownPath)).toBe(true);
    const md = readFileSync(json.markdownPath, 'utf8');
    // The table row of (b) shows its overall accuracy in percent with one decimal, as the JSON has it.
    expect(md).toContain((100 * b.seen.Overall.mean).toFixed(1));
    expect(md).toMatch(/Overall/);
  }, 600_000);

  it('bad --seeds or --variant: one line naming the flag (plus the pointer to --help), exit 2, nothing trained', async () => {
    for (const argv of [
      ['reproduce', join(dir, 'bad1'), '--seeds', 'x,2'],
      ['reproduce', join(dir, 'bad2'), '--variant', 'zz'],
    ]) {
      const r = await run(...argv);
      expect(r.code).toBe(2);
      // The error is one line; usage errors add the standard pointer to --help on a second.
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^vlit reproduce: .*(--seeds|--variant)/);
      expect(lines[1]).toContain("'vlit reproduce --help'");
      expect(existsSync(argv[1])).toBe(false);
    }
  });
});
