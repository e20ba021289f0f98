/**
 * The CD swap of a running VM through QEMU's monitor (QMP), on a real QEMU: a machine with an empty disk
 * (it never boots an OS; the swap is QEMU's, the guest's side is the VM boot test's) and two CONTEXT CDs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '@slm-copilot/task-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { makeContextIso } from './context-iso.js';
import { qmp } from './qemu-args.js';
import { bootVm, type Vm } from './qemu.js';

const log = createLogger({ quiet: true });
let work: string | undefined;
let vm: Vm | undefined;
afterAll(async () => {
  await vm?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The file QEMU has in cd0's drive now (QMP query-block). */
async function inserted(socket: string): Promise<string | undefined> {
  const [reply] = await qmp(socket, ['query-block']);
  const devices = reply!.return as { device: string; inserted?: { file: string } }[];
  return devices.find((d) => d.device === 'cd0')?.inserted?.file;
}

describe('changeCdrom: the CD swap of a running VM (QMP blockdev-change-medium)', () => {
  it('puts the new ISO in cd0 without restarting QEMU; an ISO that does not exist is refused', async () => {
    work = await mkdtemp(path.join(tmpdir(), 'slm-vm-monitor-'));
    const disk = path.join(work, 'empty.qcow2');
    await $({ quiet: true })`qemu-img create -q -f qcow2 ${disk} 16M`;
    const first = await makeContextIso({ values: { A: '1' }, out: path.join(work, 'first.iso') });
    const second = await makeContextIso({ values: { A: '2' }, out: path.join(work, 'second.iso') });
    vm = await bootVm({ image: disk, cdrom: first.path, workDir: work, memoryMb: 128, cpus: 1, log });
    const socket = path.join(work, 'qmp.sock');
    const pid = vm.pid;
    expect(await inserted(socket)).toBe(first.path);

    await vm.changeCdrom(second.path);
    expect(await inserted(socket)).toBe(second.path);
    expect(vm.running).toBe(true);
    expect(vm.pid).toBe(pid);

    await expect(vm.changeCdrom(path.join(work, 'missing.iso'))).rejects.toThrow(
      /blockdev-change-medium cd0 .*missing\.iso: .*No such file/,
    );
  }, 60_000);
});
