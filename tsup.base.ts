/**
 * The one tsup setup every Vlit package builds with. A package's tsup.config.ts names only its entries:
 *
 *   export default vlitTsup({ entry: ['src/index.ts', 'src/node.ts'] });
 *
 * ESM only, ES2022, .d.ts per entry, source maps. `__VLIT_VERSION__` is replaced at build time by the
 * `version` of the package.json in the directory tsup runs in, so no source file hard-codes a version.
 * Entries listed in `bin` get a `#!/usr/bin/env node` line and the executable bit; library entries and
 * shared chunks never do. Only entries are bundled, so test files (`*.test.ts`) and a package's own
 * test helpers (`src/testing/`) stay out of dist/ unless library code imports them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, type Options } from 'tsup';

/** What a package tells the shared setup. */
export interface VlitTsupOptions {
  /** Library entries, one per `exports` subpath (e.g. `src/index.ts`, `src/node.ts`). */
  entry: string[];
  /** Executable entries (e.g. `src/cli.ts`): bundled like the others, plus a hashbang; no .d.ts. */
  bin?: string[];
  /** Packages to leave as imports even if tsup would otherwise bundle them. */
  external?: string[];
  /** Directory whose package.json gives `__VLIT_VERSION__` (default: the working directory, i.e. the package). */
  packageDir?: string;
}

/** The package.json `version` of the package being built (tsup runs with the package as cwd). */
export function packageVersion(dir: string = process.cwd()): string {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new TypeError(`${join(dir, 'package.json')} has no string "version"`);
  return pkg.version;
}

const HASHBANG = '#!/usr/bin/env node\n';

/** Prepends the hashbang to the bin entries' output only (esbuild's `banner` would put it in every file). */
function hashbangFor(binEntries: string[]): NonNullable<Options['plugins']>[number] {
  const wanted = new Set(binEntries.map((e) => e.replace(/^\.\//, '')));
  return {
    name: 'vlit-bin-hashbang',
    renderChunk(code, info) {
      if (info.type !== 'chunk' || !info.entryPoint || !wanted.has(info.entryPoint.replace(/^\.\//, ''))) return;
      if (code.startsWith('#!')) return;
      // Shift the source map down one generated line instead of re-mapping: the hashbang maps to nothing.
      if (info.map) {
        const map = typeof info.map === 'string' ? (JSON.parse(info.map) as { mappings: string }) : (info.map as { mappings: string });
        info.map = { ...map, mappings: `;${map.mappings}` } as typeof info.map;
      }
      info.mode = 0o755;
      return { code: HASHBANG + code };
    },
  };
}

/** The tsup config for one Vlit package: only its entries differ from package to package. */
export function vlitTsup(options: VlitTsupOptions): Options {
  const bin = options.bin ?? [];
  return defineConfig({
    entry: [...options.entry, ...bin],
    format: ['esm'],
    target: 'es2022',
    dts: { entry: options.entry },
    clean: true,
    sourcemap: true,
    external: options.external,
    define: { __VLIT_VERSION__: JSON.stringify(packageVersion(options.packageDir)) },
    plugins: bin.length > 0 ? [hashbangFor(bin)] : [],
  }) as Options;
}
