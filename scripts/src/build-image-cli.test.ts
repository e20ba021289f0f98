/**
 * build-image's command line as a maintainer types it: flags reach the build through npm and turbo
 * (not turbo's own parser), an unknown flag is one line and exit 2, the help's versions come from their
 * one source, and turbo's strict env mode passes the proxy, TMPDIR and PACKER_* variables to the task.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCALAI_VERSION } from '@slm-copilot/localai-install';
import { buildVars } from './build-env.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tsx = path.join(repo, 'node_modules/.bin/tsx');
const TIMEOUT = 180_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: opts.cwd ?? repo, env: opts.env ?? process.env, timeout: TIMEOUT, encoding: 'utf8' },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

const buildImage = (args: string[]) =>
  run(tsx, ['--conditions=source', path.join(repo, 'scripts/src/build-image.ts'), ...args]);

describe('build-image command line', () => {
  it(
    '--help lists every build setting from BUILD_VARS and the LocalAI version from its one source',
    async () => {
      const r = await buildImage(['--help']);
      expect(r.code).toBe(0);
      expect(r.stdout.split('\n')[0]).toBe(
        'build-image — build the SLM-Copilot appliance image (QCOW2 + manifest + marketplace YAML)',
      );
      for (const v of buildVars()) expect(r.stdout).toContain(`${v.flag} <value>`);
      expect(r.stdout).toContain(`LocalAI ${LOCALAI_VERSION}`);
      expect(r.stdout).toMatch(/test .*\n(.*\n)*.*npm registry, Debian apt and root/);
    },
    TIMEOUT,
  );

  it(
    'an unknown, missing or bad flag is one line naming it, exit 2, no stack; a leading "--" is not an argument',
    async () => {
      const r = await buildImage(['--', '--bogus']);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('build-image: unknown option --bogus (see build-image --help)\n');
      const missing = await buildImage(['--profile']);
      expect(missing.code).toBe(2);
      expect(missing.stderr.trim().split('\n')).toHaveLength(1);
      expect(missing.stderr).toContain('--profile');
      const bad = await buildImage(['--profile', 'staging']);
      expect(bad.code).toBe(2);
      expect(bad.stdout).toBe('');
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toContain('--profile "staging" (SLM_COPILOT_PROFILE): expected production, offline or test');
    },
    TIMEOUT,
  );

  it(
    'npm run build:image -- --profile test --help reaches build-image, not turbo, and leaves no trace file',
    async () => {
      const pkg = JSON.parse(await readFile(path.join(repo, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      };
      expect(pkg.scripts['build:image']).toMatch(/turbo run build:image .*--$/); // npm's args land after turbo's "--"
      const before = await readdir(repo);
      const r = await run('npm', ['run', 'build:image', '--', '--profile', 'test', '--help']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('build-image — build the SLM-Copilot appliance image');
      expect(r.stdout).not.toMatch(/Usage: turbo/);
      expect(await readdir(repo)).toEqual(before); // turbo's own --profile would write a trace file here
    },
    TIMEOUT,
  );
});

describe("turbo's build:image task passes the build's environment through", () => {
  let ws: string;
  beforeAll(async () => {
    // A one-package workspace whose build:image task is the repository's own (turbo.json), printing its env.
    ws = await mkdtemp(path.join(tmpdir(), 'turbo-env-'));
    const turbo = JSON.parse(await readFile(path.join(repo, 'turbo.json'), 'utf8')) as {
      tasks: Record<string, unknown>;
      globalEnv?: string[];
    };
    await writeFile(
      path.join(ws, 'turbo.json'),
      JSON.stringify({ globalEnv: turbo.globalEnv, tasks: { 'build:image': turbo.tasks['build:image'] } }),
    );
    const root = JSON.parse(await readFile(path.join(repo, 'package.json'), 'utf8')) as { packageManager: string };
    await writeFile(
      path.join(ws, 'package.json'),
      JSON.stringify({ name: 'ws', private: true, packageManager: root.packageManager }),
    );
    await writeFile(path.join(ws, 'pnpm-workspace.yaml'), 'packages:\n  - pkg\n');
    await mkdir(path.join(ws, 'pkg'));
    const print = 'node -e "console.log(\'ENV=\' + JSON.stringify(process.env))"';
    await writeFile(
      path.join(ws, 'pkg/package.json'),
      JSON.stringify({ name: 'pkg', scripts: { 'build:image': print } }),
    );
    await symlink(path.join(repo, 'node_modules'), path.join(ws, 'node_modules'));
    await run('git', ['init', '-q', ws]);
  });
  afterAll(async () => {
    await rm(ws, { recursive: true, force: true });
  });

  it(
    'proxies (both cases), TMPDIR and PACKER_* arrive; an undeclared variable does not (strict mode is on)',
    async () => {
      const given: Record<string, string> = {
        HTTP_PROXY: 'http://127.0.0.1:9/h',
        HTTPS_PROXY: 'http://127.0.0.1:9/s',
        NO_PROXY: '*',
        http_proxy: 'http://127.0.0.1:9/lh',
        https_proxy: 'http://127.0.0.1:9/ls',
        no_proxy: '*',
        TMPDIR: path.join(ws, 'tmp'),
        PACKER_LOG: '1',
        PACKER_CACHE_DIR: path.join(ws, 'packer-cache'),
        SLM_COPILOT_PROFILE: 'test',
      };
      const env = {
        ...process.env,
        ...given,
        SLM_UNDECLARED_CANARY: 'x',
        TURBO_TELEMETRY_DISABLED: '1',
        // pnpm (which turbo runs) would otherwise check its own version over the dead proxy above
        npm_config_manage_package_manager_versions: 'false',
      };
      await mkdir(given.TMPDIR!, { recursive: true });
      const r = await run(path.join(repo, 'node_modules/.bin/turbo'), ['run', 'build:image', '--log-prefix=none'], {
        cwd: ws,
        env,
      });
      const line = r.stdout.split('\n').find((l) => l.startsWith('ENV='));
      expect(line, `${r.stdout}\n${r.stderr}`).toBeDefined();
      const seen = JSON.parse(line!.slice(4)) as Record<string, string>;
      for (const [k, v] of Object.entries(given)) expect(seen[k], k).toBe(v);
      expect(seen.SLM_UNDECLARED_CANARY).toBeUndefined();
    },
    TIMEOUT,
  );
});
