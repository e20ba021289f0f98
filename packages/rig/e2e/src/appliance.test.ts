/**
 * The product as a user receives it: the TEST-profile image — the one recipe of every profile (same
 * bundle, install stage, artifact mechanism, both engines), with the inputs that cannot exist here
 * swapped (README, "Profiles": Debian base, tiny GGUF, TCG, a LocalAI stand-in that cannot serve) —
 * built ONCE per run by the real build-image code, booted with OpenNebula-style CONTEXT CDs (CD swaps,
 * not rebuilds) and used through the loopback port forward with TLS verified against the VM's own CA.
 * The Packer pipeline's own checks (clean-up, build key gone, fresh identity, CONTEXT CD) run here on
 * that image too.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { $ } from 'zx';
import { agentHome, ensureAgent, runContinue } from '@slm-copilot/agents';
import {
  startOneGateDouble,
  type DoubleVm,
  type OneGateDouble,
} from '@slm-copilot/onegate/test-support/onegate-double';
import { trustingFetch, httpsGet } from '@slm-copilot/nginx-config/test-support/client';
import { buildApplianceImage, defaultDeps, type BuiltImage } from '@slm-copilot/scripts/build-image';
import { readBuildEnv } from '@slm-copilot/scripts/build-env';
import { createLogger, formatDuration } from '@slm-copilot/task-kit';
import { bootVm, ensureSshKey, makeContextIso, renderContextSh, type SshKey, type Vm } from '@slm-copilot/vm';

const MIN = 60_000;
const log = createLogger({ scope: 'e2e' });
const HOSTNAME = 'copilot.example.test';
const figures: Record<string, string> = {};

let work: string;
let built: BuiltImage;
let key: SshKey;
let vm: Vm;
let caPem: string;
let oneGate: OneGateDouble;
let oneGateVm: DoubleVm;

/**
 * The OneGate double (test-support/onegate-double.ts) reached from the VM through QEMU's user network: the
 * guest's connections to this address reach the double on the host's loopback (guestfwd), nothing else.
 */
const ONEGATE_IN_GUEST = { address: '10.0.2.100', port: 5030 };
const guestForwards = () => [{ ...ONEGATE_IN_GUEST, hostPort: Number(new URL(oneGate.endpoint).port) }];

// No ONEAPP_COPILOT_ENGINE: the default engine (LocalAI) — the test image's stand-in cannot serve, so
// the first boot proves the fallback end to end. ONEAPP_TRICKY: a value no shell may ever run.
const baseContext = {
  ONEAPP_TRICKY: "it's $(not run) `x`",
  ONEAPP_COPILOT_HOSTNAME: HOSTNAME,
  ONEAPP_COPILOT_TLS_MODE: 'self-signed',
  ONEAPP_COPILOT_CONTEXT_SIZE: '4096',
  ONEAPP_COPILOT_THREADS: '2',
};

/**
 * What OpenNebula adds to every CD of a VM whose CONTEXT has TOKEN="YES" and REPORT_READY="YES"
 * (OpenNebula/one src/vm/VirtualMachineContext.cc): OneGate's endpoint, the VM id; its token.txt beside.
 */
const withOneGate = (values: Record<string, string>) => ({
  ...values,
  ONEGATE_ENDPOINT: `http://${ONEGATE_IN_GUEST.address}:${ONEGATE_IN_GUEST.port}`,
  VMID: String(oneGateVm.id),
  REPORT_READY: 'YES',
});

async function contextCd(name: string, values: Record<string, string>): Promise<string> {
  const iso = await makeContextIso({
    values: withOneGate(values),
    files: { 'token.txt': oneGateVm.token },
    sshPublicKey: key.publicKey,
    out: path.join(work, `${name}.iso`),
  });
  return iso.path;
}

/** TLS to 127.0.0.1:<forward> while verifying the VM's CA and the hostname in its SANs. */
const trust = () => ({ ca: caPem, resolveTo: '127.0.0.1' });
// the host side of the 443 forward may change when the VM is restarted with another CD
const url = (p: string) => `https://${HOSTNAME}:${vm.ports[443]}${p}`;

/**
 * Ready = the boot-time configure/bootstrap run has finished (the context unit is no longer
 * activating and the status file holds a final state) AND /readyz answers 200 through TLS.
 * (/readyz alone is not enough: at boot the enabled units serve the previous configuration
 * before the context has been applied.)
 */
async function waitReady(timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      const state = await vm.ssh(
        'systemctl show -p ActiveState --value slm-copilot-context; cat /etc/one-appliance/status',
        { nothrow: true },
      );
      const [unit, status] = state.stdout.trim().split('\n');
      // active (oneshot, RemainAfterExit) or failed = it ran in THIS boot; inactive = not yet started
      const finished =
        (unit === 'active' || unit === 'failed') &&
        /^(bootstrap_success|bootstrap_failure|configure_failure)$/.test(status ?? '');
      if (finished) {
        caPem = (await vm.ssh('cat /etc/slm-copilot/tls/ca.crt')).stdout;
        const r = await httpsGet(url('/readyz'), trust());
        if (r.status === 200) return performance.now() - started;
      }
    } catch {
      // not up yet
    }
    if (performance.now() - started > timeoutMs) {
      const status = await vm.ssh(
        'cat /etc/one-appliance/status; tail -n 40 /var/log/one-appliance/*.log; ' +
          'systemctl --no-pager status slm-copilot-engine nginx slm-copilot-context | tail -n 40',
        { nothrow: true },
      );
      throw new Error(`not ready within ${formatDuration(timeoutMs)}\n${status.stdout}${status.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
}

/** `slm-copilot check --json` inside the VM (what the image installs on PATH): exit 0, required checks passed. */
async function selfCheck(): Promise<{ id: string; status: string; required: boolean; data?: unknown }[]> {
  const r = await vm.ssh('slm-copilot check --json', { nothrow: true, timeoutMs: 10 * MIN });
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  const checks = (
    JSON.parse(r.stdout) as { verdict: string; checks: { id: string; status: string; required: boolean }[] }
  ).checks;
  expect(checks.filter((c) => c.required).map((c) => [c.id, c.status])).toEqual([
    ['tls', 'pass'],
    ['readyz', 'pass'],
    ['auth', 'pass'],
    ['chat', 'pass'],
  ]);
  return checks;
}

/**
 * What the VM told OneGate (the double's record of the exact requests): PUT /vm with its id and the CD's token,
 * form-encoded as the official client sends it; the endpoint, model, engine, fingerprints and READY=YES (the
 * context asked, REPORT_READY=YES) on its USER_TEMPLATE; never a key in any request.
 */
async function publishedThroughOneGate(ini: Record<string, Record<string, string>>, apiKey: string): Promise<void> {
  const fromVm = oneGate.requests.filter((r) => r.headers['x-onegate-vmid'] === String(oneGateVm.id));
  const puts = fromVm.filter((r) => r.method === 'PUT' && r.path === '/vm');
  expect(puts.length, JSON.stringify(oneGate.requests.map((r) => [r.method, r.path, r.status]))).toBeGreaterThan(0);
  for (const r of puts) {
    expect(r).toMatchObject({ status: 200, headers: { 'x-onegate-token': oneGateVm.token } });
    expect(r.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(new URLSearchParams(r.body).get('type')).toBe('1');
  }
  for (const r of oneGate.requests) expect(r.body.includes(apiKey)).toBe(false);
  expect(oneGateVm.userTemplate).toMatchObject({
    ONEAPP_COPILOT_ENDPOINT: ini.Connection!.endpoint,
    ONEAPP_COPILOT_MODEL_ID: 'devstral-small-2',
    ONEAPP_COPILOT_ENGINE_SERVING: ini.Engine!.serving,
    ONEAPP_COPILOT_TLS_CA_SHA256: ini.TLS!.ca_sha256,
    ONEAPP_COPILOT_TLS_CERT_SHA256: ini.TLS!.certificate_sha256,
    READY: 'YES',
  });
  figures['OneGate'] =
    `${puts.length} PUT /vm from the VM; published ${Object.keys(oneGateVm.userTemplate).join(', ')}`;
}

/** The reply cap (ONEAPP_COPILOT_MAX_TOKENS) the agent's run gets in the VM. */
const AGENT_REPLY_CAP = 48;

/**
 * An agent from the host through the VM's forwarded port, set up with the report's own lines (the CA fetched
 * over HTTPS and checked against its fingerprint, Continue's model block and secret): Continue CLI, the
 * smallest request of the four (~3 k tokens), so it fits the VM's 8192 context under TCG.
 */
async function agentFromHost(apiKey: string): Promise<void> {
  // the report's CA download, without a key: the very bytes of the VM's CA
  const download = await httpsGet(url('/slm-copilot-ca.pem'), trust());
  expect(download.status, download.body).toBe(200);
  expect(download.body).toBe(caPem);
  const agent = await ensureAgent('continue', { log: (l) => log.info(l) });
  const home = await agentHome('vm-continue');
  const caFile = path.join(work, 'vm-ca.pem');
  await writeFile(caFile, caPem);
  const since = Number((await vm.ssh('wc -l < /var/log/nginx/slm-copilot.access.log')).stdout.trim());
  try {
    const target = {
      origin: `https://localhost:${vm.ports[443]}`, // localhost is a SAN of the per-VM leaf
      caFile,
      key: { name: 'main', value: apiKey },
      model: 'devstral-small-2',
      contextLength: 8192,
    };
    const run = await runContinue(agent, home, target, 'Say hello.', 10 * MIN);
    figures['Continue from the host'] = `${formatDuration(run.task.wallMs)}, exit ${run.task.exitCode}`;
    expect(run.task.timedOut).toBe(false);
    expect(run.task.exitCode, run.task.stderr.slice(-2000)).toBe(0);
    expect(run.task.stdout.trim().length).toBeGreaterThan(0);
    expect(run.task.leftovers).toEqual([]);
  } finally {
    home.remove();
  }
  // the VM's gateway: the CA download without a key, then Continue's chat request under the main key
  const lines = (await vm.ssh(`tail -n +${since + 1} /var/log/nginx/slm-copilot.access.log`)).stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { key: string; path: string; status: number; request_length: number });
  expect(lines.find((e) => e.path === '/slm-copilot-ca.pem')).toMatchObject({ status: 200 });
  const chats = lines.filter((e) => e.path === '/v1/chat/completions');
  expect(chats.length).toBeGreaterThan(0);
  for (const e of chats) expect(e).toMatchObject({ key: 'main', status: 200 });
  figures['Continue request'] = `${(chats[0]!.request_length / 1024).toFixed(1)} KB`;
}

/**
 * The saved prompt cache across an engine restart, with the VM's real systemd (the companion unit's first
 * real run: its ordering saves before the engine stops, its BindsTo/Wants bring it back, Node under its
 * sandbox): the agent's conversation is saved to a 0600 file, then restored into the new engine.
 */
async function promptCacheAcrossRestart(): Promise<void> {
  const unit = 'slm-copilot-engine-cache';
  expect((await vm.ssh(`systemctl is-active ${unit}`, { nothrow: true })).stdout.trim()).toBe('active');
  const since = (await vm.ssh('date +%s')).stdout.trim();
  await vm.ssh('systemctl restart slm-copilot-engine', { timeoutMs: 10 * MIN });
  const files = (await vm.ssh('find /var/lib/slm-copilot-engine/slot-cache -type f -printf "%m %s %f\\n"')).stdout;
  expect(files).toMatch(/^600 [1-9]\d* slot0\.bin$/m);
  let journal = '';
  for (const started = performance.now(); performance.now() - started < 10 * MIN;) {
    journal = (await vm.ssh(`journalctl -u ${unit} --since @${since} -o cat --no-pager`, { nothrow: true })).stdout;
    if (/slot 0: (restored|failed|skipped)/.test(journal)) break;
    await new Promise((r) => setTimeout(r, 3000));
  }
  expect(journal).toMatch(/slot 0: saved [1-9]\d* tokens/);
  expect(journal).toMatch(/slot 0: restored [1-9]\d* tokens/);
  figures['prompt cache across a restart'] = (journal.match(/slot 0: (saved|restored) .*/g) ?? []).join('; ');
}

/** The second CD: the chosen engine, a bigger context, a reply cap; the last good context of the later tests. */
const llamaContext = {
  ...baseContext,
  ONEAPP_COPILOT_ENGINE: 'llama-server',
  ONEAPP_COPILOT_CONTEXT_SIZE: '8192',
  // the test model never ends a reply; Continue sends no max_tokens: the operator's cap ends it
  ONEAPP_COPILOT_MAX_TOKENS: String(AGENT_REPLY_CAP),
};

/** Polls `probe` every 3 s until it returns true (bounded); on timeout throws with `diagnose`'s output. */
async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>, diagnose: string) {
  const started = performance.now();
  while (!(await probe().catch(() => false))) {
    if (performance.now() - started > timeoutMs) {
      const d = await vm.ssh(diagnose, { nothrow: true });
      throw new Error(`${what}: not within ${formatDuration(timeoutMs)}\n${d.stdout}${d.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
  return performance.now() - started;
}

async function report(): Promise<Record<string, Record<string, string>>> {
  const text = (await vm.ssh('cat /etc/one-appliance/config')).stdout;
  const script =
    'import configparser,json,sys\n' +
    'c=configparser.ConfigParser(interpolation=None)\n' +
    'c.read_string(sys.stdin.read())\n' +
    'print(json.dumps({s:dict(c[s]) for s in c.sections()}))';
  return JSON.parse((await $({ input: text, quiet: true })`python3 -c ${script}`).stdout);
}

async function fingerprints() {
  return (
    await vm.ssh(
      'sha256sum /etc/slm-copilot/tls/server.crt /etc/slm-copilot/tls/ca.crt /var/lib/slm-copilot/api-key ' +
        '/etc/systemd/system/slm-copilot-engine.service /etc/nginx/conf.d/slm-copilot.conf',
    )
  ).stdout;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'slm-e2e-'));
  key = await ensureSshKey();
  oneGate = await startOneGateDouble();
  oneGateVm = oneGate.addVm({ name: 'slm-copilot-e2e' });
}, MIN);

afterAll(async () => {
  await vm?.dispose();
  await oneGate?.close();
  log.info(`figures: ${JSON.stringify(figures)}`);
  await rm(work, { recursive: true, force: true });
}, 5 * MIN);

describe('[slow] the appliance image, booted', () => {
  it(
    'build:image --profile test (default engine) makes one QCOW2: both engines planned, real checksums, clean-up done',
    async () => {
      const started = performance.now();
      const env = readBuildEnv({
        file: path.join(work, 'no.env'),
        // only the cache of this run (the build makes it the cache of every package it calls, the SSH key's too)
        env: process.env.SLM_COPILOT_CACHE ? { SLM_COPILOT_CACHE: process.env.SLM_COPILOT_CACHE } : {},
        flags: { profile: 'test', contextSize: 4096, outputDir: path.join(work, 'output') },
      });
      built = await buildApplianceImage(env, log, { ...defaultDeps(), buildKeyDir: path.join(work, 'build-key') });
      figures['image build'] = formatDuration(performance.now() - started);
      figures['packer phases'] = built.packer.phases.map((p) => `${p.name} ${formatDuration(p.ms)}`).join(', ');
      // one recipe: both engines in the plan; LocalAI is the stand-in only because it cannot be downloaded here
      expect(built.plan).toMatchObject({ profile: 'test', engineDefault: 'localai', localai: { kind: 'stand-in' } });
      expect(built.plan.llamaServer.file).toMatch(/^llama-server-.*dispatch\.tar\.xz$/);
      expect(built.plan.mirrors).toEqual(['/var/tmp/slm-copilot-build/mirror']);
      // the artifacts reached the build VM through the staged mirror disk
      expect(built.packer.mirrorDisk?.files).toEqual(
        expect.arrayContaining([built.plan.llamaServer.file, built.plan.model.file]),
      );
      expect(built.packer.output).toContain('slm-cleanup: done');
      const market = parseYaml(await readFile(built.marketplaceFile, 'utf8'));
      const sha = (await $({ quiet: true })`sha256sum ${built.image.file}`).stdout.split(' ')[0];
      const md5 = (await $({ quiet: true })`md5sum ${built.image.file}`).stdout.split(' ')[0];
      expect(market.images[0].checksum).toEqual({ md5, sha256: sha });
      expect(market.opennebula_template.cpu_model).toEqual({ model: 'host-passthrough' });
      expect(market.opennebula_template.user_inputs.oneapp_copilot_context_size).toMatch(/\|4096$/);
      const info = JSON.parse((await $({ quiet: true })`qemu-img info --output=json ${built.image.file}`).stdout);
      expect(info.format).toBe('qcow2');
      expect(info['backing-filename']).toBeUndefined(); // standalone: convert flattened the backing chain
    },
    90 * MIN,
  );

  it(
    'first boot, default engine: the LocalAI stand-in fails, llama-server serves (AVX2 variant under TCG), ' +
      'the report says so and shows the key',
    async () => {
      const cd = await contextCd('first', baseContext);
      vm = await bootVm({
        image: built.image.file,
        cdrom: cd,
        forwards: { 443: 0 },
        guestForwards: guestForwards(),
        memoryMb: 3072,
        cpus: 2,
        log,
        maxLifetimeMs: 80 * MIN,
      });
      figures['boot to SSH'] = formatDuration(await vm.waitForSsh(20 * MIN));
      figures['boot to ready'] = formatDuration(await waitReady(20 * MIN));

      const ini = await report();
      expect(ini.Connection).toMatchObject({
        endpoint: `https://${HOSTNAME}/v1`,
        model_id: 'devstral-small-2',
        context_window: '4096',
      });
      // the fallback, named with its reason in the report, the banner and the stage log
      expect(ini.Engine).toMatchObject({ requested: 'localai', serving: 'llama-server', fallback: 'yes' });
      expect(ini.Engine!.fallback_reason).toMatch(/^(exited|start failed|binary missing or not executable): /);
      figures['fallback reason'] = ini.Engine!.fallback_reason!;
      expect(ini.Status!.state).toMatch(/^ready: serving with the fallback engine llama-server/);
      expect((await vm.ssh('cat /etc/slm-copilot/motd')).stdout).toMatch(/FALLBACK/);
      expect((await vm.ssh('cat /var/log/one-appliance/*.log')).stdout).toMatch(
        /engine localai did not become ready .*falling back to llama-server/,
      );
      // the stand-in is named as one in the image
      expect((await vm.ssh('head -n 5 /opt/local-ai/bin/local-ai')).stdout).toMatch(/STAND-IN, not LocalAI/);
      // one dispatching llama-server: under TCG (AVX2, no AVX-512) its loader picks the haswell variant
      expect(ini.Engine!.cpu_variant).toBe('haswell');
      const pid = (await vm.ssh('systemctl show -p MainPID --value slm-copilot-engine')).stdout.trim();
      const maps = (await vm.ssh(`grep -o 'libggml-cpu-[a-z0-9_]*\\.so' /proc/${pid}/maps | sort -u`)).stdout.trim();
      expect(maps).toBe('libggml-cpu-haswell.so');
      expect(ini.TLS!.mode).toBe('self-signed');
      const apiKey = ini.Connection!.api_key!;
      expect(apiKey).toMatch(/^sk-[A-Za-z0-9]{40}$/);
      expect((await vm.ssh('cat /etc/one-appliance/status')).stdout.trim()).toBe('bootstrap_success');
      expect((await vm.ssh('stat -c %a /etc/one-appliance/config')).stdout.trim()).toBe('600');

      const noKey = await httpsGet(url('/v1/models'), trust());
      expect(noKey.status).toBe(401);

      const client = new OpenAI({ baseURL: url('/v1'), apiKey, maxRetries: 0, fetch: trustingFetch(trust()) });
      const stream = await client.chat.completions.create({
        model: 'devstral-small-2',
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 8,
        messages: [{ role: 'user', content: 'Say hello' }],
      });
      let chunks = 0;
      let usage = 0;
      for await (const chunk of stream) {
        chunks++;
        usage = chunk.usage?.completion_tokens ?? usage;
      }
      expect(chunks).toBeGreaterThan(1);
      expect(usage).toBeGreaterThan(0);

      await publishedThroughOneGate(ini, apiKey);

      // the self-check a user runs on the VM: every required check passes, and it reports the fallback
      const check = await selfCheck();
      expect(check.find((c) => c.id === 'engine')).toMatchObject({
        status: 'warn',
        data: { serving: 'llama-server', requested: 'localai', fallback: true },
      });
    },
    60 * MIN,
  );

  it(
    'the Packer pipeline left a clean image: loopback-only forwards, no staging, build key gone, no password or ' +
      'history, fresh identity, CONTEXT CD read verbatim',
    async () => {
      const listening = (await $({ quiet: true })`ss -Hltnp`).stdout
        .split('\n')
        .filter((l) => l.includes(`pid=${vm.pid},`));
      expect(listening.length).toBeGreaterThan(0);
      for (const l of listening) expect(l).toMatch(/\s127\.0\.0\.1:\d+\s/);
      expect((await vm.ssh('test -e /var/tmp/slm-copilot-build', { nothrow: true })).exitCode).not.toBe(0);
      expect((await vm.ssh('blkid -L CONTEXT')).stdout.trim()).toBe('/dev/sr0');
      const onCd = await vm.ssh(
        'mkdir -p /mnt/ctx && mount -o ro LABEL=CONTEXT /mnt/ctx && cat /mnt/ctx/context.sh; umount /mnt/ctx',
      );
      // the tricky value verbatim, never run
      expect(onCd.stdout).toBe(renderContextSh(withOneGate(baseContext), { sshPublicKey: key.publicKey }));
      const authorized = (await vm.ssh('cat /root/.ssh/authorized_keys')).stdout;
      expect(authorized).toContain(key.publicKey);
      expect(authorized).not.toContain(built.packer.buildPublicKey.split(' ')[1]);
      const buildKey = { privateKeyFile: built.packer.buildPrivateKeyFile!, publicKey: built.packer.buildPublicKey };
      const withBuildKey = await vm.ssh('true', { nothrow: true, timeoutMs: 60_000, key: buildKey });
      expect(withBuildKey.exitCode).toBe(255);
      expect(withBuildKey.stderr).toMatch(/Permission denied/);
      expect((await vm.ssh('getent shadow root | cut -d: -f2')).stdout.trim()).toBe('*');
      expect((await vm.ssh('test -e /root/.bash_history', { nothrow: true })).exitCode).not.toBe(0);
      const hostKey = (await vm.ssh('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).stdout.split(' ')[1];
      expect(hostKey).toMatch(/^SHA256:/);
      expect(hostKey).not.toBe(built.packer.buildHostKey);
      expect((await vm.ssh('cat /etc/machine-id')).stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
    },
    10 * MIN,
  );

  it(
    'reboot: reconfigure is idempotent (same key, certificate and rendered files)',
    async () => {
      const before = await fingerprints();
      figures['reboot to SSH'] = formatDuration(await vm.reboot(20 * MIN));
      figures['reboot to ready'] = formatDuration(await waitReady(20 * MIN));
      expect(await fingerprints()).toBe(before);
      expect((await vm.ssh('cat /etc/one-appliance/status')).stdout.trim()).toBe('bootstrap_success');
    },
    45 * MIN,
  );

  it(
    'a new CD with ONEAPP_COPILOT_ENGINE=llama-server and a bigger context: served by the chosen engine, no fallback',
    async () => {
      await vm.restart({
        cdrom: await contextCd('llama', llamaContext),
      });
      await vm.waitForSsh(20 * MIN);
      await waitReady(20 * MIN);
      const ini = await report();
      expect(ini.Connection!.context_window).toBe('8192');
      expect(ini.Engine).toMatchObject({ requested: 'llama-server', serving: 'llama-server', fallback: 'no' });
      expect(ini.Engine!.fallback_reason).toBeUndefined();
      expect(ini.Status!.state).toBe('ready');
      const unit = (await vm.ssh('cat /etc/systemd/system/slm-copilot-engine.service')).stdout;
      expect(unit).toMatch(/--ctx-size 8192 /);
      expect(unit).toMatch(new RegExp(`--n-predict ${AGENT_REPLY_CAP} `));
      const check = await selfCheck();
      expect(check.find((c) => c.id === 'engine')).toMatchObject({ status: 'info', data: { fallback: false } });
      await agentFromHost(ini.Connection!.api_key!);
      await promptCacheAcrossRestart();
    },
    45 * MIN,
  );

  it(
    'a bad value is refused and reported while the service keeps serving the last good configuration',
    async () => {
      await vm.restart({
        cdrom: await contextCd('bad', {
          ...baseContext,
          ONEAPP_COPILOT_ENGINE: 'llama-server',
          ONEAPP_COPILOT_CONTEXT_SIZE: 'lots',
        }),
      });
      await vm.waitForSsh(20 * MIN);
      await waitReady(20 * MIN); // still serving: the units are enabled with the last good files
      const ini = await report();
      expect(ini.Status!.error_1).toMatch(/ONEAPP_COPILOT_CONTEXT_SIZE = "lots": expected an integer/);
      expect(ini.Connection!.context_window).toBe('8192');
      expect((await vm.ssh('cat /etc/one-appliance/status')).stdout.trim()).toBe('configure_failure');
      expect((await vm.ssh('cat /etc/slm-copilot/motd')).stdout).toMatch(/ERROR {4}: ONEAPP_COPILOT_CONTEXT_SIZE/);
      const models = await httpsGet(url('/v1/models'), {
        ...trust(),
        headers: { authorization: `Bearer ${ini.Connection!.api_key}` },
      });
      expect(models.status).toBe(200);
    },
    45 * MIN,
  );

  it(
    'Update Configuration on the running VM: a swapped CONTEXT CD is applied without a reboot (udev, ' +
      'slm-copilot-reconfigure), gateway values without an engine restart; a refused one is named and changes nothing',
    async () => {
      const bootId = (await vm.ssh('cat /proc/sys/kernel/random/boot_id')).stdout.trim();
      // the engine's run (a restart gets a new InvocationID) and nginx's master (a reload keeps it)
      const runs = async () =>
        (
          await vm.ssh(
            'systemctl show -p InvocationID --value slm-copilot-engine; systemctl show -p MainPID --value nginx',
          )
        ).stdout;
      const before = await runs();
      const origin = 'https://ide.example.test';
      const preflight = async () =>
        (
          await httpsGet(url('/v1/chat/completions'), {
            ...trust(),
            method: 'OPTIONS',
            headers: { origin, 'access-control-request-method': 'POST' },
          })
        ).headers['access-control-allow-origin'];
      expect(await preflight()).toBeUndefined();
      const diagnose =
        'cat /etc/one-appliance/status; cat /sys/module/block/parameters/events_dfl_poll_msecs; ' +
        'udevadm info -q property -n /dev/sr0; journalctl -u slm-copilot-reconfigure --no-pager -o cat | tail -n 40';

      // the last good context (the 'llama' CD) with one gateway value more: a CORS origin
      await vm.changeCdrom(await contextCd('live-good', { ...llamaContext, ONEAPP_COPILOT_CORS_ORIGINS: origin }));
      const applied = await waitFor(
        'the new CORS origin in effect',
        10 * MIN,
        async () => (await preflight()) === origin,
        diagnose,
      );
      figures['CD swap to the new value in effect'] = formatDuration(applied);
      expect((await vm.ssh('cat /proc/sys/kernel/random/boot_id')).stdout.trim()).toBe(bootId);
      await waitFor(
        'bootstrap done',
        5 * MIN,
        async () => (await vm.ssh('cat /etc/one-appliance/status')).stdout.trim() === 'bootstrap_success',
        diagnose,
      );
      expect(await runs()).toBe(before);
      const journal = (await vm.ssh('journalctl -u slm-copilot-reconfigure --no-pager -o cat')).stdout;
      expect(journal).toMatch(/=== configure finished/);
      expect(journal).toMatch(/=== bootstrap finished/);
      // udev itself evaluates our rule for the swapped drive (its real properties): the RUN is ours
      const udev = await vm.ssh('udevadm test --action=change /sys/class/block/sr0 2>&1', { nothrow: true });
      expect(udev.stdout).toMatch(/systemctl --no-block start slm-copilot-reconfigure\.service/);

      // refused: a bad number and a bad secret; the last good configuration keeps serving, nothing restarts
      const bad = {
        ...llamaContext,
        ONEAPP_COPILOT_CORS_ORIGINS: origin,
        ONEAPP_COPILOT_RATE_LIMIT: 'often',
        ONEAPP_COPILOT_EXTRA_API_KEYS: 'tooshort',
      };
      await vm.changeCdrom(await contextCd('live-bad', bad));
      await waitFor(
        'the refusal',
        10 * MIN,
        async () => (await vm.ssh('cat /etc/one-appliance/status')).stdout.trim() === 'configure_failure',
        diagnose,
      );
      const ini = await report();
      const errors = Object.values(ini.Status!).join('\n');
      expect(errors).toMatch(/ONEAPP_COPILOT_RATE_LIMIT = "often": expected an integer/);
      expect(errors).toMatch(/ONEAPP_COPILOT_EXTRA_API_KEYS = \[hidden\]: expected /);
      const stageLog = (await vm.ssh('cat /var/log/one-appliance/configure.log')).stdout;
      expect(stageLog).toMatch(/ONEAPP_COPILOT_RATE_LIMIT = "often"/);
      expect(stageLog + JSON.stringify(ini)).not.toContain('tooshort');
      expect(await preflight()).toBe(origin);
      const models = await httpsGet(url('/v1/models'), {
        ...trust(),
        headers: { authorization: `Bearer ${ini.Connection!.api_key}` },
      });
      expect(models.status).toBe(200);
      expect(await runs()).toBe(before);
      expect((await vm.ssh('cat /proc/sys/kernel/random/boot_id')).stdout.trim()).toBe(bootId);
    },
    30 * MIN,
  );

  it(
    'systemd-analyze security in the VM: the engine unit and nginx (with our drop-in) are rated 2.5 or better',
    async () => {
      for (const unit of ['slm-copilot-engine.service', 'nginx.service']) {
        const out = await vm.ssh(`systemd-analyze security ${unit} --no-pager | tail -n 1`, { nothrow: true });
        const exposure = Number(
          new RegExp(`exposure level for ${unit.replace('.', '\\.')}: ([\\d.]+)`).exec(out.stdout)?.[1],
        );
        figures[`${unit} exposure (in VM)`] = String(exposure);
        expect(exposure, `${unit}: ${out.stdout}${out.stderr}`).toBeLessThanOrEqual(2.5);
      }
      // The drop-in is in force on the running nginx, not just on disk.
      const show = await vm.ssh(
        'systemctl show nginx.service -p DropInPaths -p CapabilityBoundingSet -p ProtectSystem -p ActiveState',
      );
      expect(show.stdout).toMatch(/DropInPaths=.*slm-copilot-hardening\.conf/);
      expect(show.stdout).toMatch(/ProtectSystem=strict/);
      expect(show.stdout).toMatch(/ActiveState=active/);
      expect(show.stdout).not.toMatch(/cap_sys_admin/);
    },
    10 * MIN,
  );
});
