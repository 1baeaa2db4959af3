/** Types of export-names.mjs, for the export snapshot test. */
export interface PackageInfo {
  dir: string;
  name: string;
  pkg: { name: string; private?: boolean; exports?: Record<string, unknown> };
}
export function packages(): PackageInfo[];
export function exportNames(p: PackageInfo): Record<string, string[]>;
export function snapshotText(names: Record<string, string[]>): string;
export function sharedNames(all: Array<{ name: string; names: Record<string, string[]> }>): Array<{ name: string; packages: string[] }>;
