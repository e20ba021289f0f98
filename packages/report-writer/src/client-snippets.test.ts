// The snippet renderers by exact output, and their lines run by a real /bin/sh in a temp HOME: the files
// they write parse (YAML with the `yaml` package, TOML with Python's tomllib) to what each agent reads.
// Whether the agents accept them is the agent suite's part (packages/rig/agents runs these very lines).
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { $ } from 'zx';
import {
  agentSnippets,
  caFetchSnippet,
  claudeCodeSnippet,
  clineSnippet,
  codexSnippet,
  continueSnippet,
  runLine,
  shWord,
  type ClientTarget,
} from './client-snippets.js';

const KEY = 'sk-sample-0123456789abcdef';
const target: ClientTarget = {
  origin: 'https://192.0.2.10:8443',
  model: 'devstral-small-2',
  key: KEY,
  contextLength: 32768,
  perVmCa: true,
};
const CA_ENV = 'export NODE_EXTRA_CA_CERTS="$HOME/slm-copilot-ca.pem"';

describe('shWord', () => {
  it('keeps inert words and single-quotes the rest (a quote inside included)', () => {
    expect(shWord('https://192.0.2.10/v1')).toBe('https://192.0.2.10/v1');
    expect(shWord('sk.a+b/c=d-0123')).toBe('sk.a+b/c=d-0123');
    expect(shWord('~sk-key')).toBe("'~sk-key'");
    expect(shWord('Say hello.')).toBe("'Say hello.'");
    expect(shWord("it's")).toBe("'it'\\''s'");
    expect(shWord('https://[2001:db8::1]/v1')).toBe("'https://[2001:db8::1]/v1'");
  });
});

describe('snippets by exact output (self-signed: the per-VM CA in ~/slm-copilot-ca.pem)', () => {
  it('Cline: telemetry and auto-update off (never overwriting), then cline auth; the extension fields', () => {
    const s = clineSnippet(target);
    expect(s.env).toEqual([CA_ENV]);
    expect(s.setup).toEqual([
      "(set -C && mkdir -p ~/.cline/data/settings && printf '%s\\n' " +
        '\'{"telemetryOptOut":true,"autoUpdateEnabled":false}\' > ~/.cline/data/settings/global-settings.json)',
      'cline auth -p openai -k sk-sample-0123456789abcdef -m devstral-small-2 -b https://192.0.2.10:8443/v1',
    ]);
    expect(runLine(s, 'Say hello.')).toBe("cline 'Say hello.'");
    expect(s.fields).toEqual([
      ['API Provider', 'OpenAI Compatible'],
      ['Base URL', 'https://192.0.2.10:8443/v1'],
      ['API Key', KEY],
      ['Model ID', 'devstral-small-2'],
      ['Context Window Size', '32768'],
    ]);
  });

  it('Continue: a model block with the key as a secret reference, the secret appended to ~/.continue/.env', () => {
    const s = continueSnippet(target);
    expect(s.env).toEqual([CA_ENV, 'export CONTINUE_METRICS_ENABLED=0']);
    expect(s.setup).toEqual([
      "mkdir -p ~/.continue/models && printf '%s\\n' 'name: SLM-Copilot' 'version: 1.0.0' 'schema: v1' models: " +
        "'  - name: devstral-small-2 (SLM-Copilot)' '    provider: openai' '    model: devstral-small-2' " +
        "'    apiBase: https://192.0.2.10:8443/v1' '    apiKey: ${{ secrets.SLM_COPILOT_API_KEY }}' " +
        "'    roles: [chat, edit, apply]' '    capabilities: [tool_use]' " +
        "'    defaultCompletionOptions: { contextLength: 32768 }' > ~/.continue/models/slm-copilot.yaml",
      "(umask 077 && printf '%s\\n' SLM_COPILOT_API_KEY=sk-sample-0123456789abcdef >> ~/.continue/.env)",
    ]);
    expect(runLine(s, 'Say hello.')).toBe("cn -p --config ~/.continue/models/slm-copilot.yaml 'Say hello.'");
    expect(s.setup[0]).not.toContain(KEY);
  });

  it('Claude Code: env lines with the model id, the CA and the telemetry switches', () => {
    const s = claudeCodeSnippet(target);
    expect(s.env).toEqual([
      'export ANTHROPIC_BASE_URL=https://192.0.2.10:8443 ANTHROPIC_API_KEY=sk-sample-0123456789abcdef',
      'export ANTHROPIC_MODEL=devstral-small-2 ANTHROPIC_DEFAULT_HAIKU_MODEL=devstral-small-2',
      CA_ENV,
      'export DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 DISABLE_ERROR_REPORTING=1 ' +
        'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1',
    ]);
    expect(s.setup).toEqual([]);
    expect(runLine(s, 'Say hello.', ['--bare', '--tools', 'Bash,Read'])).toBe(
      "claude -p --output-format text 'Say hello.' --bare --tools Bash,Read",
    );
    expect(s.notes[0]).toMatch(/system message in mid-conversation/);
  });

  it('Codex: a Responses provider in ~/.codex/config.toml (never overwritten), CODEX_CA_CERTIFICATE', () => {
    const s = codexSnippet(target);
    expect(s.env).toEqual([
      'export SLM_COPILOT_API_KEY=sk-sample-0123456789abcdef',
      'export CODEX_CA_CERTIFICATE="$HOME/slm-copilot-ca.pem"',
    ]);
    expect(s.setup).toEqual([
      "(set -C && mkdir -p ~/.codex && printf '%s\\n' 'model = \"devstral-small-2\"' " +
        "'model_provider = \"slm-copilot\"' 'check_for_update_on_startup = false' '' " +
        "'[model_providers.slm-copilot]' 'name = \"SLM-Copilot\"' 'base_url = \"https://192.0.2.10:8443/v1\"' " +
        "'env_key = \"SLM_COPILOT_API_KEY\"' 'wire_api = \"responses\"' '' '[analytics]' 'enabled = false' " +
        '> ~/.codex/config.toml)',
    ]);
    expect(runLine(s, 'Say hello.')).toBe("codex exec --skip-git-repo-check 'Say hello.'");
  });

  it('publicly trusted (no per-VM CA): no CA line for any agent', () => {
    const all = agentSnippets({ ...target, perVmCa: false });
    for (const s of Object.values(all)) expect(s.env.join('\n')).not.toMatch(/CA_CERT/);
    expect(all.cline.env).toEqual([]);
    expect(all.codex.env).toEqual(['export SLM_COPILOT_API_KEY=sk-sample-0123456789abcdef']);
  });

  it('the CA lines: HTTPS download without a key, SSH with the login user, the openssl check', () => {
    const sha = 'AB:CD:EF';
    const ca = { origin: 'https://192.0.2.10', caPathOnVm: '/etc/slm-copilot/tls/ca.crt', sha256: sha };
    expect(caFetchSnippet({ ...ca, host: '192.0.2.10', sshUser: 'ubuntu' })).toEqual({
      download: 'curl -k https://192.0.2.10/slm-copilot-ca.pem -o ~/slm-copilot-ca.pem',
      downloadSsh: 'scp ubuntu@192.0.2.10:/etc/slm-copilot/tls/ca.crt ~/slm-copilot-ca.pem',
      check: 'openssl x509 -fingerprint -sha256 -noout -in ~/slm-copilot-ca.pem',
      expected: sha,
      why: expect.stringMatching(/^-k: before you have the CA .* trust the file only if the check prints AB:CD:EF/),
    });
    const v6 = caFetchSnippet({ ...ca, origin: 'https://[2001:db8::1]', host: '2001:db8::1', sshUser: 'ubuntu' });
    expect(v6.download).toBe("curl -k 'https://[2001:db8::1]/slm-copilot-ca.pem' -o ~/slm-copilot-ca.pem");
    expect(v6.downloadSsh).toBe("scp 'ubuntu@[2001:db8::1]:/etc/slm-copilot/tls/ca.crt' ~/slm-copilot-ca.pem");
  });
});

describe('the setup lines, run by /bin/sh in a temp HOME', () => {
  const homes: string[] = [];
  afterAll(async () => {
    for (const h of homes) await rm(h, { recursive: true, force: true });
  });
  const sh = async (lines: string[]) => {
    const home = await mkdtemp(path.join(tmpdir(), 'snippets-home-'));
    homes.push(home);
    const env = { PATH: '/usr/bin:/bin', HOME: home };
    const r = await $({ cwd: home, env, quiet: true, nothrow: true })`/bin/sh -c ${['set -e', ...lines].join('\n')}`;
    return { home, r };
  };

  it("Continue's model block parses to the model the CLI reads; the secret file is 0600", async () => {
    const { home, r } = await sh(continueSnippet(target).setup);
    expect(r.exitCode, r.stderr).toBe(0);
    const block = parseYaml(await readFile(path.join(home, '.continue/models/slm-copilot.yaml'), 'utf8'));
    expect(block).toEqual({
      name: 'SLM-Copilot',
      version: '1.0.0',
      schema: 'v1',
      models: [
        {
          name: 'devstral-small-2 (SLM-Copilot)',
          provider: 'openai',
          model: 'devstral-small-2',
          apiBase: 'https://192.0.2.10:8443/v1',
          apiKey: '${{ secrets.SLM_COPILOT_API_KEY }}',
          roles: ['chat', 'edit', 'apply'],
          capabilities: ['tool_use'],
          defaultCompletionOptions: { contextLength: 32768 },
        },
      ],
    });
    const secrets = path.join(home, '.continue/.env');
    expect(await readFile(secrets, 'utf8')).toBe(`SLM_COPILOT_API_KEY=${KEY}\n`);
    expect((await stat(secrets)).mode & 0o777).toBe(0o600);
  });

  it("Cline's settings line writes the opt-out as JSON; over an existing file it fails, changing nothing", async () => {
    const line = clineSnippet(target).setup[0]!;
    const { home, r } = await sh([line]);
    expect(r.exitCode, r.stderr).toBe(0);
    const file = path.join(home, '.cline/data/settings/global-settings.json');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ telemetryOptOut: true, autoUpdateEnabled: false });
    const mine = '{"telemetryOptOut":false,"mcpMarketplaceEnabled":true}\n';
    await writeFile(file, mine);
    const again = await $({
      cwd: home,
      env: { PATH: '/usr/bin:/bin', HOME: home },
      quiet: true,
      nothrow: true,
    })`/bin/sh -c ${line}`;
    expect(again.exitCode).not.toBe(0);
    expect(await readFile(file, 'utf8')).toBe(mine);
  });

  it("Codex's config.toml parses (Python's tomllib); a second run refuses to overwrite it", async () => {
    const setup = codexSnippet(target).setup;
    const { home, r } = await sh(setup);
    expect(r.exitCode, r.stderr).toBe(0);
    const file = path.join(home, '.codex/config.toml');
    const py = 'import json,sys,tomllib; print(json.dumps(tomllib.load(open(sys.argv[1],"rb"))))';
    const parsed = JSON.parse((await $({ quiet: true })`python3 -c ${py} ${file}`).stdout);
    expect(parsed).toEqual({
      model: 'devstral-small-2',
      model_provider: 'slm-copilot',
      check_for_update_on_startup: false,
      model_providers: {
        'slm-copilot': {
          name: 'SLM-Copilot',
          base_url: 'https://192.0.2.10:8443/v1',
          env_key: 'SLM_COPILOT_API_KEY',
          wire_api: 'responses',
        },
      },
      analytics: { enabled: false },
    });
    const again = await $({
      cwd: home,
      env: { PATH: '/usr/bin:/bin', HOME: home },
      quiet: true,
      nothrow: true,
    })`/bin/sh -c ${setup[0]!}`;
    expect(again.exitCode).not.toBe(0);
    expect(JSON.parse((await $({ quiet: true })`python3 -c ${py} ${file}`).stdout)).toEqual(parsed);
  });

  it('every env line is valid sh and sets what it names (the CA path under HOME)', async () => {
    const all = Object.values(agentSnippets(target)).flatMap((s) => s.env);
    const { home, r } = await sh([
      ...all,
      'printf "%s|%s|%s" "$NODE_EXTRA_CA_CERTS" "$ANTHROPIC_MODEL" "$CODEX_CA_CERTIFICATE"',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const ca = `${home}/slm-copilot-ca.pem`;
    expect(r.stdout).toBe(`${ca}|devstral-small-2|${ca}`);
  });
});
