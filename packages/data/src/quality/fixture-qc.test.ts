import { describe, expect, it } from 'vitest';
import { createSharpCodec } from '@vlit/runtime/node';
import { FIXTURE_FAULTS, createMemoryImageLoader, defaultQualityFilters, generateCocoFixture, runQualityControl, type FixtureFault } from './index.js';

const codec = createSharpCodec();

describe('quality control on a generated COCO-style fixture with planted faults', () => {
  it('removes every planted fault with the right filter and reason, keeps every clean record, and counts add up', async () => {
    const faults = Object.fromEntries(FIXTURE_FAULTS.map((f) => [f, 2])) as Record<FixtureFault, number>;
    const fx = await generateCocoFixture({ images: 40, seed: 7, codec, faults });
    expect(fx.manifest.faults).toHaveLength(FIXTURE_FAULTS.length * 2);
    const result = await runQualityControl(fx.records, defaultQualityFilters(), {
      annotations: fx.annotations,
      images: { codec, load: createMemoryImageLoader(fx.images) },
    });
    const { counts } = result;
    expect(counts.read).toBe(fx.records.length);
    expect(counts.kept + counts.rejected).toBe(counts.read);
    const byId = new Map(result.rejects.map((r) => [r.id, r]));
    const wrong = fx.manifest.faults
      .map((f) => ({ f, got: byId.get(f.recordId) }))
      .filter(({ f, got }) => got?.filter !== f.filter || got?.reason !== f.reason)
      .map(({ f, got }) => `${f.recordId} ${f.fault}: expected ${f.filter}/${f.reason}, got ${got ? `${got.filter}/${got.reason} (${got.message})` : 'kept'}`);
    expect(wrong).toEqual([]);
    const falseRejects = result.rejects.filter((r) => fx.manifest.clean.includes(r.id)).map((r) => `${r.id} ${r.filter}/${r.reason}: ${r.message}`);
    expect(falseRejects).toEqual([]);
    expect(result.kept.map((r) => r.id).sort()).toEqual([...fx.manifest.clean].sort());
    expect(counts.rejected).toBe(fx.manifest.faults.length);
    expect(Object.values(counts.byReason).every((n) => n === 2)).toBe(true);
    expect(Object.keys(counts.byReason)).toHaveLength(FIXTURE_FAULTS.length);
  }, 60_000);

  it.each([
    [1, 'png', 60],
    [2, 'jpeg', 60],
    [3, 'png', 80],
  ] as const)(
    'seed %i (%s, %i images): every fault removed with its reason, no clean record lost',
    async (seed, format, images) => {
      const faults = Object.fromEntries(FIXTURE_FAULTS.map((f) => [f, 1 + (seed % 3)])) as Record<FixtureFault, number>;
      const fx = await generateCocoFixture({ images, seed, codec, format, faults, turns: seed });
      const r = await runQualityControl(fx.records, defaultQualityFilters(), {
        annotations: fx.annotations,
        images: { codec, load: createMemoryImageLoader(fx.images) },
      });
      const got = new Map(r.rejects.map((x) => [x.id, `${x.filter}/${x.reason}`]));
      expect(fx.manifest.faults.filter((f) => got.get(f.recordId) !== `${f.filter}/${f.reason}`)).toEqual([]);
      expect(r.counts.kept).toBe(fx.manifest.clean.length);
      expect(r.counts.read).toBe(r.counts.kept + r.counts.rejected);
    },
    60_000,
  );
});
