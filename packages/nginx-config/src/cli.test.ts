import { readdir, readFile, writeFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths } from '@slm-copilot/context-schema';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { freePort, mainConf, removeTempRoots, tempRoot } from '../test-support/nginx.js';
import { COMMANDS, main } from './commands.js';
import { packageCli } from '@slm-copilot/task-kit/test-support/cli';

afterAll(() => removeTempRoots());

const KEY = 'sk-cli-test-key-0123456789abcdef';
/** The bin as it ships (a process: exit code, stdout and stderr as a user sees them). */
const cli = packageCli(import.meta.url);

/** main() in this process, with stdout and stderr captured (fast: no process per case). */
async function inProcess(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { exitCode: await main(args), stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}
afterEach(() => vi.restoreAllMocks());

const lines = (text: string) => text.split('\n').filter(Boolean);

describe('nginx-config command line (task-kit runner conventions)', () => {
  it('has --help with examples for every command', async () => {
    for (const args of [['--help'], ['tls', '--help']]) {
      const r = await inProcess(args);
      expect([r.exitCode, r.stderr], args.join(' ')).toEqual([0, '']);
      expect(r.stdout).toMatch(/^Usage: nginx-config/m);
    }
    for (const command of COMMANDS) {
      const r = await inProcess([...command, '--help']);
      expect([r.exitCode, r.stderr], command.join(' ')).toEqual([0, '']);
      expect(r.stdout).toContain(`Usage: nginx-config ${command.join(' ')}`);
      expect(r.stdout).toMatch(/\nExamples:\n {2}nginx-config /);
      if (command.join(' ') !== 'tls fingerprint') expect(r.stdout).toContain('--context-file');
      expect(r.stdout).not.toMatch(/--file\b/);
    }
  });

  it('a bogus flag exits 2 with one stderr line naming it, for every command; so does an unknown command', async () => {
    for (const command of COMMANDS) {
      const r = await inProcess([...command, '--bogus']);
      expect(r.exitCode, command.join(' ')).toBe(2);
      expect(lines(r.stderr), command.join(' ')).toHaveLength(1);
      expect(r.stderr).toContain('--bogus');
      expect(r.stdout).toBe('');
    }
    expect((await inProcess(['nope'])).exitCode).toBe(2);
    // the old name of the context-file option is a usage error too, not silently ignored
    expect((await inProcess(['render', '--file', 'context.sh'])).exitCode).toBe(2);
  });

  it('a bad flag value exits 2 with one line and writes nothing', async () => {
    const root = await tempRoot('cli-usage');
    for (const args of [
      ['install', '--root', root, '--generate-key', '--no-reload', '--http-port', '80x'],
      ['install', '--root', root, '--generate-key', '--no-reload', '--ip', '10.0.0.300'],
      ['tls', 'ensure', '--root', root, '--ip', 'not-an-ip'],
      ['render', '--root', root, '--http-port', '70000'],
    ]) {
      const r = await inProcess(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(lines(r.stderr), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/--(http-port|ip) must be .*got "/);
      expect(await readdir(root), args.join(' ')).toEqual([]);
    }
  });

  it('the shipped bin: --help exits 0, a bogus flag exits 2 with one stderr line', async () => {
    const help = await cli(['install', '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/^Usage: nginx-config install/m);
    const bogus = await cli(['install', '--bogus']);
    expect(bogus.exitCode).toBe(2);
    expect(lines(bogus.stderr)).toEqual([expect.stringContaining('--bogus')]);
  }, 60_000);
});

describe('nginx-config CLI', () => {
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

  it('reads a context.sh with --context-file (never executed); a missing file is named', async () => {
    const root = await tempRoot('cli');
    const file = path.join(root, 'context.sh');
    await writeFile(file, `ONEAPP_COPILOT_PASSWORD='${KEY}'\nONEAPP_COPILOT_HTTPS_PORT='8443'\n`);
    const r = await cli(['render', '--root', root, '--context-file', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('    listen 8443 ssl http2 default_server;\n');
    expect(r.stdout + r.stderr).not.toContain(KEY);
    const missing = await cli(['render', '--root', root, '--context-file', path.join(root, 'nope.sh')]);
    expect(missing.exitCode).toBe(4);
    expect(missing.stderr).toContain(path.join(root, 'nope.sh'));
  }, 30_000);

  it('tls ensure keeps the CA; install writes, tests (nginx -t) and generates the key once', async () => {
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
    // nginx -t binds nothing, but a port of our own keeps this test off every fixed port
    const httpPort = String(await freePort());
    const inst = await cli([
      'install',
      '--root',
      root,
      '--ip',
      '192.0.2.7',
      '--generate-key',
      '--no-reload',
      '--http-port',
      httpPort,
    ]);
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
      httpPort,
    ]);
    expect(JSON.parse(again.stdout).changed).toEqual([]);
    expect((await readFile(paths.apiKeyFile, 'utf8')).trim()).toBe(key);
  }, 90_000);
});
