// What a sandboxed run reached for, sorted: the appliance (the gateway on the sandbox's host end), the
// sandbox's DNS catcher (whose record names each host looked up, all refused), loopback (the agent's own
// processes: nothing else listens in the sandbox), unix sockets, and everything else ("outside": refused
// by the sandbox, since it routes nowhere else). A known attempt is named with why the agent makes it.
import { describeAttempt, isLoopback, type Attempt } from './connections.js';
import type { DnsQuery } from './dns-catcher.js';

export interface NetworkRecord {
  /** The appliance as the agent reached it: the sandbox's host end and the gateway's port. */
  gateway: string;
  /** Connection attempts to the gateway. */
  toGateway: number;
  /** Host names the agent looked up (the catcher refused each: NXDOMAIN). */
  lookups: DnsQuery[];
  /** Attempts to anything but the gateway, the catcher and loopback, with what the kernel answered. */
  outside: Attempt[];
  /** Loopback addresses it connected to (its own processes). */
  loopback: string[];
  /** Unix sockets it connected to (paths). */
  unix: string[];
}

export function networkRecord(input: {
  attempts: Attempt[];
  lookups: DnsQuery[];
  /** The sandbox's host end. */
  address: string;
  gatewayPort: number;
}): NetworkRecord {
  const { attempts, address, gatewayPort } = input;
  const at = (a: Attempt, port: number) => a.family === 'inet' && a.address === address && a.port === port;
  const unique = (xs: string[]) => [...new Set(xs)];
  return {
    gateway: `${address}:${gatewayPort}`,
    toGateway: attempts.filter((a) => a.syscall === 'connect' && at(a, gatewayPort)).length,
    lookups: input.lookups,
    outside: attempts.filter((a) => a.family !== 'unix' && !at(a, gatewayPort) && !at(a, 53) && !isLoopback(a)),
    loopback: unique(attempts.filter(isLoopback).map(describeAttempt)),
    unix: unique(attempts.filter((a) => a.family === 'unix').map((a) => a.address)),
  };
}

/** An attempt an agent is known to make: a host name it looks up, or an address:port it dials. */
export interface KnownAttempt {
  /** What it is (e.g. "Cline's update check"), for the report. */
  what: string;
  lookup?: RegExp;
  address?: RegExp;
}

/** The record's lookups and outside attempts that no known attempt explains (one line each). */
export function unexplained(n: NetworkRecord, known: readonly KnownAttempt[]): string[] {
  const names = n.lookups.filter((q) => !known.some((k) => k.lookup?.test(q.name)));
  const dials = n.outside.filter((a) => !known.some((k) => k.address?.test(describeAttempt(a))));
  return [
    ...names.map((q) => `lookup ${q.name} (${q.type})`),
    ...dials.map((a) => `${a.syscall} ${describeAttempt(a)} → ${a.result}`),
  ];
}

/** One line: the appliance, then what else was attempted and how it ended. */
export function describeNetwork(n: NetworkRecord): string {
  const names = [...new Set(n.lookups.map((q) => q.name))];
  const outside = [...new Set(n.outside.map((a) => `${describeAttempt(a)} → ${a.result}`))];
  const other = [...names.map((name) => `lookup ${name} → NXDOMAIN`), ...outside];
  return `${n.toGateway} connection(s) to the gateway; other attempts: ${other.join(', ') || 'none'}`;
}
