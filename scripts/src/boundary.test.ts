import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkBoundary,
  deadCacheKeyPatterns,
  forbiddenInput,
  manifestViolations,
  readWorkspace,
  shippingEntries,
} from './boundary.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const temps: string[] = [];
afterAll(async () => {
  for (const t of temps) await rm(t, { recursive: true, force: true });
});

/** A probe entry inside a shipping package (outside its src/, so no typecheck or lint sees it). */
async function probe(pkg: string, body: string): Promise<string> {
  const dir = path.join(repo, 'packages', pkg, `.boundary-probe-${process.pid}`);
  temps.push(dir);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'entry.ts'), body);
  return path.relative(repo, path.join(dir, 'entry.ts'));
}

describe('ship vs rig boundary', () => {
  it('no shipped bundle takes an input from the rig, scripts/ or a test harness', async () => {
    const ws = readWorkspace(repo);
    expect(ws.shipping.map((p) => p.name)).toContain('@slm-copilot/lifecycle');
    expect(ws.rig.map((p) => p.name)).toEqual(expect.arrayContaining(['@slm-copilot/testbed', '@slm-copilot/scripts']));
    const entries = shippingEntries(repo, ws);
    // the six CLIs of the image and the libraries others reuse
    expect(entries).toEqual(
      expect.arrayContaining(['packages/lifecycle/src/cli.ts', 'packages/nginx-config/src/cli.ts']),
    );
    expect(await checkBoundary(repo, entries)).toEqual([]);
  }, 120_000);

  it('fails when a shipping package imports the rig or a test harness (injected violation)', async () => {
    const rigImport = await probe(
      'lifecycle',
      "import { startMirror } from '@slm-copilot/testbed';\nconsole.log(startMirror);\n",
    );
    const harnessImport = await probe(
      'nginx-config',
      "import * as t from '@slm-copilot/task-kit/test-support/deb';\nconsole.log(t);\n",
    );
    const found = await checkBoundary(repo, [rigImport, harnessImport]);
    expect(found.some((v) => v.entry === rigImport && v.input.startsWith('packages/rig/testbed/'))).toBe(true);
    expect(found.some((v) => v.entry === harnessImport && v.why.includes('test harness'))).toBe(true);
  }, 120_000);

  it('judges package.json too: a run-time dependency on a rig package is a violation', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'slm-boundary-'));
    temps.push(root);
    await mkdir(path.join(root, 'packages/app'), { recursive: true });
    await mkdir(path.join(root, 'packages/rig/bed'), { recursive: true });
    await mkdir(path.join(root, 'scripts'), { recursive: true });
    const json = (o: object) => JSON.stringify(o);
    await writeFile(path.join(root, 'packages/app/package.json'), json({ name: 'app', dependencies: { bed: '*' } }));
    await writeFile(path.join(root, 'packages/rig/bed/package.json'), json({ name: 'bed' }));
    await writeFile(path.join(root, 'scripts/package.json'), json({ name: '@slm-copilot/scripts' }));
    expect(manifestViolations(root, readWorkspace(root))).toEqual([
      { entry: 'packages/app/package.json', input: 'bed', why: 'a run-time dependency on the rig' },
    ]);
  });

  it('names what may not ship', () => {
    expect(forbiddenInput('packages/rig/vm/src/qemu.ts')).toBe('test rig code');
    expect(forbiddenInput('scripts/src/bundle.ts')).toMatch(/build driver/);
    expect(forbiddenInput('packages/nginx-config/test-support/nginx.ts')).toMatch(/test harness/);
    expect(forbiddenInput('packages/model-fetch/src/fetch.test.ts')).toBe('a test file');
    expect(forbiddenInput('packages/nginx-config/src/render.ts')).toBeNull();
    expect(forbiddenInput('node_modules/.pnpm/zx@8.8.5/node_modules/zx/build/core.js')).toBeNull();
  });
});

describe("CI's cache key", () => {
  it('hashes only paths that exist (a moved folder would make the key constant)', async () => {
    expect(await deadCacheKeyPatterns(repo)).toEqual([]);
  });

  it('fails on a pattern that matches nothing (injected)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'slm-ci-key-'));
    temps.push(dir);
    const wf = path.join(dir, 'ci.yml');
    await writeFile(wf, "key: x-${{ hashFiles('packages/testbed/src/**', 'scripts/src/node-runtime.ts') }}\n");
    expect(await deadCacheKeyPatterns(repo, wf)).toEqual(['packages/testbed/src/**']);
  });
});
