// QEMU's command line and its control socket: pure argument building and two small QEMU-facing helpers.
import { connect } from 'node:net';
import { $ } from 'zx';
import { withTimeout } from './util.js';

/** Everything that decides a QEMU command line. */
export interface QemuMachine {
  accel: string;
  cpuModel: string;
  cpus: number;
  memoryMb: number;
  serialLog: string;
  qmpSocket: string;
  disk: string;
  diskFormat: string;
  cdrom: string | undefined;
  /** guest port → 127.0.0.1 host port (every forward binds loopback only). */
  ports: Readonly<Record<number, number>>;
  extraArgs: readonly string[];
}

/** TCG machine, no display, serial to a file, QMP socket, virtio disk/NIC/RNG, restricted user network. */
export function qemuArgs(m: QemuMachine): string[] {
  const hostfwd = Object.entries(m.ports).map(([guest, host]) => `hostfwd=tcp:127.0.0.1:${host}-:${guest}`);
  const args = [
    ...['-name', 'slm-vm', '-nodefaults', '-no-user-config', '-machine', 'pc'],
    ...['-accel', m.accel, '-cpu', m.cpuModel, '-smp', String(m.cpus), '-m', String(m.memoryMb)],
    ...['-display', 'none', '-vga', 'none'],
    ...['-chardev', `file,id=serial0,path=${m.serialLog},append=on`, '-serial', 'chardev:serial0'],
    ...['-qmp', `unix:${m.qmpSocket},server=on,wait=off`],
    ...['-drive', `if=none,id=hd0,file=${m.disk},format=${m.diskFormat},discard=unmap`],
    ...['-device', 'virtio-blk-pci,drive=hd0,bootindex=0'],
    ...['-netdev', ['user', 'id=net0', 'restrict=on', ...hostfwd].join(',')],
    ...['-device', 'virtio-net-pci,netdev=net0,romfile=', '-device', 'virtio-rng-pci'],
  ];
  if (m.cdrom)
    args.push(
      ...['-drive', `if=none,id=cd0,media=cdrom,readonly=on,format=raw,file=${m.cdrom}`],
      ...['-device', 'ide-cd,drive=cd0,bus=ide.1,unit=0'],
    );
  return [...args, ...m.extraArgs];
}

/** The format qemu-img sees in an image file (qcow2, raw, …). */
export async function imageFormat(image: string): Promise<string> {
  const r = await $({ quiet: true, timeout: '60s' })`qemu-img info --output=json ${image}`;
  return String(JSON.parse(r.stdout).format);
}

/** Sends QMP commands over the unix socket; resolves when the last one is answered (or the socket closes). */
export async function qmp(socket: string, commands: string[], timeoutMs = 5000): Promise<void> {
  await withTimeout(
    'QMP',
    timeoutMs,
    new Promise<void>((resolve, reject) => {
      const s = connect(socket);
      let buffer = '';
      let sent = 0;
      let answered = 0;
      s.on('error', reject);
      s.on('close', () => resolve());
      s.on('data', (d) => {
        buffer += d.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes('"QMP"') && sent === 0) {
            s.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
            sent = 1;
          } else if (line.includes('"return"') || line.includes('"error"')) {
            answered++;
            const next = commands[answered - 1];
            if (next !== undefined) s.write(`${JSON.stringify({ execute: next })}\n`);
            else {
              s.end();
              resolve();
            }
          }
        }
      });
    }),
  );
}
