// What the report says about the machine it ran on, and where the appliance keeps its model.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { hostname, release, totalmem } from 'node:os';
import path from 'node:path';
import type { HostFacts } from '@slm-copilot/task-kit';
import { round } from './stats.js';
import type { BenchReport } from './types.js';

export function machineFacts(host: HostFacts): BenchReport['machine'] {
  let thp = 'unknown';
  try {
    thp = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    /* no THP */
  }
  return {
    proactiveReclaim: damonReclaim(),
    hostname: hostname(),
    cpuModel: host.cpuModel,
    logicalCpus: host.logicalCpus,
    physicalCores: host.physicalCores,
    memTotalGiB: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    transparentHugepages: thp,
    avx512: host.cpuFlags.includes('avx512f'),
  };
}

const numbered = (dir: string) => readdirSync(dir).filter((n) => /^\d+$/.test(n));

/** Running DAMON schemes that page memory out (`pageout` after `min age` aggregation intervals), or "none". */
function damonReclaim(): string {
  const root = '/sys/kernel/mm/damon/admin/kdamonds';
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const found: string[] = [];
  for (const k of existsSync(root) ? numbered(root) : []) {
    if (read(`${root}/${k}/state`) !== 'on') continue;
    for (const c of numbered(`${root}/${k}/contexts`)) {
      const ctx = `${root}/${k}/contexts/${c}`;
      const aggrUs = Number(read(`${ctx}/monitoring_attrs/intervals/aggr_us`));
      for (const sc of numbered(`${ctx}/schemes`)) {
        const action = read(`${ctx}/schemes/${sc}/action`);
        if (action !== 'pageout') continue;
        const minAge = Number(read(`${ctx}/schemes/${sc}/access_pattern/age/min`));
        const seconds = Number.isFinite(minAge * aggrUs) ? Math.round((minAge * aggrUs) / 1e6) : '?';
        found.push(`DAMON pageout of memory idle ≥ ${seconds} s`);
      }
    }
  }
  return found.length ? found.join('; ') : 'none';
}

/** The appliance's default model file on the VM, if the bench runs there. */
export function applianceModel(): string | undefined {
  const dir = '/opt/slm-copilot/models';
  if (!existsSync(dir)) return undefined;
  const f = readdirSync(dir).find((n) => n.endsWith('.gguf'));
  return f ? path.join(dir, f) : undefined;
}
