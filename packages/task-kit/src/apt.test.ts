import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDeb } from '../test-support/deb.js';
import { aptFromMirror, APT_MIRROR_SUBDIR, readDebs, selectDebs } from './apt.js';

describe('aptFromMirror (installing the appliance packages from a mirror, no network)', () => {
  let work: string;
  let mirror: string;
  let broken: string;
  const none = new Map<string, string>();

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'slm-apt-'));
    mirror = path.join(work, 'mirror');
    broken = path.join(work, 'broken');
    await mkdir(path.join(mirror, APT_MIRROR_SUBDIR), { recursive: true });
    await mkdir(path.join(broken, APT_MIRROR_SUBDIR), { recursive: true });
    await makeDeb(path.join(mirror, APT_MIRROR_SUBDIR), 'slm-fixture-a', '1.0-1', 'slm-fixture-b (>= 1.0)');
    await makeDeb(path.join(mirror, APT_MIRROR_SUBDIR), 'slm-fixture-b', '1.0-1');
    // the broken mirror lacks the dependency
    await makeDeb(path.join(broken, APT_MIRROR_SUBDIR), 'slm-fixture-a', '1.0-1', 'slm-fixture-b (>= 1.0)');
  }, 60_000);
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('reads package, version and architecture of each .deb', async () => {
    const debs = await readDebs(path.join(mirror, APT_MIRROR_SUBDIR));
    expect(debs.map((d) => [d.package, d.version, d.architecture])).toEqual([
      ['slm-fixture-a', '1.0-1', 'all'],
      ['slm-fixture-b', '1.0-1', 'all'],
    ]);
  });

  it('selects new and newer packages, never a downgrade or a reinstall (dpkg version order)', async () => {
    const debs = await readDebs(path.join(mirror, APT_MIRROR_SUBDIR));
    const pick = async (installed: Record<string, string>) =>
      (await selectDebs(debs, new Map(Object.entries(installed)))).map((d) => d.package);
    expect(await pick({})).toEqual(['slm-fixture-a', 'slm-fixture-b']);
    expect(await pick({ 'slm-fixture-b': '1.0-1' })).toEqual(['slm-fixture-a']);
    expect(await pick({ 'slm-fixture-b': '1.0~rc1-1' })).toEqual(['slm-fixture-a', 'slm-fixture-b']); // ~ sorts before
    expect(await pick({ 'slm-fixture-b': '1.0-2' })).toEqual(['slm-fixture-a']);
  });

  it('resolves the request and its dependency from the mirror alone (apt-get -s --no-download)', async () => {
    const r = await aptFromMirror(mirror, ['slm-fixture-a'], { simulate: true, installed: none });
    expect(r.missing).toEqual(['slm-fixture-a']);
    expect(r.debs.map((f) => path.basename(f))).toEqual(['slm-fixture-a_1.0-1_all.deb', 'slm-fixture-b_1.0-1_all.deb']);
    expect(r.output).toMatch(/^Inst slm-fixture-a /m);
    expect(r.output).toMatch(/^Inst slm-fixture-b /m);
  }, 60_000);

  it('fails naming the dependency a mirror lacks (it cannot come from the network)', async () => {
    await expect(aptFromMirror(broken, ['slm-fixture-a'], { simulate: true, installed: none })).rejects.toThrow(
      /slm-fixture-b/,
    );
  }, 60_000);

  it('refuses a request the mirror has no .deb for, by name', async () => {
    await expect(
      aptFromMirror(mirror, ['slm-fixture-a', 'slm-not-mirrored'], { simulate: true, installed: none }),
    ).rejects.toThrow(/has no \.deb for: slm-not-mirrored/);
  });

  it('does nothing when every requested package is installed', async () => {
    const r = await aptFromMirror(path.join(work, 'no-such-mirror'), ['slm-fixture-a'], {
      installed: new Map([['slm-fixture-a', '0.1']]),
    });
    expect(r).toEqual({ missing: [], debs: [], output: '' });
  });
});
