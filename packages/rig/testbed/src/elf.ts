import { $ } from 'zx';

/** Small readers of ELF dynamic-section facts, via binutils' `readelf` (present wherever gcc is). */

async function readelf(args: string[], file: string): Promise<string> {
  const r = await $({ quiet: true, nothrow: true })`readelf ${args} ${file}`;
  if (r.exitCode !== 0)
    throw new Error(`readelf ${args.join(' ')} ${file} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** DT_NEEDED entries (library names as the dynamic loader looks them up). */
export async function elfNeeded(file: string): Promise<string[]> {
  const out = await readelf(['-d', '-W'], file);
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
}

/** DT_RUNPATH (or DT_RPATH when that is what the file has), or null. */
export async function elfRunpath(file: string): Promise<{ tag: 'RUNPATH' | 'RPATH'; value: string } | null> {
  const out = await readelf(['-d', '-W'], file);
  const m = /\((RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[([^\]]*)\]/.exec(out);
  return m ? { tag: m[1] as 'RUNPATH' | 'RPATH', value: m[2]! } : null;
}

/** One required symbol version: the library that must provide it and the version name. */
export interface VersionNeed {
  library: string;
  version: string;
}

/** The `.gnu.version_r` entries (what `objdump -T` shows as `(GLIBC_2.34)` etc.), per library. */
export async function elfVersionNeeds(file: string): Promise<VersionNeed[]> {
  const out = await readelf(['-V', '-W'], file);
  const section = out.split(/^Version needs section/m)[1] ?? '';
  const needs: VersionNeed[] = [];
  let library = '';
  for (const line of section.split('\n')) {
    const f = /File: (\S+)/.exec(line);
    if (f) {
      library = f[1]!;
      continue;
    }
    const n = /Name: (\S+)/.exec(line);
    if (n && library) needs.push({ library, version: n[1]! });
    if (/^\S/.test(line)) break; // the next section
  }
  return needs;
}
