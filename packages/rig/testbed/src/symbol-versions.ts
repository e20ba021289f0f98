import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { elfVersionNeeds } from './elf.js';

/**
 * Symbol-version check: the newest GLIBC_* / GLIBCXX_* / CXXABI_* version any shipped ELF file
 * requires must exist on the target OS, else the dynamic loader refuses to start it
 * ("version `GLIBC_2.38' not found").
 */
export type VersionFamily = 'GLIBC' | 'GLIBCXX' | 'CXXABI';
export const VERSION_FAMILIES: readonly VersionFamily[] = ['GLIBC', 'GLIBCXX', 'CXXABI'];

export interface TargetOs {
  id: string;
  name: string;
  /** Newest version of each family the OS provides. */
  newest: Record<VersionFamily, string>;
  /** Where each figure comes from, and whether it was checked on this machine. */
  sources: Array<{ what: string; url: string; verified: string }>;
}

/**
 * GCC release → libstdc++ version labels: "GCC 12.1.0: GLIBCXX_3.4.30, CXXABI_1.3.13",
 * "GCC 14.1.0: GLIBCXX_3.4.33, CXXABI_1.3.15".
 */
const GCC_ABI = {
  what: 'GCC → GLIBCXX/CXXABI mapping',
  url: 'https://gcc.gnu.org/onlinedocs/libstdc++/manual/abi.html',
  verified:
    'page itself not readable here; the 14.1.0 and 12.1.0 lines were read in the patch adding them to abi.xml ' +
    '(https://gcc.gnu.org/pipermail/libstdc++/2024-April/058588.html)',
};

export const TARGET_OSES: readonly TargetOs[] = [
  {
    id: 'ubuntu-24.04',
    name: 'Ubuntu 24.04 LTS (noble)',
    newest: { GLIBC: '2.39', GLIBCXX: '3.4.33', CXXABI: '1.3.15' },
    sources: [
      {
        what: 'libc6 2.39 (glibc 2.39)',
        url: 'https://packages.ubuntu.com/noble/libc6',
        verified: 'unverified here (page not reachable)',
      },
      {
        what: 'libstdc++6 from GCC 14',
        url: 'https://packages.ubuntu.com/noble/libstdc++6',
        verified: 'unverified here (page not reachable)',
      },
      GCC_ABI,
    ],
  },
  {
    id: 'debian-12',
    name: 'Debian 12 (bookworm)',
    newest: { GLIBC: '2.36', GLIBCXX: '3.4.30', CXXABI: '1.3.13' },
    sources: [
      {
        what: 'libc6 2.36-9+deb12u14 (glibc 2.36)',
        url: 'https://packages.debian.org/bookworm/libc6',
        verified: 'verified on this Debian 12 machine: newest GLIBC_ in objdump -T /lib/x86_64-linux-gnu/libc.so.6',
      },
      {
        what: 'libstdc++6 12.2.0-14+deb12u1 (GCC 12)',
        url: 'https://packages.debian.org/bookworm/libstdc++6',
        verified:
          'verified on this Debian 12 machine: newest GLIBCXX_/CXXABI_ in ' +
          'objdump -T /lib/x86_64-linux-gnu/libstdc++.so.6',
      },
      GCC_ABI,
    ],
  },
];

/** "2.36" vs "2.4": numeric, component by component. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Splits `GLIBC_2.34` into family + number; null for other families (GCC_*, GOMP_*, OMP_*). */
export function parseVersionLabel(label: string): { family: VersionFamily; number: string } | null {
  const m = /^(GLIBCXX|GLIBC|CXXABI)_(.+)$/.exec(label);
  if (!m || !VERSION_FAMILIES.includes(m[1] as VersionFamily)) return null;
  return { family: m[1] as VersionFamily, number: m[2]! };
}

export interface FileRequirements {
  file: string;
  /** Newest required version per family (absent: the file needs none of that family). */
  newest: Partial<Record<VersionFamily, string>>;
  /** Labels of these families that are not numbered (e.g. GLIBC_PRIVATE): never portable. */
  unnumbered: string[];
  /** Every version label the file requires, with the library it is looked up in. */
  labels: Array<{ library: string; version: string }>;
}

/** Reads each file's version needs (`readelf -V`, the same data `objdump -T` prints). */
export async function requiredVersions(files: string[]): Promise<FileRequirements[]> {
  const out: FileRequirements[] = [];
  for (const file of files) {
    const labels = await elfVersionNeeds(file);
    const newest: Partial<Record<VersionFamily, string>> = {};
    const unnumbered: string[] = [];
    for (const { version } of labels) {
      const p = parseVersionLabel(version);
      if (!p) continue;
      if (!/^\d+(\.\d+)*$/.test(p.number)) unnumbered.push(version);
      else if (!newest[p.family] || compareVersions(p.number, newest[p.family]!) > 0) newest[p.family] = p.number;
    }
    out.push({ file, newest, unnumbered, labels });
  }
  return out;
}

export interface Violation {
  file: string;
  os: string;
  label: string;
  available: string;
}

/** Every (file, OS) pair where a required version is newer than (or not one of) what the OS has. */
export function checkAgainst(reqs: FileRequirements[], oses: readonly TargetOs[] = TARGET_OSES): Violation[] {
  const bad: Violation[] = [];
  for (const r of reqs) {
    for (const os of oses) {
      for (const [family, number] of Object.entries(r.newest) as Array<[VersionFamily, string]>) {
        const have = os.newest[family];
        if (compareVersions(number, have) > 0)
          bad.push({ file: r.file, os: os.id, label: `${family}_${number}`, available: `${family}_${have}` });
      }
      for (const label of r.unnumbered)
        bad.push({ file: r.file, os: os.id, label, available: 'no portable equivalent' });
    }
  }
  return bad;
}

/** Throws naming each offending file, the version it needs and what the OS has; returns the requirements otherwise. */
export async function assertSymbolVersions(
  files: string[],
  oses: readonly TargetOs[] = TARGET_OSES,
): Promise<FileRequirements[]> {
  const reqs = await requiredVersions(files);
  const bad = checkAgainst(reqs, oses);
  if (bad.length) {
    const lines = bad.map((v) => `  ${v.file} needs ${v.label}; ${v.os} has ${v.available}`);
    throw new Error(`symbol versions newer than the target OS provides:\n${lines.join('\n')}`);
  }
  return reqs;
}

/** ELF files (by magic number) directly in `dirs`: what a runtime archive ships. */
export async function elfFilesIn(dirs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const dir of dirs) {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (!e.isFile()) continue;
      const fh = await open(join(dir, e.name), 'r');
      const head = Buffer.alloc(4);
      await fh.read(head, 0, 4, 0).finally(() => fh.close());
      if (head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) files.push(join(dir, e.name));
    }
  }
  return files.sort();
}
