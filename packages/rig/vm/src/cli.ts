import path from 'node:path';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { ExitCode, formatDuration, runCommand, runSubcommands, UsageError } from '@slm-copilot/task-kit';
import { ensureBaseImage } from './base-image.js';
import { makeContextIso } from './context-iso.js';
import { buildImage, packerValidate, PACKER_DIR, TEST_PROFILE } from './packer.js';
import { bootVm } from './qemu.js';
import { ensureSshKey } from './ssh.js';
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
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer`);
  return n;
};

const baseImage = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} base-image`,
      summary: 'build (or find in the cache) the Debian 12 base qcow2 made from Debian packages only',
      usage: `${TOOL} base-image [--force] [--json]`,
      options: { force: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
      details:
        'Cached as $SLM_COPILOT_CACHE/vm/base-<recipe hash>.qcow2 (default ~/.cache/slm-copilot); rebuilt only when the recipe changes.\n' +
        'Needs root (mmdebstrap, a loop mount for extlinux) and Debian apt; missing host tools are installed with apt-get.\n' +
        'Prints the image path on stdout.',
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

const boot = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} boot`,
      summary: 'boot an image (copy-on-write overlay) under TCG with loopback-only forwards and wait for SSH',
      usage: `${TOOL} boot --image FILE [--cdrom ISO | --context KEY=VALUE ...] [--forward GUEST:HOST ...] [--command CMD]`,
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
        'Without --cdrom a CONTEXT CD is made with SSH_PUBLIC_KEY = the cached test key ($SLM_COPILOT_CACHE/vm/keys/) and the --context values.\n' +
        'With --command: run it over SSH, print its output, shut down, exit with its code. Without: print the ssh line and\n' +
        'keep the VM until Ctrl-C (then a clean shutdown). Every forward listens on 127.0.0.1 only; the guest has no other network.\n' +
        `Example: ${TOOL} boot --image out/slm-copilot.qcow2 --context ONEAPP_COPILOT_ENGINE=llama-server --forward 443:8443`,
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
      if (typeof values.image !== 'string') throw new UsageError('--image is required', `see ${TOOL} boot --help`);
      let cdrom = typeof values.cdrom === 'string' ? values.cdrom : undefined;
      if (cdrom && values.context) throw new UsageError('use either --cdrom or --context');
      const context = keyValues(values.context, '--context');
      const options = {
        image: values.image,
        overlay: !values['no-overlay'],
        forwards: forwards(values.forward),
        memoryMb: int(values.memory, 'memory', 1024),
        cpus: int(values.cpus, 'cpus', 2),
        serialLog: typeof values['serial-log'] === 'string' ? path.resolve(values['serial-log']) : undefined,
      };
      const timeoutMs = int(values.timeout, 'timeout', 900) * 1000;
      const key = await ensureSshKey();
      const work = await mkdtemp(path.join(tmpdir(), 'slm-vm-boot-'));
      if (!cdrom)
        cdrom = (
          await makeContextIso({
            values: context,
            sshPublicKey: key.publicKey,
            out: path.join(work, 'context.iso'),
            log,
          })
        ).path;
      const vm = await bootVm({ ...options, cdrom, sshKey: key, workDir: work, log }).catch(async (error) => {
        await rm(work, { recursive: true, force: true });
        throw error;
      });
      try {
        await vm.waitForSsh(timeoutMs);
        if (typeof values.command === 'string') {
          const r = await vm.ssh(values.command, { nothrow: true, timeoutMs: 30 * 60_000 });
          process.stdout.write(r.stdout);
          process.stderr.write(r.stderr);
          await vm.shutdown();
          return r.exitCode === 0 ? ExitCode.ok : ExitCode.failure;
        }
        const fwd = Object.entries(vm.ports)
          .map(([g, h]) => `${g}→127.0.0.1:${h}`)
          .join(', ');
        process.stdout.write(
          `ssh -i ${key.privateKeyFile} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p ${vm.sshPort} root@127.0.0.1\n` +
            `forwards: ${fwd}\nserial console: ${vm.serialLog}\nCtrl-C shuts the VM down.\n`,
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await vm.shutdown();
      } finally {
        await vm.dispose();
        await rm(work, { recursive: true, force: true });
      }
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
        "Values are quoted the way OpenNebula does (single quotes; a ' inside becomes '\\''). --ssh-key adds SSH_PUBLIC_KEY.\n" +
        `Example: ${TOOL} context-iso --out ctx.iso --ssh-key ~/.ssh/id_ed25519.pub ONEAPP_COPILOT_ENGINE=llama-server`,
    },
    {
      out: 'ISO file to write',
      'ssh-key': 'public key file for SSH_PUBLIC_KEY',
      print: 'also print context.sh on stdout',
    },
    argv,
    async ({ values, positionals, log }) => {
      if (typeof values.out !== 'string') throw new UsageError('--out is required', `see ${TOOL} context-iso --help`);
      const sshPublicKey =
        typeof values['ssh-key'] === 'string' ? (await readFile(values['ssh-key'], 'utf8')).trim() : undefined;
      const iso = await makeContextIso({
        values: keyValues(positionals, 'argument'),
        sshPublicKey,
        out: path.resolve(values.out),
        log,
      });
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
        'Path variables without a value get placeholders. --offline: Packer 1.6.6 downloads a file:https:// checksum list during\n' +
        'validate; offline it is replaced by "none" (everything else is still checked).',
    },
    {
      template: `template directory (default ${path.relative(process.cwd(), PACKER_DIR) || '.'})`,
      profile: `production (the defaults) or test (${TEST_PROFILE})`,
      offline: 'do not fetch the remote checksum list',
      var: 'KEY=VALUE template variable (repeatable)',
    },
    argv,
    async ({ values, log }) => {
      if (values.profile !== 'production' && values.profile !== 'test')
        throw new UsageError('--profile is production or test');
      const vars = keyValues(values.var, '--var');
      if (values.profile === 'test') vars.source_image_url ??= '/dev/null';
      const r = await packerValidate({
        template: typeof values.template === 'string' ? values.template : undefined,
        varFiles: values.profile === 'test' ? [TEST_PROFILE] : [],
        vars: values.profile === 'test' ? { source_image_checksum: 'none', ...vars } : vars,
        offline: Boolean(values.offline),
        log,
      });
      log.info(`valid (Packer ${r.version}, profile ${values.profile})`);
    },
  );

const build = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} build-image`,
      summary:
        'packer build the appliance image (production: Ubuntu 24.04 + KVM + internet; test: the Debian base image, TCG, offline)',
      usage: `${TOOL} build-image --profile production|test --bundle DIR --node-runtime FILE --appliance DIR --out DIR [--install-command CMD]`,
      options: {
        profile: { type: 'string', default: 'production' },
        bundle: { type: 'string' },
        'node-runtime': { type: 'string' },
        appliance: { type: 'string' },
        out: { type: 'string' },
        'install-command': { type: 'string' },
        var: { type: 'string', multiple: true },
      },
      details:
        "The test profile builds the base image first (cached). The image is <out>/slm-copilot.qcow2; Packer's log is <out>.packer.log.",
    },
    {
      profile: 'production or test',
      bundle: 'bundle directory (contains appliance/install.sh)',
      'node-runtime': 'Node runtime tarball',
      appliance: 'one-apps appliance directory',
      out: 'output directory (must not exist)',
      'install-command': 'command run in the build VM (default: install.sh, then service install)',
      var: 'KEY=VALUE template variable (repeatable)',
    },
    argv,
    async ({ values, log }) => {
      for (const k of ['bundle', 'node-runtime', 'appliance', 'out'])
        if (typeof values[k] !== 'string') throw new UsageError(`--${k} is required`, `see ${TOOL} build-image --help`);
      if (values.profile !== 'production' && values.profile !== 'test')
        throw new UsageError('--profile is production or test');
      const source = values.profile === 'test' ? (await ensureBaseImage({ log })).path : undefined;
      const r = await buildImage({
        profile: values.profile,
        sourceImage: source,
        bundleDir: values.bundle as string,
        nodeRuntimeTarball: values['node-runtime'] as string,
        applianceDir: values.appliance as string,
        outputDir: values.out as string,
        installCommand: typeof values['install-command'] === 'string' ? values['install-command'] : undefined,
        vars: keyValues(values.var, '--var'),
        log,
      });
      process.stdout.write(`${r.image}\n`);
      log.info(
        `built in ${formatDuration(r.durationMs)}: ${r.phases.map((p) => `${p.name} ${formatDuration(p.ms)}`).join(', ')}`,
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
