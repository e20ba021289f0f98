import path from 'node:path';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { ExitCode, formatDuration, runCommand, runSubcommands, UsageError, type Logger } from '@slm-copilot/task-kit';
import { ensureBaseImage } from './base-image.js';
import { buildImage } from './build-image.js';
import { makeContextIso } from './context-iso.js';
import { packerValidate, PACKER_DIR, TEST_PROFILE } from './packer.js';
import { bootVm, type BootOptions } from './qemu.js';
import { ensureSshKey, type SshKey } from './ssh.js';
import { mib } from './util.js';

const TOOL = 'slm-vm';

function keyValues(list: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (list as string[] | undefined) ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`${what} "${item}" is not KEY=VALUE`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

function forwards(list: unknown): Record<number, number> {
  const out: Record<number, number> = {};
  for (const item of (list as string[] | undefined) ?? []) {
    const m = /^(\d+):(\d+)$/.exec(item);
    if (!m) throw new UsageError(`--forward "${item}" is not GUEST:HOST (e.g. 443:8443; HOST 0 = any free port)`);
    out[Number(m[1])] = Number(m[2]);
  }
  return out;
}

const int = (v: unknown, name: string, fallback: number): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, not "${v}"`);
  return n;
};

const profileOf = (v: unknown): 'production' | 'test' => {
  if (v !== 'production' && v !== 'test') throw new UsageError(`--profile is production or test, not "${v}"`);
  return v;
};

const baseImage = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} base-image`,
      summary: 'build (or find in the cache) the Debian 12 base qcow2 made from Debian packages only',
      usage: `${TOOL} base-image [--force] [--json]`,
      options: { force: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
      details:
        'Cached as $SLM_COPILOT_CACHE/vm/base-<recipe hash>.qcow2 (default ~/.cache/slm-copilot); rebuilt only\n' +
        'when the recipe changes. Needs root (mmdebstrap, a loop mount for extlinux) and Debian apt; missing\n' +
        'host tools are installed with apt-get. Prints the image path on stdout.\n' +
        '\nExamples:\n' +
        `  ${TOOL} base-image\n` +
        `  ${TOOL} base-image --json`,
    },
    { force: 'rebuild even when cached', json: 'print path, hash, sizes and build time as JSON' },
    argv,
    async ({ values, log }) => {
      const image = await ensureBaseImage({ force: Boolean(values.force), log });
      if (values.json) process.stdout.write(`${JSON.stringify(image, null, 2)}\n`);
      else process.stdout.write(`${image.path}\n`);
      log.info(`${image.built ? 'built' : 'cached'}: ${mib(image.fileBytes)} file, ${mib(image.virtualBytes)} virtual`);
    },
  );

/** The boot command's flags, checked before anything is written. */
function bootRequest(values: Record<string, unknown>) {
  if (typeof values.image !== 'string') throw new UsageError('--image is required');
  const cdrom = typeof values.cdrom === 'string' ? values.cdrom : undefined;
  if (cdrom && values.context) throw new UsageError('use either --cdrom or --context');
  const options: Omit<BootOptions, 'cdrom' | 'sshKey' | 'workDir' | 'log'> = {
    image: values.image,
    overlay: !values['no-overlay'],
    forwards: forwards(values.forward),
    memoryMb: int(values.memory, 'memory', 1024),
    cpus: int(values.cpus, 'cpus', 2),
    serialLog: typeof values['serial-log'] === 'string' ? path.resolve(values['serial-log']) : undefined,
  };
  const command = typeof values.command === 'string' ? values.command : undefined;
  const timeoutMs = int(values.timeout, 'timeout', 900) * 1000;
  return { cdrom, context: keyValues(values.context, '--context'), options, command, timeoutMs };
}

/** Boots, waits for SSH, then runs the command (its exit code) or keeps the VM until Ctrl-C. */
async function bootAndUse(request: ReturnType<typeof bootRequest>, key: SshKey, log: Logger): Promise<number> {
  const work = await mkdtemp(path.join(tmpdir(), 'slm-vm-boot-'));
  const vm = await (async () => {
    const cdrom =
      request.cdrom ??
      (
        await makeContextIso({
          values: request.context,
          sshPublicKey: key.publicKey,
          out: path.join(work, 'context.iso'),
          log,
        })
      ).path;
    return bootVm({ ...request.options, cdrom, sshKey: key, workDir: work, log });
  })().catch(async (error) => {
    await rm(work, { recursive: true, force: true });
    throw error;
  });
  try {
    await vm.waitForSsh(request.timeoutMs);
    if (request.command !== undefined) {
      const r = await vm.ssh(request.command, { nothrow: true, timeoutMs: 30 * 60_000 });
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      await vm.shutdown();
      return r.exitCode === 0 ? ExitCode.ok : ExitCode.failure;
    }
    const fwd = Object.entries(vm.ports)
      .map(([g, h]) => `${g}→127.0.0.1:${h}`)
      .join(', ');
    const ssh = `ssh -i ${key.privateKeyFile} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null`;
    process.stdout.write(
      `${ssh} -p ${vm.sshPort} root@127.0.0.1\n` +
        `forwards: ${fwd}\nserial console: ${vm.serialLog}\nCtrl-C shuts the VM down.\n`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await vm.shutdown();
    return ExitCode.ok;
  } finally {
    await vm.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

const boot = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} boot`,
      summary: 'boot an image (copy-on-write overlay) under TCG with loopback-only forwards and wait for SSH',
      usage:
        `${TOOL} boot --image FILE [--cdrom ISO | --context KEY=VALUE ...] [--forward GUEST:HOST ...] ` +
        '[--command CMD]',
      options: {
        image: { type: 'string' },
        cdrom: { type: 'string' },
        context: { type: 'string', multiple: true },
        forward: { type: 'string', multiple: true },
        memory: { type: 'string' },
        cpus: { type: 'string' },
        command: { type: 'string', short: 'c' },
        'serial-log': { type: 'string' },
        'no-overlay': { type: 'boolean', default: false },
        timeout: { type: 'string' },
      },
      details:
        'Without --cdrom a CONTEXT CD is made with SSH_PUBLIC_KEY = the cached test key\n' +
        '($SLM_COPILOT_CACHE/vm/keys/) and the --context values. With --command: run it over SSH, print its\n' +
        'output, shut down, exit with its code. Without: print the ssh line and keep the VM until Ctrl-C (then a\n' +
        'clean shutdown). Every forward listens on 127.0.0.1 only; the guest has no other network.\n' +
        '\nExamples:\n' +
        `  ${TOOL} boot --image out/slm-copilot.qcow2 --context ONEAPP_COPILOT_ENGINE=llama-server \\\n` +
        '      --forward 443:8443\n' +
        `  ${TOOL} boot --image base.qcow2 --command 'systemctl is-system-running'`,
    },
    {
      image: 'disk image (qcow2/raw); not modified unless --no-overlay',
      cdrom: 'ISO to attach (e.g. from context-iso)',
      context: 'KEY=VALUE for the generated CONTEXT CD (repeatable)',
      forward: 'GUEST:HOST port forward on 127.0.0.1 (repeatable; HOST 0 = any free port)',
      memory: 'MiB of RAM (default 1024)',
      cpus: 'vCPUs (default 2)',
      command: 'run this over SSH, then shut down',
      'serial-log': 'serial console file (default in the temp work dir)',
      'no-overlay': 'boot the image itself, writable',
      timeout: 'seconds to wait for SSH (default 900)',
    },
    argv,
    async ({ values, log }) => {
      const request = bootRequest(values);
      return bootAndUse(request, await ensureSshKey(), log);
    },
  );

const contextIso = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} context-iso`,
      summary: "write an OpenNebula CONTEXT CD (ISO label CONTEXT, context.sh with KEY='value' lines)",
      usage: `${TOOL} context-iso --out FILE [--ssh-key FILE.pub] [--print] KEY=VALUE ...`,
      options: {
        out: { type: 'string', short: 'o' },
        'ssh-key': { type: 'string' },
        print: { type: 'boolean', default: false },
      },
      allowPositionals: true,
      details:
        "Values are quoted the way OpenNebula does (single quotes; a ' inside becomes '\\'').\n" +
        '--ssh-key adds SSH_PUBLIC_KEY.\n' +
        '\nExamples:\n' +
        `  ${TOOL} context-iso --out ctx.iso --ssh-key ~/.ssh/id_ed25519.pub ONEAPP_COPILOT_ENGINE=llama-server\n` +
        `  ${TOOL} context-iso --out ctx.iso --print ONEAPP_COPILOT_CONTEXT_SIZE=32768`,
    },
    {
      out: 'ISO file to write',
      'ssh-key': 'public key file for SSH_PUBLIC_KEY',
      print: 'also print context.sh on stdout',
    },
    argv,
    async ({ values, positionals, log }) => {
      if (typeof values.out !== 'string') throw new UsageError('--out is required');
      const contextValues = keyValues(positionals, 'argument');
      const sshPublicKey =
        typeof values['ssh-key'] === 'string' ? (await readFile(values['ssh-key'], 'utf8')).trim() : undefined;
      const iso = await makeContextIso({ values: contextValues, sshPublicKey, out: path.resolve(values.out), log });
      if (values.print) process.stdout.write(iso.contextSh);
      log.info(`wrote ${iso.path}`);
    },
  );

const validate = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} packer-validate`,
      summary: 'packer validate the image template (plugins file set aside under Packer 1.6)',
      usage: `${TOOL} packer-validate [--template DIR] [--profile production|test] [--offline] [--var KEY=VALUE ...]`,
      options: {
        template: { type: 'string' },
        profile: { type: 'string', default: 'production' },
        offline: { type: 'boolean', default: false },
        var: { type: 'string', multiple: true },
      },
      details:
        'Path variables without a value get placeholders. --offline: Packer 1.6.6 downloads a file:https://\n' +
        'checksum list during validate; offline it is replaced by "none" (everything else is still checked).\n' +
        '\nExamples:\n' +
        `  ${TOOL} packer-validate --offline\n` +
        `  ${TOOL} packer-validate --profile test`,
    },
    {
      template: `template directory (default ${path.relative(process.cwd(), PACKER_DIR) || '.'})`,
      profile: `production (the defaults) or test (${TEST_PROFILE})`,
      offline: 'do not fetch the remote checksum list',
      var: 'KEY=VALUE template variable (repeatable)',
    },
    argv,
    async ({ values, log }) => {
      const profile = profileOf(values.profile);
      const vars = keyValues(values.var, '--var');
      if (profile === 'test') vars.source_image_url ??= '/dev/null';
      const r = await packerValidate({
        template: typeof values.template === 'string' ? values.template : undefined,
        varFiles: profile === 'test' ? [TEST_PROFILE] : [],
        vars: profile === 'test' ? { source_image_checksum: 'none', ...vars } : vars,
        offline: Boolean(values.offline),
        log,
      });
      log.info(`valid (Packer ${r.version}, profile ${profile})`);
    },
  );

const build = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} build-image`,
      summary:
        'packer build the appliance image (production: Ubuntu 24.04 + KVM + internet; ' +
        'test: the Debian base image, TCG, offline)',
      usage:
        `${TOOL} build-image --profile production|test --bundle DIR --node-runtime FILE --appliance DIR ` +
        '--out DIR [--install-command CMD] [--json]',
      options: {
        profile: { type: 'string', default: 'production' },
        bundle: { type: 'string' },
        'node-runtime': { type: 'string' },
        appliance: { type: 'string' },
        out: { type: 'string' },
        'install-command': { type: 'string' },
        var: { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
      },
      details:
        "The test profile builds the base image first (cached). The image is <out>/slm-copilot.qcow2; Packer's\n" +
        'log is <out>.packer.log. The whole build with its mirror and model: `npm run build:image` (scripts/).\n' +
        '\nExamples:\n' +
        `  ${TOOL} build-image --profile test --bundle BUNDLE_DIR --node-runtime NODE.tar.xz \\\n` +
        '      --appliance APPLIANCE_DIR --out OUT_DIR',
    },
    {
      profile: 'production or test',
      bundle: 'bundle directory (contains appliance/install.sh)',
      'node-runtime': 'Node runtime tarball',
      appliance: 'one-apps appliance directory',
      out: 'output directory (must not exist)',
      'install-command': 'command run in the build VM (default: install.sh, then service install)',
      var: 'KEY=VALUE template variable (repeatable)',
      json: 'print the image path, duration and phases as JSON',
    },
    argv,
    async ({ values, log }) => {
      for (const k of ['bundle', 'node-runtime', 'appliance', 'out'])
        if (typeof values[k] !== 'string') throw new UsageError(`--${k} is required`);
      const profile = profileOf(values.profile);
      const vars = keyValues(values.var, '--var');
      const source = profile === 'test' ? (await ensureBaseImage({ log })).path : undefined;
      const r = await buildImage({
        profile,
        sourceImage: source,
        bundleDir: values.bundle as string,
        nodeRuntimeTarball: values['node-runtime'] as string,
        applianceDir: values.appliance as string,
        outputDir: values.out as string,
        installCommand: typeof values['install-command'] === 'string' ? values['install-command'] : undefined,
        vars,
        log,
      });
      const { image, durationMs, phases } = r;
      if (values.json) process.stdout.write(`${JSON.stringify({ image, durationMs, phases }, null, 2)}\n`);
      else process.stdout.write(`${image}\n`);
      log.info(
        `built in ${formatDuration(durationMs)}: ${phases.map((p) => `${p.name} ${formatDuration(p.ms)}`).join(', ')}`,
      );
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'virtual machines of SLM-Copilot: base image, TCG boots, CONTEXT CDs, Packer',
    {
      'base-image': { summary: 'build or reuse the cached Debian 12 base qcow2', run: baseImage },
      boot: { summary: 'boot an image under TCG and wait for SSH', run: boot },
      'context-iso': { summary: 'write an OpenNebula CONTEXT ISO', run: contextIso },
      'packer-validate': { summary: 'validate the Packer template', run: validate },
      'build-image': { summary: 'packer build the image (production or test profile)', run: build },
    },
    argv,
  );
}

process.exitCode = await main(process.argv.slice(2));
