import { describe, expect, it } from 'vitest';
import { qemuArgs, type QemuMachine } from './qemu-args.js';

const machine: QemuMachine = {
  accel: 'tcg,thread=multi',
  cpuModel: 'max',
  cpus: 2,
  memoryMb: 1024,
  serialLog: '/w/serial.log',
  qmpSocket: '/w/qmp.sock',
  disk: '/w/overlay.qcow2',
  diskFormat: 'qcow2',
  cdrom: undefined,
  ports: { 22: 40022, 443: 40443 },
  guestForwards: [],
  extraArgs: [],
};

const after = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

describe('qemuArgs', () => {
  it('restricts the guest network and binds every forward to 127.0.0.1 only', () => {
    const [netdev] = after(qemuArgs(machine), '-netdev');
    expect(netdev?.split(',')).toEqual([
      'user',
      'id=net0',
      'restrict=on',
      'hostfwd=tcp:127.0.0.1:40022-:22',
      'hostfwd=tcp:127.0.0.1:40443-:443',
    ]);
  });

  it('hands guest connections to a host command (guestfwd), commas doubled', () => {
    const guestForwards = [{ address: '10.0.2.100', port: 5030, command: '/usr/bin/node /w/relay.cjs 127.0.0.1,9' }];
    const [netdev] = after(qemuArgs({ ...machine, guestForwards }), '-netdev');
    expect(netdev).toMatch(
      /,restrict=on,.*,guestfwd=tcp:10\.0\.2\.100:5030-cmd:\/usr\/bin\/node \/w\/relay\.cjs 127\.0\.0\.1,,9$/,
    );
  });

  it('attaches the disk, the serial log and the QMP socket; a CD only when given', () => {
    const args = qemuArgs(machine);
    expect(after(args, '-drive')).toEqual(['if=none,id=hd0,file=/w/overlay.qcow2,format=qcow2,discard=unmap']);
    expect(after(args, '-chardev')).toEqual(['file,id=serial0,path=/w/serial.log,append=on']);
    expect(after(args, '-qmp')).toEqual(['unix:/w/qmp.sock,server=on,wait=off']);
    const withCd = qemuArgs({ ...machine, cdrom: '/w/context.iso', extraArgs: ['-snapshot'] });
    expect(after(withCd, '-drive')[1]).toBe('if=none,id=cd0,media=cdrom,readonly=on,format=raw,file=/w/context.iso');
    expect(withCd.at(-1)).toBe('-snapshot');
  });
});
