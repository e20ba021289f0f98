/**
 * The one list of checks of what a build profile needs on this machine, used by the build (before any
 * download or build: it refuses with every problem and its fix at once) and by the setup wizard
 * (which shows the same checks as ok/missing). Host access goes through HostProbes (./host-probes.ts).
 */
import path from 'node:path';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';
import { TOOLS, type HostTool } from '@slm-copilot/vm';
import type { BuildProfile } from './build-env.js';
import type { BuildRecipe } from './build-plan.js';
import { MIRROR_FILES } from './mirror.js';
import type { HostProbes } from './host-probes.js';

export type CheckStatus = 'ok' | 'missing' | 'low' | 'info';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
  /** The build cannot start while this check fails. */
  blocking: boolean;
}

const GB = 1e9;
const GiB = 1024 ** 3;
/** Approximate room beside the model in the image: the OS, both engines, Node. */
export const IMAGE_OVERHEAD_BYTES = 3 * GB;
/** Approximate cache use: base image, llama.cpp source and builds, Node runtime, Packer's cache. */
export const CACHE_BYTES = 3 * GB;
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

/** What the build reaches over the network, per profile (told, not probed). */
export function networkNeeds(profile: BuildProfile): string {
  if (profile === 'test') return 'the npm registry (llama.cpp source, Node runtime) and Debian apt (the base image)';
  if (profile === 'offline')
    return 'the npm registry (llama.cpp source, Node runtime); every other input from the mirror';
  return 'the internet (Ubuntu cloud image, LocalAI, the model) and the npm registry (llama.cpp source, Node runtime)';
}

export const gb = (bytes: number) => `${(bytes / GB).toFixed(1)} GB`;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(1)} GiB`;

export interface PreflightInput {
  recipe: BuildRecipe;
  outputDir: string;
  cache: string;
}

/** The tools present in one line; each missing one on its own, with its fix. */
async function toolChecks(profile: BuildProfile, probes: HostProbes): Promise<Check[]> {
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
      const detail = `not installed: the build installs it as root (apt-get install -y ${tool.aptPackage}, needs Debian apt)`;
      checks.push({ name: tool.command, status: 'info', detail, blocking: false });
    } else {
      checks.push({
        name: tool.command,
        status: 'missing',
        detail: 'not installed',
        fix: `sudo apt-get install -y ${tool.aptPackage}`,
        blocking: true,
      });
    }
  }
  return checks;
}

const NEEDS_OTHER_HOST =
  'build on a host whose KVM runs guests (bare metal, or a VM with nested virtualization); the test profile runs here (TCG)';

async function kvmCheck(profile: BuildProfile, probes: HostProbes): Promise<Check> {
  const kvm = await probes.kvm();
  if (kvm.usable) return { name: 'KVM', status: 'ok', detail: kvm.detail, blocking: false };
  if (profile === 'test')
    return { name: 'KVM', status: 'info', detail: `${kvm.detail} (the test profile runs under TCG)`, blocking: false };
  return { name: 'KVM', status: 'missing', detail: kvm.detail, fix: kvm.fix ?? NEEDS_OTHER_HOST, blocking: true };
}

/** Model bytes for the disk check, and whether the figure is approximate. */
function modelBytes(recipe: BuildRecipe): { bytes: number; approx: boolean; what: string } {
  const m = recipe.model;
  if (m.kind === 'locked')
    return { bytes: m.artifact.size ?? 0, approx: false, what: `${m.id} ${gb(m.artifact.size ?? 0)} (lock)` };
  if (m.kind === 'missing-lock')
    return { bytes: m.approxBytes, approx: true, what: `${m.id} ~${gb(m.approxBytes)} (catalog)` };
  return { bytes: 0, approx: false, what: 'the tiny test model (< 10 MB)' };
}

async function diskChecks(input: PreflightInput, probes: HostProbes): Promise<Check[]> {
  const model = modelBytes(input.recipe);
  const image = model.bytes + IMAGE_OVERHEAD_BYTES;
  // Packer writes the disk, then a compressed copy of it; the mirror disk holds the staged files.
  const needs = [
    {
      what: 'output',
      dir: input.outputDir,
      bytes: 2 * image,
      setting: 'output directory (SLM_COPILOT_OUTPUT_DIR, --output)',
    },
    { what: 'cache', dir: input.cache, bytes: CACHE_BYTES, setting: 'cache directory (SLM_COPILOT_CACHE, --cache)' },
  ];
  const fs = await Promise.all(needs.map(async (n) => ({ ...n, ...(await probes.freeSpace(n.dir)) })));
  const merged =
    fs[0]!.dev === fs[1]!.dev
      ? [
          {
            ...fs[0]!,
            what: 'output + cache',
            dir: `${fs[0]!.dir}, ${fs[1]!.dir}`,
            bytes: fs[0]!.bytes + fs[1]!.bytes,
            setting: 'output or cache directory',
          },
        ]
      : fs;
  const basis = `${model.approx ? 'approximate: ' : ''}${model.what}; image ≈ model + ${gb(IMAGE_OVERHEAD_BYTES)}, twice while Packer converts; cache ≈ ${gb(CACHE_BYTES)}`;
  return merged.map((e) => {
    const enough = e.free >= e.bytes;
    const check: Check = {
      name: `disk (${e.what})`,
      status: enough ? 'ok' : 'low',
      detail: `${gb(e.free)} free in ${e.dir}; needs ≈ ${gb(e.bytes)} (${basis})`,
      blocking: !enough,
    };
    return enough
      ? check
      : { ...check, fix: `free ${gb(e.bytes - e.free)} on ${e.at}, or choose another ${e.setting}` };
  });
}

function lockCheck(recipe: BuildRecipe): Check[] {
  const m = recipe.model;
  if (m.kind === 'test') return [];
  if (m.kind === 'missing-lock') {
    return [
      {
        name: 'model lock',
        status: 'missing',
        detail: `artifacts.lock.json has no entry for ${m.id}`,
        fix: m.hint,
        blocking: true,
      },
    ];
  }
  const a = m.artifact;
  return [
    {
      name: 'model lock',
      status: 'ok',
      detail: `${m.id}: ${a.file}, ${gb(a.size ?? 0)}, sha256 ${a.sha256.slice(0, 12)}…`,
      blocking: false,
    },
  ];
}

async function mirrorChecks(recipe: BuildRecipe, probes: HostProbes): Promise<Check[]> {
  const dir = recipe.hostMirror;
  if (dir === undefined && recipe.profile === 'offline') {
    const detail = 'the offline profile takes every input from a mirror directory (an http(s) mirror cannot be staged)';
    return [
      {
        name: 'mirror',
        status: 'missing',
        detail,
        fix: 'pass --mirror DIR, filled by the mirror command',
        blocking: true,
      },
    ];
  }
  if (dir === undefined) return [];
  if (!(await probes.pathExists(dir))) {
    return [
      {
        name: 'mirror',
        status: 'missing',
        detail: `${dir} does not exist`,
        fix: `create it and put the artifacts there as ${dir}/<artifact-name>`,
        blocking: true,
      },
    ];
  }
  if (recipe.profile !== 'offline')
    return [
      { name: 'mirror', status: 'ok', detail: `${dir}: its files are staged into the build VM`, blocking: false },
    ];
  const missing: string[] = [];
  for (const f of [MIRROR_FILES.ubuntuImage, MIRROR_FILES.ubuntuSums])
    if (!(await probes.pathExists(path.join(dir, f)))) missing.push(f);
  if (missing.length === 0)
    return [
      { name: 'mirror', status: 'ok', detail: `${dir} has the Ubuntu cloud image and its SHA256SUMS`, blocking: false },
    ];
  return [
    {
      name: 'mirror',
      status: 'missing',
      detail: `${dir} lacks ${missing.join(', ')}`,
      fix: `fill it with the mirror command on a connected machine`,
      blocking: true,
    },
  ];
}

async function ramCheck(profile: BuildProfile, probes: HostProbes): Promise<Check> {
  const mem = await probes.memory();
  const vm = BUILD_VM_MIB[profile] * 1024 * 1024;
  const need = vm + GiB; // the build VM plus room for QEMU and the host
  const detail = `${gib(mem.total)} total, ${gib(mem.available)} available; the ${profile} build VM uses ${gib(vm)} (+1 GiB for QEMU and the host)`;
  if (mem.available >= need) return { name: 'RAM', status: 'ok', detail, blocking: false };
  if (mem.total >= need)
    return {
      name: 'RAM',
      status: 'low',
      detail,
      fix: `close programs to free ${gib(need - mem.available)} before building`,
      blocking: false,
    };
  const other = profile === 'test' ? '' : ', or use the test profile (1 GiB VM)';
  return {
    name: 'RAM',
    status: 'missing',
    detail,
    fix: `build on a host with at least ${gib(need)} of RAM${other}`,
    blocking: true,
  };
}

function rootCheck(profile: BuildProfile, probes: HostProbes): Check[] {
  if (profile !== 'test') return [];
  if (probes.isRoot())
    return [
      {
        name: 'root',
        status: 'ok',
        detail: 'running as root (the Debian base image is built with mmdebstrap --mode=root and losetup)',
        blocking: false,
      },
    ];
  return [
    {
      name: 'root',
      status: 'missing',
      detail: 'the Debian base image is built with mmdebstrap --mode=root and losetup',
      fix: 'run the build as root: sudo -E npm run build:image -- --profile test',
      blocking: true,
    },
  ];
}

/** Every check of a profile, in the order shown; all run (the user sees every problem at once). */
export async function preflightChecks(input: PreflightInput, probes: HostProbes): Promise<Check[]> {
  const profile = input.recipe.profile;
  const [tools, kvm, disk, mirror, ram] = await Promise.all([
    toolChecks(profile, probes),
    kvmCheck(profile, probes),
    diskChecks(input, probes),
    mirrorChecks(input.recipe, probes),
    ramCheck(profile, probes),
  ]);
  const network: Check = {
    name: 'network',
    status: 'info',
    detail: `the ${profile} build needs ${networkNeeds(profile)}`,
    blocking: false,
  };
  return [...lockCheck(input.recipe), kvm, ...rootCheck(profile, probes), ...tools, ...disk, ...mirror, ram, network];
}

/** The refusal for the blocking checks (undefined when none): every problem with its fix, one TaskError. */
export function preflightError(profile: BuildProfile, checks: readonly Check[]): TaskError | undefined {
  const blocking = checks.filter((c) => c.blocking);
  if (blocking.length === 0) return undefined;
  const lines = blocking.map((c) => `  ${c.name}: ${c.detail}${c.fix ? `\n    fix: ${c.fix}` : ''}`);
  const count = blocking.length === 1 ? '1 problem' : `${blocking.length} problems`;
  return new TaskError(
    `the ${profile} build cannot start on this machine (${count}; nothing was downloaded or built):\n${lines.join('\n')}`,
    {
      exitCode: ExitCode.environment,
    },
  );
}
