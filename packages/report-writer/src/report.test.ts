import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { applyFileSet, generateApiKey } from '@slm-copilot/task-kit';
import { renderBanner } from './banner.js';
import { agentSnippets, runLine } from './client-snippets.js';
import { clientTarget, renderReport, type ReportInputs } from './report.js';

const key = generateApiKey();
function inputs(overrides: Partial<ReportInputs> = {}, env: Record<string, string> = {}): ReportInputs {
  const paths = appliancePaths();
  return {
    config: parseContext({ ONEAPP_COPILOT_PASSWORD: key, ...env }),
    paths,
    apiKey: key,
    generatedKeyFile: null,
    host: '192.0.2.10',
    engine: { name: 'localai', version: 'LocalAI v4.9.0', threads: 8, contextPerSlot: 32768, parallelSlots: 1 },
    tls: {
      mode: 'self-signed',
      caCertPath: paths.tls.caCert,
      caFingerprintSha256: 'AA:BB',
      certFingerprintSha256: 'CC:DD',
      notAfter: '2028-01-01T00:00:00Z',
    },
    warnings: [],
    errors: [],
    generatedAt: '2026-11-28T00:00:00Z',
    ...overrides,
  };
}

/** Parses the report with Python's configparser: an independent INI reader. */
async function parseIni(text: string): Promise<Record<string, Record<string, string>>> {
  const script = [
    'import configparser,json,sys',
    'c=configparser.ConfigParser(interpolation=None)',
    'c.read_string(sys.stdin.read())',
    'print(json.dumps({s:dict(c[s]) for s in c.sections()}))',
  ].join('\n');
  const r = await $({ input: text, quiet: true })`python3 -c ${script}`;
  return JSON.parse(r.stdout);
}

describe('report', () => {
  it('parses as INI and carries the endpoint, key, model, context, engine, TLS and health URL', async () => {
    const [report] = renderReport(inputs());
    expect(report!.path).toBe('/etc/one-appliance/config');
    expect(report!.mode).toBe(0o600);
    const ini = await parseIni(report!.text);
    expect(ini.Connection).toMatchObject({
      endpoint: 'https://192.0.2.10/v1',
      api_key: key,
      model_id: 'devstral-small-2',
      context_window: '32768',
      health_url: 'https://192.0.2.10/readyz',
    });
    expect(ini.Engine).toMatchObject({ engine: 'localai', version: 'LocalAI v4.9.0' });
    expect(ini.TLS).toMatchObject({
      mode: 'self-signed',
      ca_certificate: '/etc/slm-copilot/tls/ca.crt',
      ca_sha256: 'AA:BB',
      certificate_sha256: 'CC:DD',
    });
    expect(ini.Trust!.vscode).toContain('NODE_EXTRA_CA_CERTS=');
    expect(ini.Trust!.python).toContain('SSL_CERT_FILE=');
    expect(ini.Trust!.codex).toBe('export CODEX_CA_CERTIFICATE="$HOME/slm-copilot-ca.pem"');
    expect(ini.Examples!.curl_models).toContain("--cacert ~/slm-copilot-ca.pem -H 'Authorization: Bearer");
  });

  it("carries each agent's lines exactly as the snippet renderers give them (what the agent suite runs)", async () => {
    const sample = inputs({}, { ONEAPP_COPILOT_HTTPS_PORT: '8443' });
    const files = renderReport(sample);
    expect(files.map((f) => [f.path, f.mode])).toEqual([['/etc/one-appliance/config', 0o600]]);
    const ini = await parseIni(files[0]!.text);
    const t = clientTarget(sample);
    expect(t).toEqual({
      origin: 'https://192.0.2.10:8443',
      model: 'devstral-small-2',
      key,
      contextLength: 32768,
      perVmCa: true,
    });
    const agents = agentSnippets(t);
    const sections = { Cline: agents.cline, Continue: agents.continue, 'Claude Code': agents['claude-code'] };
    for (const [name, s] of Object.entries({ ...sections, Codex: agents.codex })) {
      const section = ini[name]!;
      s.env.forEach((l, i) => expect(section[`env_${i + 1}`], `${name} env_${i + 1}`).toBe(l));
      s.setup.forEach((l, i) => expect(section[`setup_${i + 1}`], `${name} setup_${i + 1}`).toBe(l));
      expect(section.try).toBe(runLine(s, 'Say hello.'));
      s.notes.forEach((n, i) => expect(section[`note_${i + 1}`]).toBe(n));
    }
    expect(ini.Cline).toMatchObject({
      setup_2: `cline auth -p openai -k ${key} -m devstral-small-2 -b https://192.0.2.10:8443/v1`,
      vscode_api_provider: 'OpenAI Compatible',
      vscode_base_url: 'https://192.0.2.10:8443/v1',
      vscode_api_key: key,
      vscode_model_id: 'devstral-small-2',
      vscode_context_window_size: '32768',
    });
    expect(ini.Continue!.setup_1).toContain("'    apiKey: ${{ secrets.SLM_COPILOT_API_KEY }}'");
    expect(ini.Continue!.setup_1).not.toContain(key);
    expect(ini['Claude Code']!.env_2).toBe(
      'export ANTHROPIC_MODEL=devstral-small-2 ANTHROPIC_DEFAULT_HAIKU_MODEL=devstral-small-2',
    );
    expect(ini.Codex!.env_2).toBe('export CODEX_CA_CERTIFICATE="$HOME/slm-copilot-ca.pem"');
    // nothing of the old snippets is left: no Cline JSON, no full Continue config, no root SSH
    expect(files[0]!.text).not.toMatch(/settings_json|config_yaml|scp root@|caBundlePath/);
  });

  it('fetches the per-VM CA over HTTPS or with the login user, and says how to check it and why -k', async () => {
    const ini = await parseIni(renderReport(inputs({}, { ONEAPP_COPILOT_HTTPS_PORT: '8443' }))[0]!.text);
    expect(ini.TLS).toMatchObject({
      ca_certificate: '/etc/slm-copilot/tls/ca.crt',
      ca_sha256: 'AA:BB',
      ca_download: 'curl -k https://192.0.2.10:8443/slm-copilot-ca.pem -o ~/slm-copilot-ca.pem',
      ca_download_ssh:
        'scp ubuntu@192.0.2.10:/etc/slm-copilot/tls/ca.crt ~/slm-copilot-ca.pem   # ubuntu: the login user of ' +
        'Ubuntu cloud images (they refuse root); the file is world-readable',
      ca_check: 'openssl x509 -fingerprint -sha256 -noout -in ~/slm-copilot-ca.pem   # must end with Fingerprint=AA:BB',
    });
    expect(ini.TLS!.ca_download_note).toMatch(/^-k: .* trust the file only if the check prints AA:BB/);
    expect(ini.Clients!.how).toContain('first fetch and check ~/slm-copilot-ca.pem');
  });

  it('custom mode: no per-VM CA to fetch, what applies instead; no CA lines in the snippets', async () => {
    const custom = inputs({
      tls: { mode: 'custom', caCertPath: null, caFingerprintSha256: null, certFingerprintSha256: 'EE', notAfter: 'x' },
    });
    const ini = await parseIni(renderReport(custom)[0]!.text);
    expect(ini.TLS!.ca_download).toBeUndefined();
    expect(ini.TLS!.ca_note).toMatch(/^the operator's certificate: if a private CA signed it, get that CA/);
    expect(ini.Trust!.node_agents).toBe(
      'if a private CA signed the certificate: export NODE_EXTRA_CA_CERTS="$HOME/slm-copilot-ca.pem" ' +
        '(Cline, Continue CLI, Claude Code)',
    );
    expect(ini.Cline!.env_1).toBeUndefined();
    expect(ini.Codex!.env_2).toBeUndefined();
  });

  it("lists refused variables and warnings; Let's Encrypt mode needs no CA file", async () => {
    const ini = await parseIni(
      renderReport(
        inputs({
          tls: {
            mode: 'letsencrypt',
            caCertPath: null,
            caFingerprintSha256: null,
            certFingerprintSha256: 'EE',
            notAfter: 'x',
          },
          errors: ['ONEAPP_COPILOT_CONTEXT_SIZE = "big": expected an integer from 2048 to 262144'],
          warnings: ["this VM's CPU does not expose AVX2"],
        }),
      )[0]!.text,
    );
    expect(ini.Status).toEqual({
      state: 'configuration refused: serving the last good configuration',
      generated_at: '2026-11-28T00:00:00Z',
      error_1: 'ONEAPP_COPILOT_CONTEXT_SIZE = "big": expected an integer from 2048 to 262144',
      warning_1: "this VM's CPU does not expose AVX2",
    });
    expect(ini.TLS!.ca_certificate).toBeUndefined();
    expect(ini.TLS!.ca_note).toBe("publicly trusted (Let's Encrypt): no CA file to fetch");
    expect(Object.values(ini['Claude Code']!).join('\n')).not.toContain('NODE_EXTRA_CA_CERTS');
    expect(ini.Examples!.curl_models).not.toContain('--cacert');
  });

  it('names the requested and serving engine; no fallback says so and gives no reason', async () => {
    const ini = await parseIni(
      renderReport(inputs({ serving: { requested: 'localai', serving: 'localai', fallbackReason: null } }))[0]!.text,
    );
    expect(ini.Status!.state).toBe('ready');
    expect(ini.Engine).toMatchObject({ requested: 'localai', serving: 'localai', fallback: 'no' });
    expect(ini.Engine!.fallback_reason).toBeUndefined();
  });

  it('a fallback names both engines and the reason, in the report and the banner', async () => {
    const reason = 'exited: the unit failed (exit-code) after 3 restart(s)';
    const fallback = inputs({
      engine: {
        name: 'llama-server',
        version: 'llama.cpp llama-server',
        threads: 2,
        contextPerSlot: 4096,
        parallelSlots: 1,
      },
      serving: { requested: 'localai', serving: 'llama-server', fallbackReason: reason },
    });
    const ini = await parseIni(renderReport(fallback)[0]!.text);
    expect(ini.Status!.state).toBe(
      'ready: serving with the fallback engine llama-server (localai did not become ready)',
    );
    expect(ini.Engine).toMatchObject({
      engine: 'llama-server',
      requested: 'localai',
      serving: 'llama-server',
      fallback: 'yes',
      fallback_reason: reason,
    });
    expect(ini.Connection!.api_key).toBe(key);
    const banner = renderBanner(fallback)[0]!.text;
    expect(banner).toContain('Engine   : llama-server — FALLBACK: localai was requested but did not become ready');
    expect(banner).toContain(`Reason   : ${reason}`);
    expect(banner).not.toContain(key);
  });

  it('a failed bootstrap still carries endpoint and key, what failed and what to do', async () => {
    const failed = inputs({
      serving: { requested: 'localai', serving: null, fallbackReason: 'exited: crash loop' },
      failure: {
        what: ['localai: exited: crash loop', 'llama-server: binary missing'],
        fix: 'journalctl -u slm-copilot-engine',
      },
    });
    const ini = await parseIni(renderReport(failed)[0]!.text);
    expect(ini.Status).toMatchObject({
      state: 'failed: no engine became ready; the API answers 503 until one does',
      failure_1: 'localai: exited: crash loop',
      failure_2: 'llama-server: binary missing',
      fix: 'journalctl -u slm-copilot-engine',
    });
    expect(ini.Connection).toMatchObject({ endpoint: 'https://192.0.2.10/v1', api_key: key });
    expect(ini.Engine).toMatchObject({ requested: 'localai', serving: 'none', fallback: 'no' });
    const banner = renderBanner(failed)[0]!.text;
    expect(banner).toContain('Engine   : NONE is serving (requested localai)');
    expect(banner).toContain('FAILED   : llama-server: binary missing');
    expect(banner).toContain('To do    : journalctl -u slm-copilot-engine');
    expect(banner).not.toContain(key);
  });

  it('is written 0600 (the one place the key is shown)', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'report-'));
    await applyFileSet(root, renderReport(inputs()));
    expect((await stat(path.join(root, 'etc/one-appliance/config'))).mode & 0o777).toBe(0o600);
  });
});

describe('login banner', () => {
  it('shows the endpoint and where the key is, never the key', () => {
    const files = renderBanner(
      inputs({ errors: ['ONEAPP_COPILOT_ENGINE = "vllm": expected one of: localai, llama-server'] }),
    );
    const text = files[0]!.text;
    expect(files.map((f) => f.path)).toEqual(['/etc/slm-copilot/motd', '/etc/update-motd.d/60-slm-copilot']);
    expect(text).toContain('https://192.0.2.10/v1');
    expect(text).toContain('sudo cat /etc/one-appliance/config');
    expect(text).toContain('ERROR    : ONEAPP_COPILOT_ENGINE');
    expect(text).not.toContain(key);
    expect(files[1]!.mode).toBe(0o755);
  });

  it('the update-motd.d script prints the banner', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'banner-'));
    const paths = appliancePaths(root);
    await applyFileSet('/', renderBanner({ ...inputs(), paths }));
    const out = await $({ quiet: true })`sh ${path.join(root, 'etc/update-motd.d/60-slm-copilot')}`;
    expect(out.stdout).toContain('SLM-Copilot');
  });
});
