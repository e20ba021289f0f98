// The service's private network: a veth pair from the lb's namespace to each inference node's namespace
// (a point-to-point /30 per node, 10.233.<k>.1 lb side, .2 node side). The addresses exist only inside our
// namespaces, so they cannot clash with the host's; deleting a namespace deletes its end of the pair.
import { $ } from 'zx';
import type { Netns } from '@slm-copilot/hardening/test-support/netns';

export interface Link {
  /** The lb's address on this link. */
  lbAddress: string;
  /** The inference node's address on this link (what it publishes, with its port). */
  nodeAddress: string;
}

export async function linkNamespaces(lb: Netns, node: Netns, k: number): Promise<Link> {
  const [a, b] = [`tl${k}a`, `tl${k}b`];
  const lbAddress = `10.233.${k}.1`;
  const nodeAddress = `10.233.${k}.2`;
  const steps: string[][] = [
    ['ip', 'link', 'add', a, 'netns', lb.name, 'type', 'veth', 'peer', 'name', b, 'netns', node.name],
    [...lb.exec, 'ip', 'addr', 'add', `${lbAddress}/30`, 'dev', a],
    [...lb.exec, 'ip', 'link', 'set', a, 'up'],
    [...node.exec, 'ip', 'addr', 'add', `${nodeAddress}/30`, 'dev', b],
    [...node.exec, 'ip', 'link', 'set', b, 'up'],
  ];
  for (const s of steps) {
    const r = await $({ nothrow: true, quiet: true })`${s}`;
    if (r.exitCode !== 0) throw new Error(`${s.join(' ')}: ${r.stderr.trim()}`);
  }
  return { lbAddress, nodeAddress };
}
