/** The preflight's checks of the build host: tools, KVM, root, RAM (through HostProbes, ./host-probes.ts). */
import path from 'node:path';
import { TOOLS, type HostTool } from '@slm-copilot/vm';
import type { BuildProfile } from './build-vars.js';
import { GiB, gib, type Check } from './check.js';
import type { HostProbes } from './host-probes.js';

/** Build VM RAM in MiB per profile (packer/variables.pkr.hcl `memory`; profiles/test.pkrvars.hcl). */
export const BUILD_VM_MIB: Record<BuildProfile, number> = { production: 8192, offline: 8192, test: 1024 };

/** Commands of every build: Packer + QEMU (the build VM, its seed CD) and the llama.cpp build. */
const LLAMA_TOOLS: HostTool[] = [
  { command: 'cmake', aptPackage: 'cmake' },
  { command: 'g++', aptPackage: 'g++' },
  { command: 'make', aptPackage: 'make' },
  { command: 'git', aptPackage: 'git' },
];
const COMMON_TOOLS: HostTool[] = [TOOLS.packer, TOOLS.qemu, TOOLS.qemuImg, TOOLS.xorriso, TOOLS.mkfs, ...LLAMA_TOOLS];
/** The Debian base image of the test profile (mmdebstrap, a partitioned raw disk, extlinux). */
const BASE_IMAGE_TOOLS: HostTool[] = [TOOLS.mmdebstrap, TOOLS.extlinux, TOOLS.syslinuxMbr, TOOLS.sfdisk, TOOLS.losetup];

export function toolsFor(profile: BuildProfile): HostTool[] {
  return profile === 'test' ? [...COMMON_TOOLS, ...BASE_IMAGE_TOOLS] : COMMON_TOOLS;
}

/** The tools present in one line; each missing one on its own, with its fix. */
export async function toolChecks(profile: BuildProfile, probes: HostProbes): Promise<Check[]> {
  const root = probes.isRoot();
  const tools = toolsFor(profile);
  const present = await Promise.all(
    tools.map((t) => (t.command.startsWith('/') ? probes.pathExists(t.command) : probes.commandExists(t.command))),
  );
  const have = tools.filter((_, i) => present[i]).map((t) => path.basename(t.command));
  const checks: Check[] =
    have.length > 0 ? [{ name: 'tools', status: 'ok', detail: `installed: ${have.join(', ')}`, blocking: false }] : [];
  for (const tool of tools.filter((_, i) => !present[i])) {
    if (root) {
      const detail =
        `not installed: the build installs it as root (apt-get install -y ${tool.aptPackage}, ` + 'needs Debian apt)';
      checks.push({ name: tool.command, status: 'info', detail, blocking: false });
    } else {
      const fix = `sudo apt-get install -y ${tool.aptPackage}`;
      checks.push({ name: tool.command, status: 'missing', detail: 'not installed', fix, blocking: true });
    }
  }
  return checks;
}

const NEEDS_OTHER_HOST =
  'build on a host whose KVM runs guests (bare metal, or a VM with nested virtualization); ' +
  'the test profile runs here (TCG)';

export async function kvmCheck(profile: BuildProfile, probes: HostProbes): Promise<Check> {
  const kvm = await probes.kvm();
  if (kvm.usable) return { name: 'KVM', status: 'ok', detail: kvm.detail, blocking: false };
  if (profile === 'test')
    return { name: 'KVM', status: 'info', detail: `${kvm.detail} (the test profile runs under TCG)`, blocking: false };
  return { name: 'KVM', status: 'missing', detail: kvm.detail, fix: kvm.fix ?? NEEDS_OTHER_HOST, blocking: true };
}

export async function ramCheck(profile: BuildProfile, probes: HostProbes): Promise<Check> {
  const mem = await probes.memory();
  const vm = BUILD_VM_MIB[profile] * 1024 * 1024;
  const need = vm + GiB; // the build VM plus room for QEMU and the host
  const detail =
    `${gib(mem.total)} total, ${gib(mem.available)} available; the ${profile} build VM uses ${gib(vm)} ` +
    '(+1 GiB for QEMU and the host)';
  if (mem.available >= need) return { name: 'RAM', status: 'ok', detail, blocking: false };
  if (mem.total >= need) {
    const fix = `close programs to free ${gib(need - mem.available)} before building`;
    return { name: 'RAM', status: 'low', detail, fix, blocking: false };
  }
  const other = profile === 'test' ? '' : ', or use the test profile (1 GiB VM)';
  const fix = `build on a host with at least ${gib(need)} of RAM${other}`;
  return { name: 'RAM', status: 'missing', detail, fix, blocking: true };
}

const BASE_IMAGE_AS_ROOT = 'the Debian base image is built with mmdebstrap --mode=root and losetup';

export function rootCheck(profile: BuildProfile, probes: HostProbes): Check[] {
  if (profile !== 'test') return [];
  if (probes.isRoot())
    return [{ name: 'root', status: 'ok', detail: `running as root (${BASE_IMAGE_AS_ROOT})`, blocking: false }];
  const fix = 'run the build as root: sudo -E npm run build:image -- --profile test';
  return [{ name: 'root', status: 'missing', detail: BASE_IMAGE_AS_ROOT, fix, blocking: true }];
}
