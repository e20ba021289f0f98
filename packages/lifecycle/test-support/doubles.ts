// Test support (never shipped): the doubles and fixed facts the lifecycle's tests and the hardening
// suite share, so that they cannot drift apart.
import type { HostFacts } from '@slm-copilot/task-kit';
import type { ServiceControl } from '../src/services.js';

/** Test double for systemd (named as such): records what the lifecycle asks for; nothing runs. */
export class RecordingServices implements ServiceControl {
  calls: string[] = [];
  async daemonReload() {
    this.calls.push('daemon-reload');
  }
  async restart(unit: string) {
    this.calls.push(`restart ${unit}`);
  }
  async ensureStarted(unit: string) {
    this.calls.push(`start ${unit}`);
  }
  async reload(unit: string) {
    this.calls.push(`reload ${unit}`);
  }
  async isActive() {
    return false;
  }
  async stopAndDisable(unit: string) {
    this.calls.push(`stop+disable ${unit}`);
  }
}

/** A 2-core, 8 GiB host with AVX2 (the facts a configure run is given instead of reading this machine). */
export const testHost: HostFacts = {
  cpuFlags: ['avx', 'avx2', 'fma'],
  physicalCores: 2,
  logicalCpus: 2,
  cpuModel: 'test',
  memTotalBytes: 8 * 1024 ** 3,
  memAvailableBytes: 6 * 1024 ** 3,
  hostname: 'copilot',
  ipAddresses: ['192.0.2.10'],
};
