// What a OneFlow service's VMs publish to each other through OneGate, and how the team refresher reads
// GET /service (pure). OneFlow tells a VM its role by ROLE_NAME (and SERVICE_ID) in the VM's USER_TEMPLATE
// (OpenNebula/one src/flow/lib/models/role.rb, as the onegate double traces it), not in the context: the
// service template sets ONEAPP_COPILOT_ROLE per role instead, so configure knows the role before any network.
import type { ServiceDocument, ServiceNode } from '@slm-copilot/onegate';
import { backendAddressProblem, type Backend } from '@slm-copilot/nginx-config';

/** The USER_TEMPLATE keys an inference node publishes (PUT /vm), and the lb's one. */
export const PUBLISHED = {
  address: 'ONEAPP_COPILOT_INFERENCE_ADDRESS',
  ready: 'ONEAPP_COPILOT_READY',
  modelId: 'ONEAPP_COPILOT_MODEL_ID',
  contextSize: 'ONEAPP_COPILOT_CONTEXT_SIZE',
  slots: 'ONEAPP_COPILOT_SLOTS',
  load: 'ONEAPP_COPILOT_LOAD',
  draining: 'ONEAPP_COPILOT_DRAINING',
  lbFingerprint: 'ONEAPP_COPILOT_LB_CLIENT_FINGERPRINT',
} as const;

/** The OneFlow role names of the service template. */
export const ROLE_NAMES = { lb: 'lb', inference: 'inference' } as const;

/** VM STATE 3 (ACTIVE) and LCM_STATE 3 (RUNNING): OpenNebula's numbers, as strings in to_hash. */
const RUNNING = { state: '3', lcm: '3' };

export interface ServiceView {
  backends: Backend[];
  /** Nodes of the inference role left out, and why (one phrase each, for the log). */
  skipped: string[];
}

const nodesOf = (doc: ServiceDocument, role: string): ServiceNode[] =>
  doc.SERVICE.roles.filter((r) => r.name === role).flatMap((r) => r.nodes);

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v.trim() : undefined);

/** Why this node is not a backend now, or its Backend. */
function backendOf(node: ServiceNode): Backend | string {
  const vm = node.vm_info?.VM;
  if (!vm) return `VM ${node.deploy_id}: no VM information (GET /service without extended?)`;
  const id = String(vm.ID);
  if (text(vm.STATE) !== RUNNING.state || text(vm.LCM_STATE) !== RUNNING.lcm) {
    return `VM ${id}: not running (STATE ${String(vm.STATE)}, LCM_STATE ${String(vm.LCM_STATE)})`;
  }
  const ut = vm.USER_TEMPLATE ?? {};
  if (text(ut[PUBLISHED.draining]) === 'YES') return `VM ${id}: draining`;
  if (text(ut[PUBLISHED.ready]) !== 'YES') return `VM ${id}: not ready`;
  const address = text(ut[PUBLISHED.address]) ?? '';
  const problem = backendAddressProblem(address);
  if (problem) return `VM ${id}: ${PUBLISHED.address} ${JSON.stringify(address)}: ${problem}`;
  const slotsText = text(ut[PUBLISHED.slots]) ?? '';
  const slots = /^\d{1,4}$/.test(slotsText) ? Number(slotsText) : 0;
  if (slots < 1 || slots > 1024) return `VM ${id}: ${PUBLISHED.slots} ${JSON.stringify(slotsText)} is not 1-1024`;
  return { vmId: id, address, slots };
}

/**
 * The lb's backends: the nodes of the role named `inference` that run, published READY=YES, are not
 * DRAINING and give a literal address and a slot count; sorted by VM id. A node that vanished from
 * /service (OneFlow scaled it in) is simply not there.
 */
export function backendsFromService(doc: ServiceDocument): ServiceView {
  const backends: Backend[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const node of nodesOf(doc, ROLE_NAMES.inference)) {
    const b = backendOf(node);
    if (typeof b === 'string') skipped.push(b);
    else if (seen.has(b.address)) skipped.push(`VM ${b.vmId}: address ${b.address} already used by another VM`);
    else {
      seen.add(b.address);
      backends.push(b);
    }
  }
  backends.sort((a, b) => Number(a.vmId) - Number(b.vmId));
  return { backends, skipped };
}

/** The client certificate fingerprints the service's lb VMs published (what an inference node accepts). */
export function lbFingerprintsFromService(doc: ServiceDocument): string[] {
  const out = new Set<string>();
  for (const node of nodesOf(doc, ROLE_NAMES.lb)) {
    const f = text(node.vm_info?.VM.USER_TEMPLATE?.[PUBLISHED.lbFingerprint]);
    if (f && /^[0-9a-f]{40}$/.test(f)) out.add(f);
  }
  return [...out].sort();
}

/** A set's identity for "did it change": address, slots and VM of every backend in order. */
export const backendSetKey = (backends: readonly Backend[]): string =>
  backends.map((b) => `${b.vmId}@${b.address}/${b.slots}`).join(',');
