/**
 * The recipe and the preflight: a production build plans fully from the committed lock with no network
 * and is then refused by name (KVM on these machines: the real probe); a short disk (injected figure),
 * a missing lock entry, a missing tool are each refused by name, all at once; nothing is staged first.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findModel, readLock, type ArtifactsLock } from '@slm-copilot/model-fetch';
import { createLogger, ExitCode, isTaskError } from '@slm-copilot/task-kit';
import { STAGED_MIRROR_DIR } from '@slm-copilot/vm';
import { readBuildEnv, type BuildFlags } from './build-env.js';
import { APT_PACKAGES, finishPlan, recipeFor, TEST_MODEL_FILE } from './build-plan.js';
import { buildApplianceImage, prepareBuild, type BuildDeps } from './build-image.js';
import { hostProbes, type HostProbes } from './host-probes.js';
import { LOCK_FILE } from './lock-file.js';
import { CACHE_BYTES, gb, IMAGE_OVERHEAD_BYTES, preflightChecks, preflightError } from './preflight.js';

let dir: string;
const log = createLogger({ quiet: true });
const env = (flags: BuildFlags) =>
  readBuildEnv({
    file: path.join(dir, 'none.env'),
    env: {},
    flags: { outputDir: path.join(dir, 'out'), cache: path.join(dir, 'cache'), ...flags },
  });

/** A host that has everything, except what a test takes away. */
const goodHost = (over: Partial<HostProbes> = {}): HostProbes => ({
  commandExists: async () => true,
  pathExists: async () => true,
  kvm: async () => ({ usable: true, detail: 'a QEMU guest ran under KVM (test double)' }),
  freeSpace: async (d) => ({ free: 500e9, dev: 1, at: d }),
  memory: async () => ({ total: 64 * 1024 ** 3, available: 60 * 1024 ** 3 }),
  isRoot: () => true,
  ...over,
});
const staged = {
  llamaServer: { file: 'llama-server-bX-dispatch.tar.xz', sha256: 'a'.repeat(64), size: 123 },
  testModel: { sha256: 'b'.repeat(64), size: 45 },
};
const noStage: BuildDeps['stage'] = async () => {
  throw new Error('staged before the preflight passed');
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'preflight-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('one recipe for every profile', () => {
  it('production plans fully from the committed lock: model pinned, both engines, mirror, upstream', async () => {
    const lock = await readLock(LOCK_FILE);
    const locked = lock.artifacts['devstral-small-2'];
    expect(locked, 'artifacts.lock.json has the default model').toBeDefined();
    const plan = finishPlan(recipeFor(env({}), lock, LOCK_FILE), staged);
    expect(plan.model).toEqual({
      file: path.posix.basename(new URL(locked!.url).pathname),
      sha256: locked!.sha256,
      size: locked!.size,
      url: locked!.url,
    });
    expect(plan.model.url).toMatch(/\/resolve\/[0-9a-f]{40}\//); // pinned to a revision, not main
    expect(plan).toMatchObject({
      profile: 'production',
      engineDefault: 'localai',
      upstream: true,
      localai: { kind: 'release' },
    });
    expect(plan.mirrors).toEqual([STAGED_MIRROR_DIR]);
    expect(plan.llamaServer).toEqual({ ...staged.llamaServer, url: null });
  });

  it('every profile: the same apt packages, llama-server and mirror mechanism; only the inputs differ', async () => {
    const lock = await readLock(LOCK_FILE);
    const mirror = path.join(dir, 'm');
    const plans = (['production', 'offline', 'test'] as const).map((profile) =>
      finishPlan(recipeFor(env({ profile, mirror, engine: 'llama-server' }), lock, LOCK_FILE), staged),
    );
    for (const p of plans) {
      expect(p.aptPackages).toEqual([...APT_PACKAGES]);
      expect(p.llamaServer.file).toBe(staged.llamaServer.file);
      expect(p.mirrors).toEqual([STAGED_MIRROR_DIR]); // a directory mirror is staged, never a host path
      expect(p.engineDefault).toBe('llama-server'); // the chosen engine, in test too
    }
    expect(plans.map((p) => p.upstream)).toEqual([true, false, false]);
    expect(plans.map((p) => p.localai.kind)).toEqual(['release', 'release', 'stand-in']);
    expect(plans[2]!.model).toEqual({
      file: TEST_MODEL_FILE,
      sha256: staged.testModel.sha256,
      size: staged.testModel.size,
      url: null,
    });
    // an http(s) mirror is reached by the build VM after the staged one
    const url = finishPlan(recipeFor(env({ mirror: 'http://mirror.example/slm' }), lock, LOCK_FILE), staged);
    expect(url.mirrors).toEqual([STAGED_MIRROR_DIR, 'http://mirror.example/slm']);
  });

  it('refuses --model with the test profile (it always bakes the tiny GGUF), naming the flag', async () => {
    const error = await prepareBuild(env({ profile: 'test', model: 'qwen2.5-coder-3b' }), log, {
      lockFile: LOCK_FILE,
      probes: goodHost(),
      stage: noStage,
    }).catch((e: unknown) => e);
    expect(isTaskError(error) && error.exitCode).toBe(ExitCode.usage);
    expect(String((error as Error).message)).toMatch(
      /^--model qwen2\.5-coder-3b: the test profile always bakes the tiny test GGUF/,
    );
    await expect(
      prepareBuild(env({ profile: 'test' }), log, { lockFile: LOCK_FILE, probes: goodHost(), stage: noStage }),
    ).resolves.toBeDefined();
  });
});

describe('preflight', () => {
  it('hands the cache of the settings to what it calls and leaves process.env alone', async () => {
    const before = process.env.SLM_COPILOT_CACHE;
    let seen: string | undefined;
    const stage: BuildDeps['stage'] = async (_recipe, _dir, opts) => {
      seen = opts.cacheDir;
      throw new Error('stop after staging');
    };
    const built = buildApplianceImage(env({ profile: 'test' }), log, {
      lockFile: LOCK_FILE,
      probes: goodHost(),
      stage,
    });
    await expect(built).rejects.toThrow('stop after staging');
    expect(seen).toBe(path.join(dir, 'cache'));
    expect(process.env.SLM_COPILOT_CACHE).toBe(before);
  });

  it('here a production build plans and is then refused at KVM, by name, before anything is staged', async () => {
    const kvm = await hostProbes.kvm();
    if (kvm.usable) {
      log.warn('KVM runs guests on this host: the KVM refusal cannot be shown here');
      return;
    }
    const error = await buildApplianceImage(env({}), log, {
      lockFile: LOCK_FILE,
      probes: hostProbes,
      stage: noStage,
    }).catch((e: unknown) => e);
    expect(isTaskError(error) && error.exitCode).toBe(ExitCode.environment);
    const text = (error as Error).message;
    expect(text).toMatch(/^the production build cannot start on this machine/);
    expect(text).toContain(`KVM: ${kvm.detail}`);
    expect(text).not.toContain('model lock'); // the lock is fine: it planned
  });

  it('a short disk, a missing lock entry and a missing tool are refused by name at once, with fixes', async () => {
    const lockFile = path.join(dir, 'lock.json');
    const lock: ArtifactsLock = { artifacts: {} };
    await writeFile(lockFile, JSON.stringify(lock));
    const probes = goodHost({
      freeSpace: async (d) => ({ free: 2e9, dev: 7, at: d }),
      commandExists: async (c) => c !== 'packer',
      isRoot: () => false,
    });
    const error = await prepareBuild(env({ model: 'qwen2.5-coder-7b' }), log, {
      lockFile,
      probes,
      stage: noStage,
    }).catch((e: unknown) => e);
    const text = (error as Error).message;
    expect(text).toContain('(3 problems;');
    expect(text).toMatch(
      new RegExp(
        'model lock: artifacts\\.lock\\.json has no entry for qwen2\\.5-coder-7b\\n\\s+' +
          'fix: .* resolve --model qwen2\\.5-coder-7b --lock ',
      ),
    );
    expect(text).not.toContain('<id>');
    const approx = findModel('qwen2.5-coder-7b').approxSizeGB * 1e9; // no lock entry: the catalog's figure
    expect(text).toContain(`disk (output + cache): 2.0 GB free in ${path.join(dir, 'out')}`);
    expect(text).toContain(
      `needs ≈ ${gb(2 * (approx + IMAGE_OVERHEAD_BYTES) + CACHE_BYTES)} ` +
        `(approximate: qwen2.5-coder-7b ~${gb(approx)} (catalog)`,
    );
    expect(text).toMatch(/packer: not installed\n\s+fix: sudo apt-get install -y packer/);
    expect(text).not.toMatch(/KVM:/);
  });

  it('the disk need comes from the lock: enough room for the image passes, one byte less is refused', async () => {
    const lock = await readLock(LOCK_FILE);
    const recipe = recipeFor(env({}), lock, LOCK_FILE);
    const need = async (free: number) => {
      const probes = goodHost({ freeSpace: async (d) => ({ free, dev: 1, at: d }) });
      return preflightChecks({ recipe, outputDir: path.join(dir, 'out'), cache: path.join(dir, 'cache') }, probes);
    };
    const size = lock.artifacts['devstral-small-2']!.size;
    const bytes = 2 * (size + IMAGE_OVERHEAD_BYTES) + CACHE_BYTES;
    expect(preflightError('production', await need(bytes))).toBeUndefined();
    expect(preflightError('production', await need(bytes - 1))?.message).toMatch(/disk \(output \+ cache\)/);
  });

  it('test needs root (for the base image), not KVM; offline needs a mirror directory with the base', async () => {
    const lock = await readLock(LOCK_FILE);
    const noKvm = { kvm: async () => ({ usable: false, detail: 'no KVM (test double)' }) };
    const test = await preflightChecks(
      { recipe: recipeFor(env({ profile: 'test' }), lock, LOCK_FILE), outputDir: dir, cache: dir },
      goodHost({ ...noKvm, isRoot: () => false }),
    );
    const refusal = preflightError('test', test)!.message;
    expect(refusal).toMatch(/root: .*mmdebstrap --mode=root/);
    expect(refusal).not.toMatch(/KVM/);
    expect(test.find((c) => c.name === 'network')!.detail).toMatch(/npm registry.*Debian apt/);
    const mirror = path.join(dir, 'mirror');
    const offline = await preflightChecks(
      { recipe: recipeFor(env({ profile: 'offline', mirror }), lock, LOCK_FILE), outputDir: dir, cache: dir },
      goodHost({ pathExists: async (f) => f === mirror }),
    );
    expect(preflightError('offline', offline)!.message).toMatch(
      /mirror: .* lacks ubuntu-24\.04-server-cloudimg-amd64\.img, noble-server-cloudimg-SHA256SUMS/,
    );
  });
});
