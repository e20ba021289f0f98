import { readFile, writeFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appliancePaths } from '@slm-copilot/context-schema';
import { afterAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { mainConf, removeTempRoots, tempRoot } from './test-support/nginx.js';

afterAll(() => removeTempRoots());

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KEY = 'sk-cli-test-key-0123456789abcdef';
const cli = (args: string[], env: Record<string, string> = {}) =>
  $({
    cwd: pkg,
    nothrow: true,
    quiet: true,
    env: { ...process.env, NO_COLOR: '1', ...env },
  })`node_modules/.bin/tsx --conditions=source src/cli.ts ${args}`;

describe('nginx-config CLI', () => {
  it('has --help for the tool and every command', async () => {
    const cases = [
      ['--help'],
      ['render', '--help'],
      ['install', '--help'],
      ['tls', '--help'],
      ['tls', 'ensure', '--help'],
      ['tls', 'fingerprint', '--help'],
      ['tls', 'letsencrypt', '--help'],
    ];
    for (const args of cases) {
      const r = await cli(args);
      expect(r.exitCode, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: nginx-config/);
    }
    expect((await cli(['nope'])).exitCode).toBe(2);
  }, 90_000);

  it('render prints the files and never the keys', async () => {
    const root = await tempRoot('cli');
    const r = await cli(['render', '--root', root], {
      ONEAPP_COPILOT_PASSWORD: KEY,
      ONEAPP_COPILOT_EXTRA_API_KEYS: 'sk-cli-extra-0123456789abcdef',
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`# ==> ${root}/etc/nginx/conf.d/slm-copilot.conf (mode 644)`);
    expect(r.stdout).toContain(
      `# ==> ${root}/etc/nginx/slm-copilot/api-keys.conf (mode 600, root:root)\n# secret: 2 API key(s), not printed`,
    );
    expect(r.stdout + r.stderr).not.toContain(KEY);
    expect(r.stdout + r.stderr).not.toContain('sk-cli-extra-0123456789abcdef');
  }, 30_000);

  it('refuses a bad context with exit 3 and says which variable', async () => {
    const r = await cli(['render', '--root', await tempRoot('cli')], {
      ONEAPP_COPILOT_PASSWORD: KEY,
      ONEAPP_COPILOT_CORS_ORIGINS: 'https://a.example.com;evil',
    });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('ONEAPP_COPILOT_CORS_ORIGINS');
  }, 30_000);

  it('tls ensure creates the CA once and keeps it; install writes, tests (nginx -t) and generates the key once', async () => {
    const root = await tempRoot('cli');
    const paths = appliancePaths(root);
    const first = await cli(['tls', 'ensure', '--root', root, '--ip', '192.0.2.7']);
    expect(first.exitCode, first.stderr).toBe(0);
    const a = JSON.parse(first.stdout);
    expect(a).toMatchObject({ served: 'self-signed', leaf: 'new CA', caCertificate: paths.tls.caCert });
    expect(a.names).toContain('IP:192.0.2.7');
    const second = JSON.parse((await cli(['tls', 'ensure', '--root', root, '--ip', '192.0.2.7'])).stdout);
    expect([second.leaf, second.caFingerprint, second.fingerprint]).toEqual(['kept', a.caFingerprint, a.fingerprint]);
    const fp = await cli(['tls', 'fingerprint', '--root', root]);
    expect(fp.stdout).toBe(`server ${a.fingerprint}\nca     ${a.caFingerprint}  (${paths.tls.caCert})\n`);

    await mkdir(path.join(root, 'run/nginx'), { recursive: true });
    await mkdir(paths.nginx.confDir, { recursive: true });
    await writeFile(path.join(paths.nginx.confDir, 'nginx.conf'), mainConf(root, paths));
    const inst = await cli(
      ['install', '--root', root, '--ip', '192.0.2.7', '--generate-key', '--no-reload', '--http-port', '8081'],
      {},
    );
    expect(inst.exitCode, inst.stderr).toBe(0);
    const summary = JSON.parse(inst.stdout);
    expect(summary).toMatchObject({ reloaded: false, tls: 'self-signed', fingerprint: a.fingerprint });
    expect(summary.changed).toHaveLength(6);
    const key = (await readFile(paths.apiKeyFile, 'utf8')).trim();
    expect(key).toMatch(/^sk-[A-Za-z0-9]{40}$/);
    expect((await stat(paths.apiKeyFile)).mode & 0o777).toBe(0o600);
    expect(inst.stderr).not.toContain(key);
    expect(await readFile(path.join(paths.nginx.snippetsDir, 'api-keys.conf'), 'utf8')).toContain(key);
    // a second install keeps the key and changes nothing
    const again = await cli([
      'install',
      '--root',
      root,
      '--ip',
      '192.0.2.7',
      '--generate-key',
      '--no-reload',
      '--http-port',
      '8081',
    ]);
    expect(JSON.parse(again.stdout).changed).toEqual([]);
    expect((await readFile(paths.apiKeyFile, 'utf8')).trim()).toBe(key);
  }, 90_000);
});
