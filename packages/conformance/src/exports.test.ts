/**
 * The public face of every package, pinned: each public package's entry points (read from its built
 * declaration files with the TypeScript compiler) export exactly the names in its api-names.txt, a list a
 * person reviews in the diff, so an accidental export shows up in review. And no name is exported by two
 * packages (issue 14: hashing, canonical JSON, sizes and options each live in one place).
 * Refresh after a deliberate change with `node scripts/export-names.mjs --write` and review the diff.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportNames, packages, sharedNames, snapshotText } from '../../../scripts/export-names.mjs';

const publicPackages = packages().filter((p) => !p.pkg.private);

describe('public export lists', () => {
  it.each(publicPackages.map((p) => [p.pkg.name, p] as const))(
    '%s exports exactly the names in its api-names.txt',
    (_name, p) => {
      const file = join(p.dir, 'api-names.txt');
      expect(existsSync(file), `${file} is missing: run node scripts/export-names.mjs --write and review it`).toBe(true);
      expect(snapshotText(exportNames(p))).toBe(readFileSync(file, 'utf8'));
    },
    120_000,
  );

  it('no name is exported by two packages', () => {
    const all = publicPackages.map((p) => ({ name: p.pkg.name, names: exportNames(p) }));
    expect(sharedNames(all)).toEqual([]);
  }, 120_000);
});
