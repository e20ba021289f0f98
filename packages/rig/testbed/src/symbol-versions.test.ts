import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $ } from 'zx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLlamaBuild } from './llama-build.js';
import {
  assertSymbolVersions,
  checkAgainst,
  compareVersions,
  elfFilesIn,
  requiredVersions,
  TARGET_OSES,
} from './symbol-versions.js';

const BUILD_TIMEOUT = 40 * 60_000;

describe('symbol-version data and comparison', () => {
  it('compares numerically, component by component', () => {
    expect(compareVersions('2.36', '2.4')).toBeGreaterThan(0);
    expect(compareVersions('3.4.30', '3.4.30')).toBe(0);
    expect(compareVersions('3.4', '3.4.1')).toBeLessThan(0);
  });

  it('records Ubuntu 24.04 and Debian 12 with a documentation page for each figure', () => {
    expect(TARGET_OSES.map((o) => o.id)).toEqual(['ubuntu-24.04', 'debian-12']);
    for (const os of TARGET_OSES) {
      expect(os.sources.length).toBeGreaterThanOrEqual(3);
      for (const s of os.sources)
        expect(s.url).toMatch(/^https:\/\/(packages\.ubuntu\.com|packages\.debian\.org|gcc\.gnu\.org)\//);
    }
  });

  const debian12 = existsSync('/etc/debian_version') && /^12\./.test(readFileSync('/etc/debian_version', 'utf8'));
  it.skipIf(!debian12)('the Debian 12 figures are what this Debian 12 machine has (verified, not copied)', async () => {
    const newest = async (lib: string, family: string) =>
      (await $({ quiet: true })`objdump -T ${lib}`).stdout
        .match(new RegExp(`\\b${family}_[0-9.]+`, 'g'))!
        .map((l) => l.slice(family.length + 1))
        .sort(compareVersions)
        .at(-1);
    const os = TARGET_OSES.find((o) => o.id === 'debian-12')!;
    expect(await newest('/lib/x86_64-linux-gnu/libc.so.6', 'GLIBC')).toBe(os.newest.GLIBC);
    expect(await newest('/lib/x86_64-linux-gnu/libstdc++.so.6', 'GLIBCXX')).toBe(os.newest.GLIBCXX);
    expect(await newest('/lib/x86_64-linux-gnu/libstdc++.so.6', 'CXXABI')).toBe(os.newest.CXXABI);
  });
});

describe('fixtures that need newer versions than the targets have', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'symver-'));
    // a library exporting its symbols under version labels the targets lack, and programs linked to it
    await writeFile(join(dir, 'lib.c'), 'int fancy(void) { return 42; }\nint cxx(void) { return 7; }\n');
    await writeFile(
      join(dir, 'ver.map'),
      'GLIBC_2.99 { global: fancy; local: *; };\nGLIBCXX_3.4.31 { global: cxx; };\n',
    );
    await writeFile(join(dir, 'a.c'), 'int fancy(void);\nint main(void) { return fancy(); }\n');
    await writeFile(join(dir, 'b.c'), 'int cxx(void);\nint main(void) { return cxx(); }\n');
    const sh = $({ quiet: true, cwd: dir });
    await sh`gcc -shared -fPIC -Wl,--version-script=ver.map -Wl,-soname,libfake.so -o libfake.so lib.c`;
    await sh`gcc -o needs-glibc-2.99 a.c -L. -lfake`;
    await sh`gcc -o needs-glibcxx-3.4.31 b.c -L. -lfake`;
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rejects GLIBC_2.99 for both OSes, naming the file and the version', async () => {
    const file = join(dir, 'needs-glibc-2.99');
    await expect(assertSymbolVersions([file])).rejects.toThrow(`${file} needs GLIBC_2.99; ubuntu-24.04 has GLIBC_2.39`);
    await expect(assertSymbolVersions([file])).rejects.toThrow(`${file} needs GLIBC_2.99; debian-12 has GLIBC_2.36`);
  });

  it('GLIBCXX_3.4.31 (GCC 13) passes for Ubuntu 24.04 and is rejected for Debian 12', async () => {
    const file = join(dir, 'needs-glibcxx-3.4.31');
    const bad = checkAgainst(await requiredVersions([file]));
    expect(bad).toEqual([{ file, os: 'debian-12', label: 'GLIBCXX_3.4.31', available: 'GLIBCXX_3.4.30' }]);
  });
});

describe('the dispatch build against the target OSes', () => {
  let files: string[];
  beforeAll(async () => {
    const build = await ensureLlamaBuild({ variant: 'dispatch' });
    files = await elfFilesIn([build.binDir, join(build.binDir, '..', 'lib')]);
  }, BUILD_TIMEOUT);

  it('every shipped ELF file needs no newer GLIBC/GLIBCXX/CXXABI than Ubuntu 24.04 and Debian 12 have', async () => {
    expect(files.some((f) => f.endsWith('/llama-server'))).toBe(true);
    expect(files.filter((f) => /libggml-cpu-\w+\.so$/.test(f)).length).toBeGreaterThanOrEqual(4);
    const reqs = await assertSymbolVersions(files);
    const newest = (family: 'GLIBC' | 'GLIBCXX' | 'CXXABI') =>
      reqs
        .map((r) => r.newest[family])
        .filter((v): v is string => !!v)
        .sort(compareVersions)
        .at(-1);
    console.log(
      `[symbol-versions] newest needed: GLIBC_${newest('GLIBC')} GLIBCXX_${newest('GLIBCXX')} ` +
        `CXXABI_${newest('CXXABI')}`,
    );
    // the check looked at real requirements (a C++ program linked against glibc and libstdc++)
    expect(newest('GLIBC')).toBeDefined();
    expect(newest('GLIBCXX')).toBeDefined();
  });

  it('reads the same requirements objdump -T shows', async () => {
    const server = files.find((f) => f.endsWith('/llama-server'))!;
    const objdump = (await $({ quiet: true })`objdump -T ${server}`).stdout;
    const fromObjdump = new Set(objdump.match(/\b(GLIBC|GLIBCXX|CXXABI)_[0-9.]+\b/g));
    const [req] = await requiredVersions([server]);
    const fromReadelf = new Set(req!.labels.map((l) => l.version).filter((v) => /^(GLIBC|GLIBCXX|CXXABI)_/.test(v)));
    expect(fromReadelf).toEqual(fromObjdump);
  });
});
