/**
 * TEST DOUBLE of OneGate (OpenNebula's server cannot run here): real HTTP on loopback, answering as
 * OpenNebula/one f847cf2e9a78da302cd0344505f93eadc43a6d28 src/onegate/onegate-server.rb does for the
 * routes the appliance uses, and recording every request (method, path, headers, raw body) for assertions.
 * Traced to that file unless said otherwise:
 * - `before`: every answer is `Content-Type: application/json;charset=utf-8`, errors included.
 * - authenticate + src/cloud/common/CloudAuth/OneGateCloudAuth.rb do_auth: no X-ONEGATE-TOKEN or
 *   X-ONEGATE-VMID header, an unknown VM or a token that is not this VM's → 401 "Not authorized".
 *   (The real token is the VM's "ID:STIME" encrypted with its owner's TOKEN_PASSWORD; here each VM has one.)
 * - `put '/vm'` + update: params `data` and `type` (form-encoded; Rack parses the body only with a
 *   form Content-Type, otherwise `data` is nil and the raw body is taken as the data); type 1 (default)
 *   appends the `K=V` lines to USER_TEMPLATE, type 2 deletes one attribute (500 "attribute not found" when
 *   absent); RESTRICTED_ATTRS → 403 "Attribute (K) cannot be modified|deleted"; answers 200 with "".
 * - `get '/vm'` → build_vm_hash (see src/documents.ts).
 * - `get '/service'` → get_service (no or bad SERVICE_ID in the VM's USER_TEMPLATE → 400 "Empty or invalid
 *   SERVICE_ID"; unknown → 404 "Service N not found"), check_vm_in_service (400 "Service N does not contain
 *   VM M."), build_service_hash; `extended` in the params (query or form body) swaps vm_info for the VM's
 *   whole to_hash. OneFlow's stored vm_info is VM_INFO's keys only (src/flow/lib/models/role.rb), and
 *   OneFlow puts SERVICE_ID and ROLE_NAME in each VM's USER_TEMPLATE (role.rb, extra_template).
 * - An unknown route: Sinatra's 404 page.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServiceDocument, VmDocument, VmInfo, VmNic } from '../src/documents.js';

export interface RecordedRequest {
  method: string;
  /** Path and query as sent. */
  path: string;
  /** As node:http parsed them (lower-case names). */
  headers: IncomingHttpHeaders;
  /** The raw body, as sent. */
  body: string;
  /** What the double answered. */
  status: number;
}

/** A VM the double knows: what OpenNebula keeps of it that OneGate shows. */
export interface DoubleVm {
  id: number;
  name: string;
  /** The token this VM's context carries (token.txt). */
  token: string;
  /** VM STATE / LCM_STATE numbers (3 / 3: ACTIVE / RUNNING). */
  state: number;
  lcmState: number;
  /** USER_TEMPLATE: what `PUT /vm` changes, and OneFlow's SERVICE_ID / ROLE_NAME. */
  userTemplate: Record<string, string>;
  /** TEMPLATE/NIC entries (NIC_ID, IP, MAC, NETWORK, …). */
  nics: (VmNic & Record<string, string>)[];
}

export interface ServiceSpec {
  id: number;
  name?: string;
  /** OneFlow's service state (2: RUNNING). */
  state?: number;
  /** Roles in order; each lists the ids of its VMs (added with addVm). Cardinality defaults to their count. */
  roles: { name: string; vms: number[]; cardinality?: number; state?: number }[];
}

export interface OneGateDouble {
  /** ONEGATE_ENDPOINT for the client (http://127.0.0.1:PORT). */
  endpoint: string;
  requests: RecordedRequest[];
  vms: Map<number, DoubleVm>;
  /** Adds a VM (id and token chosen when not given) and returns it; change its fields freely later. */
  addVm(vm?: Partial<DoubleVm>): DoubleVm;
  /** The context variables one-context gives that VM: ONEGATE_ENDPOINT, VMID, ONEGATE_TOKEN. */
  contextOf(vm: DoubleVm): Record<string, string>;
  /** Sets (or replaces) the service; its VMs get SERVICE_ID and ROLE_NAME in USER_TEMPLATE, as OneFlow does. */
  setService(spec: ServiceSpec): void;
  /** Removes a VM from the service's roles (scale-in as /service shows it). */
  removeFromService(vmId: number): void;
  /** Answers the next requests with these statuses (503, 500, 404, …) before serving normally again. */
  failNext(...answers: ({ status: number; body?: string } | 'drop')[]): void;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json;charset=utf-8';
const NIC_VALID_KEYS = ['IP', 'IP6_LINK', 'IP6_SITE', 'IP6_GLOBAL', 'NETWORK', 'MAC', 'NAME', 'PARENT', 'EXTERNAL'];
const RESTRICTED_ATTRS = ['SCHED_REQUIREMENTS', 'SERVICE_ID', 'ROLE_NAME'];

/** onegate-server.rb build_vm_hash. */
export function vmHash(vm: DoubleVm): VmDocument {
  const { SCHED_MESSAGE: _dropped, ...userTemplate } = vm.userTemplate;
  const nic = (n: Record<string, string>) =>
    Object.fromEntries(Object.entries(n).filter(([k]) => [...NIC_VALID_KEYS, 'EXTERNAL_IP'].includes(k)));
  return {
    VM: {
      NAME: vm.name,
      ID: String(vm.id),
      STATE: String(vm.state),
      LCM_STATE: String(vm.lcmState),
      USER_TEMPLATE: userTemplate,
      TEMPLATE: { NIC: vm.nics.map(nic), NIC_ALIAS: [] },
    },
  };
}

/** The VM's to_hash (xml_element.rb: strings; one NIC an object, several an array). */
export function vmToHash(vm: DoubleVm): VmInfo {
  const NIC = vm.nics.length === 1 ? vm.nics[0] : vm.nics.length > 1 ? vm.nics : undefined;
  return {
    VM: {
      ID: String(vm.id),
      UID: '0',
      GID: '0',
      UNAME: 'oneadmin',
      GNAME: 'oneadmin',
      NAME: vm.name,
      STATE: String(vm.state),
      LCM_STATE: String(vm.lcmState),
      TEMPLATE: { ...(NIC ? { NIC } : {}), VMID: String(vm.id) },
      USER_TEMPLATE: { ...vm.userTemplate },
    },
  };
}

/** role.rb fill_node_info: what OneFlow keeps of a node's VM (VM_INFO). */
function storedVmInfo(vm: DoubleVm): VmInfo {
  const { ID, UID, GID, UNAME, GNAME, NAME } = vmToHash(vm).VM;
  return { VM: { ID, UID, GID, UNAME, GNAME, NAME } };
}

interface Reply {
  status: number;
  body: string;
}

export async function startOneGateDouble(options: { port?: number } = {}): Promise<OneGateDouble> {
  const vms = new Map<number, DoubleVm>();
  const requests: RecordedRequest[] = [];
  const queued: ({ status: number; body?: string } | 'drop')[] = [];
  let service: ServiceSpec | null = null;
  let nextId = 100;

  const serviceDocument = (spec: ServiceSpec, extended: boolean): ServiceDocument => ({
    SERVICE: {
      name: spec.name ?? `service-${spec.id}`,
      id: String(spec.id),
      state: spec.state ?? 2,
      roles: spec.roles.map((role) => ({
        name: role.name,
        cardinality: role.cardinality ?? role.vms.length,
        state: role.state ?? 2,
        nodes: role.vms.map((id) => {
          const vm = vms.get(id);
          const info = vm ? (extended ? vmToHash(vm) : storedVmInfo(vm)) : null;
          return { deploy_id: id, running: null, vm_info: info };
        }),
      })),
    },
  });

  const update = (vm: DoubleVm, params: URLSearchParams | null, raw: string): Reply => {
    const data = params?.get('data') ?? raw;
    const type = Number(params?.get('type') ?? '1');
    const error = type === 1 ? 'cannot be modified' : 'cannot be deleted';
    for (const line of data.split('\n')) {
      const key = line.split('=')[0] ?? '';
      if (RESTRICTED_ATTRS.includes(key.toUpperCase())) return { status: 403, body: `Attribute (${key}) ${error}` };
    }
    if (type !== 1) {
      if (!(data in vm.userTemplate)) return { status: 500, body: 'attribute not found' };
      delete vm.userTemplate[data];
      return { status: 200, body: '' };
    }
    for (const line of data.split('\n').filter((l) => l.includes('='))) {
      const at = line.indexOf('=');
      vm.userTemplate[line.slice(0, at)] = line.slice(at + 1);
    }
    return { status: 200, body: '' };
  };

  const serviceOf = (vm: DoubleVm, params: URLSearchParams): Reply => {
    const id = vm.userTemplate.SERVICE_ID;
    if (!id || !/^\d+$/.test(id)) return { status: 400, body: 'Empty or invalid SERVICE_ID' };
    if (!service || String(service.id) !== id) return { status: 404, body: `Service ${id} not found` };
    if (!service.roles.some((r) => r.vms.includes(vm.id)))
      return { status: 400, body: `Service ${id} does not contain VM ${vm.id}.` };
    return { status: 200, body: JSON.stringify(serviceDocument(service, params.has('extended'))) };
  };

  const route = (method: string, url: URL, headers: IncomingHttpHeaders, raw: string): Reply => {
    const form = (headers['content-type'] ?? '').split(';')[0]!.trim() === 'application/x-www-form-urlencoded';
    const body = form ? new URLSearchParams(raw) : null;
    const params = new URLSearchParams([...url.searchParams, ...(body ?? [])]);
    const known = ['PUT /vm', 'GET /vm', 'GET /service'].includes(`${method} ${url.pathname}`);
    if (!known) return { status: 404, body: '<h1>Not Found</h1>' };
    const vmId = headers['x-onegate-vmid'];
    const vm = typeof vmId === 'string' ? vms.get(Number(vmId)) : undefined;
    if (!vm || headers['x-onegate-token'] !== vm.token) return { status: 401, body: 'Not authorized' };
    if (method === 'PUT') return update(vm, body, raw);
    if (url.pathname === '/vm') return { status: 200, body: JSON.stringify(vmHash(vm)) };
    return serviceOf(vm, params);
  };

  const server = createServer((req, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const record = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: raw };
      const next = queued.shift();
      if (next === 'drop') {
        requests.push({ ...record, status: 0 });
        req.socket.destroy();
        return;
      }
      const reply = next
        ? { status: next.status, body: next.body ?? 'Internal server error' }
        : route(record.method, new URL(record.path, 'http://onegate'), req.headers, raw);
      requests.push({ ...record, status: reply.status });
      res.writeHead(reply.status, { 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(reply.body) });
      res.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    requests,
    vms,
    addVm(spec = {}) {
      const id = spec.id ?? nextId++;
      const vm: DoubleVm = {
        name: `vm-${id}`,
        token: `token-of-vm-${id}-${Math.random().toString(36).slice(2)}`,
        state: 3,
        lcmState: 3,
        userTemplate: {},
        nics: [{ NIC_ID: '0', IP: `10.0.0.${id % 250}`, MAC: '02:00:0a:00:00:01', NETWORK: 'private' }],
        ...spec,
        id,
      };
      vms.set(id, vm);
      return vm;
    },
    contextOf: (vm) => ({ ONEGATE_ENDPOINT: endpoint, VMID: String(vm.id), ONEGATE_TOKEN: vm.token }),
    setService(spec) {
      service = { ...spec, roles: spec.roles.map((r) => ({ ...r, vms: [...r.vms] })) };
      for (const role of spec.roles) {
        for (const id of role.vms) {
          const vm = vms.get(id);
          if (vm) Object.assign(vm.userTemplate, { SERVICE_ID: String(spec.id), ROLE_NAME: role.name });
        }
      }
    },
    removeFromService(vmId) {
      for (const role of service?.roles ?? []) role.vms = role.vms.filter((id) => id !== vmId);
    },
    failNext: (...answers) => void queued.push(...answers),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
