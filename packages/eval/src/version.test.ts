import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'tsup';
import { afterAll, describe, expect, it } from 'vitest';
import { vlitTsup } from '../../../tsup.base.js';
import { VLIT_VERSION } from './version.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkgVersion = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
const tmp = mkdtempSync(join(tmpdir(), 'vlit-version-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('VLIT_VERSION is injected from package.json at build time', () => {
  it('the built dist/ exports package.json version and keeps no placeholder', async () => {
    const built = (await import(pathToFileURL(join(pkgDir, 'dist', 'index.js')).href)) as { VLIT_VERSION: string };
    expect(built.VLIT_VERSION).toBe(pkgVersion);
    for (const f of readdirSync(join(pkgDir, 'dist')).filter((n) => n.endsWith('.js'))) {
      expect(readFileSync(join(pkgDir, 'dist', f), 'utf8')).not.toContain('__VLIT_VERSION__');
    }
  });

  it('source under vitest sees the same version', () => {
    expect(VLIT_VERSION).toBe(pkgVersion);
  });

  it('the shared tsup base takes the version from whichever package.json it builds', async () => {
    // A made-up package whose version appears nowhere in the source: the build must carry it through.
    const fake = join(tmp, 'pkg');
    const out = join(tmp, 'out');
    mkdirSync(fake, { recursive: true });
    writeFileSync(join(fake, 'package.json'), JSON.stringify({ name: 'fake', version: '9.8.7-test.3' }));
    const config = vlitTsup({ entry: [join(pkgDir, 'src', 'version.ts')], packageDir: fake });
    await build({ ...config, dts: false, sourcemap: false, outDir: out, silent: true, config: false });
    const mod = (await import(pathToFileURL(join(out, 'version.js')).href)) as { VLIT_VERSION: string };
    expect(mod.VLIT_VERSION).toBe('9.8.7-test.3');
  });
});
