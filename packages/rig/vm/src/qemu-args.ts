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
  /** Guest connections to address:port, each handed to a new `command` on the host (its stdin/stdout). */
  guestForwards: readonly GuestForwardCommand[];
  extraArgs: readonly string[];
}

export interface GuestForwardCommand {
  address: string;
  port: number;
  command: string;
}

/** TCG machine, no display, serial to a file, QMP socket, virtio disk/NIC/RNG, restricted user network. */
export function qemuArgs(m: QemuMachine): string[] {
  const hostfwd = Object.entries(m.ports).map(([guest, host]) => `hostfwd=tcp:127.0.0.1:${host}-:${guest}`);
  // QEMU's manual: guestfwd=tcp:server:port-cmd:command spawns the command for each connection; explicit
  // forwards still work under restrict=on. A comma inside an option value is written twice.
  const guestfwd = m.guestForwards.map(
    (f) => `guestfwd=tcp:${f.address}:${f.port}-cmd:${f.command.split(',').join(',,')}`,
  );
  const args = [
    ...['-name', 'slm-vm', '-nodefaults', '-no-user-config', '-machine', 'pc'],
    ...['-accel', m.accel, '-cpu', m.cpuModel, '-smp', String(m.cpus), '-m', String(m.memoryMb)],
    ...['-display', 'none', '-vga', 'none'],
    ...['-chardev', `file,id=serial0,path=${m.serialLog},append=on`, '-serial', 'chardev:serial0'],
    ...['-qmp', `unix:${m.qmpSocket},server=on,wait=off`],
    ...['-drive', `if=none,id=hd0,file=${m.disk},format=${m.diskFormat},discard=unmap`],
    ...['-device', 'virtio-blk-pci,drive=hd0,bootindex=0'],
    ...['-netdev', ['user', 'id=net0', 'restrict=on', ...hostfwd, ...guestfwd].join(',')],
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

/** A QMP command: its name alone, or with its arguments. */
export type QmpCommand = string | { execute: string; arguments?: Record<string, unknown> };

/** QMP's answer to one command: `return` on success, `error` ({ class, desc }) on failure. */
export interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
}

/**
 * Sends QMP commands over the unix socket, one after the other; resolves with their replies (an `error`
 * reply does not stop the rest) when the last one is answered, or with those answered when the socket closes.
 */
export async function qmp(socket: string, commands: QmpCommand[], timeoutMs = 5000): Promise<QmpReply[]> {
  const message = (c: QmpCommand) => JSON.stringify(typeof c === 'string' ? { execute: c } : c);
  return withTimeout(
    'QMP',
    timeoutMs,
    new Promise<QmpReply[]>((resolve, reject) => {
      const s = connect(socket);
      let buffer = '';
      let greeted = false;
      let answered = 0; // the first answer is qmp_capabilities'; answer n + 1 is commands[n]'s
      const replies: QmpReply[] = [];
      s.on('error', reject);
      s.on('close', () => resolve(replies));
      s.on('data', (d) => {
        buffer += d.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes('"QMP"') && !greeted) {
            greeted = true;
            s.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
            continue;
          }
          let reply: QmpReply;
          try {
            reply = JSON.parse(line) as QmpReply;
          } catch {
            continue; // not a QMP message
          }
          if (!('return' in reply) && !('error' in reply)) continue; // an event (e.g. DEVICE_TRAY_MOVED)
          if (answered > 0) replies.push(reply);
          answered++;
          const next = commands[answered - 1];
          if (next !== undefined) s.write(`${message(next)}\n`);
          else {
            s.end();
            resolve(replies);
          }
        }
      });
    }),
  );
}
