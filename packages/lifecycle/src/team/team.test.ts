// The team refresher's pure parts (GET /service → backends / lb fingerprints; the load figure) and its
// loop against the OneGate double: the exact requests it makes, and that it applies only on a change.
import { OneGateClient, type ServiceDocument } from '@slm-copilot/onegate';
import { startOneGateDouble, type OneGateDouble } from '@slm-copilot/onegate/test-support/onegate-double';
import { captureLog, quietLog } from '@slm-copilot/task-kit/test-support/log';
import { afterEach, describe, expect, it } from 'vitest';
import { engineLoad, gatewayLoad, inferencePublication } from './load.js';
import { drain, TeamRefresher, type TeamView } from './refresh.js';
import { backendsFromService, lbFingerprintsFromService, PUBLISHED } from './service-view.js';

const node = (id: number, ut: Record<string, string>, state = ['3', '3']) => ({
  deploy_id: id,
  running: null,
  vm_info: { VM: { ID: String(id), NAME: `vm-${id}`, STATE: state[0], LCM_STATE: state[1], USER_TEMPLATE: ut } },
});
const ready = (address: string, extra: Record<string, string> = {}) => ({
  [PUBLISHED.address]: address,
  [PUBLISHED.ready]: 'YES',
  [PUBLISHED.slots]: '2',
  ...extra,
});
const doc = (lb: unknown[], inference: unknown[]): ServiceDocument =>
  ({
    SERVICE: {
      name: 's',
      id: '1',
      state: 2,
      roles: [
        { name: 'lb', cardinality: lb.length, state: 2, nodes: lb },
        { name: 'inference', cardinality: inference.length, state: 2, nodes: inference },
      ],
    },
  }) as ServiceDocument;

describe('backendsFromService', () => {
  it('keeps the running, ready, non-draining nodes with an address and slots; says why for the others', () => {
    const view = backendsFromService(
      doc(
        [node(1, { [PUBLISHED.address]: '10.0.0.1:443', [PUBLISHED.ready]: 'YES', [PUBLISHED.slots]: '1' })],
        [
          node(12, ready('10.0.0.12:443')),
          node(5, ready('10.0.0.5:443', { [PUBLISHED.slots]: '1' })),
          node(6, ready('10.0.0.6:443', { [PUBLISHED.draining]: 'YES' })),
          node(7, ready('10.0.0.7:443', { [PUBLISHED.ready]: 'NO' })),
          node(8, ready('node8:443')),
          node(9, ready('10.0.0.9:443'), ['3', '21']),
          node(10, ready('10.0.0.10:443', { [PUBLISHED.slots]: 'many' })),
          node(11, ready('10.0.0.12:443')),
          { deploy_id: 13, running: null, vm_info: null },
        ],
      ),
    );
    expect(view.backends).toEqual([
      { vmId: '5', address: '10.0.0.5:443', slots: 1 },
      { vmId: '12', address: '10.0.0.12:443', slots: 2 },
    ]);
    expect(view.skipped).toEqual([
      'VM 6: draining',
      'VM 7: not ready',
      'VM 8: ONEAPP_COPILOT_INFERENCE_ADDRESS "node8:443": expected ip:port or [ipv6]:port',
      'VM 9: not running (STATE 3, LCM_STATE 21)',
      'VM 10: ONEAPP_COPILOT_SLOTS "many" is not 1-1024',
      'VM 11: address 10.0.0.12:443 already used by another VM',
      'VM 13: no VM information (GET /service without extended?)',
    ]);
  });

  it("reads the lb role's published client certificate fingerprints only", () => {
    const f = 'a1'.repeat(20);
    const d = doc(
      [node(1, { [PUBLISHED.lbFingerprint]: f }), node(2, { [PUBLISHED.lbFingerprint]: 'not-hex' })],
      [node(3, { [PUBLISHED.lbFingerprint]: 'b2'.repeat(20) })],
    );
    expect(lbFingerprintsFromService(d)).toEqual([f]);
  });
});

describe('the load figure', () => {
  it('is (busy slots + queued) / slots in percent, from /slots and /metrics', () => {
    const slots = [{ is_processing: true }, { is_processing: false }];
    expect(engineLoad(slots, 'llamacpp:requests_processing 1\nllamacpp:requests_deferred 3\n')).toEqual({
      slots: 2,
      busy: 1,
      queued: 3,
      load: 200,
    });
    expect(engineLoad(slots, null)).toEqual({ slots: 2, busy: 1, queued: 0, load: 50 });
    expect(engineLoad({ error: 'x' }, null)).toBeNull();
  });

  it("without /slots (LocalAI): the gateway's requests in progress, less the read itself, ÷ slots", () => {
    // nginx's stub_status page, byte for byte (ngx_http_stub_status_module.c's format, trailing spaces included)
    const page = (writing: number) =>
      'Active connections: 9 \nserver accepts handled requests\n 120 120 480 \n' +
      `Reading: 0 Writing: ${writing} Waiting: 3 \n`;
    expect(gatewayLoad(page(1), 2)).toEqual({ slots: 2, busy: 0, queued: 0, load: 0 });
    expect(gatewayLoad(page(2), 2)).toEqual({ slots: 2, busy: 1, queued: 0, load: 50 });
    expect(gatewayLoad(page(6), 2)).toEqual({ slots: 2, busy: 2, queued: 3, load: 250 });
    expect(gatewayLoad('{"error":{"code":"not_found"}}', 2)).toBeNull();
    expect(gatewayLoad(null, 2)).toBeNull();
    expect(gatewayLoad(page(3), 0)).toBeNull();
  });

  it('publishes READY=NO while draining, never anything but the agreed keys', () => {
    const pairs = inferencePublication({
      address: '10.0.0.5:443',
      ready: true,
      draining: true,
      modelId: 'm',
      contextSize: 4096,
      slots: 2,
      load: null,
    });
    expect(pairs).toEqual({
      ONEAPP_COPILOT_INFERENCE_ADDRESS: '10.0.0.5:443',
      ONEAPP_COPILOT_READY: 'NO',
      ONEAPP_COPILOT_MODEL_ID: 'm',
      ONEAPP_COPILOT_CONTEXT_SIZE: '4096',
      ONEAPP_COPILOT_SLOTS: '2',
      ONEAPP_COPILOT_LOAD: '0',
      ONEAPP_COPILOT_DRAINING: 'YES',
    });
  });
});

describe('TeamRefresher against the OneGate double', () => {
  let double: OneGateDouble | undefined;
  afterEach(async () => double?.close());

  const client = (d: OneGateDouble, id: number) => {
    const vm = d.vms.get(id)!;
    return new OneGateClient(
      { endpoint: d.endpoint, vmId: String(id), token: vm.token, tokenFrom: 't' },
      { log: quietLog, attempts: 1 },
    );
  };

  it('lb: publishes its fingerprint once, reads /service extended, applies only when the set changes', async () => {
    double = await startOneGateDouble();
    const lb = double.addVm({ id: 1 });
    const inf = double.addVm({ id: 2, userTemplate: ready('10.0.0.2:443') });
    double.setService({
      id: 9,
      roles: [
        { name: 'lb', vms: [1] },
        { name: 'inference', vms: [2] },
      ],
    });
    const applied: TeamView[] = [];
    const r = new TeamRefresher({
      role: 'lb',
      oneGate: client(double, 1),
      lbFingerprint: 'f'.repeat(40),
      apply: async (v) => (applied.push(v), true),
      log: quietLog,
    });
    expect((await r.tick()).applied).toBe(true);
    expect((await r.tick()).applied).toBe(false);
    inf.userTemplate[PUBLISHED.draining] = 'YES';
    expect((await r.tick()).applied).toBe(true);
    expect(applied).toEqual([
      { role: 'lb', backends: [{ vmId: '2', address: '10.0.0.2:443', slots: 2 }] },
      { role: 'lb', backends: [] },
    ]);
    expect(lb.userTemplate[PUBLISHED.lbFingerprint]).toBe('f'.repeat(40));
    expect(double.requests.map((q) => `${q.method} ${q.path} ${q.body} ${q.status}`)).toEqual([
      `PUT /vm data=${PUBLISHED.lbFingerprint}%3D${'f'.repeat(40)}&type=1 200`,
      ...Array(3).fill('GET /service extended=true 200'),
    ]);
  });

  it('keeps the applied set when OneGate fails or nginx refuses, and says so once', async () => {
    double = await startOneGateDouble();
    double.addVm({ id: 1 });
    double.addVm({ id: 2, userTemplate: ready('10.0.0.2:443') });
    double.setService({
      id: 9,
      roles: [
        { name: 'lb', vms: [1] },
        { name: 'inference', vms: [2] },
      ],
    });
    const { log, lines } = captureLog();
    let refuse = true;
    const r = new TeamRefresher({
      role: 'lb',
      oneGate: client(double, 1),
      apply: async () => {
        if (refuse) throw new Error('nginx -t refused the new gateway configuration');
        return true;
      },
      log,
    });
    expect(await r.tick()).toEqual({ applied: false, key: null });
    refuse = false;
    double.failNext({ status: 503 }, { status: 503 });
    expect((await r.tick()).key).toBeNull();
    expect((await r.tick()).key).toBeNull();
    expect(lines.filter((l) => l.includes('GET /service')).length).toBe(1);
    expect((await r.tick()).applied).toBe(true);
    expect(lines.some((l) => l.includes('could not apply'))).toBe(true);
  });

  it('inference: publishes its status when it changes, learns the lb, drains on stop', async () => {
    double = await startOneGateDouble();
    double.addVm({ id: 1, userTemplate: { [PUBLISHED.lbFingerprint]: 'e'.repeat(40) } });
    const me = double.addVm({ id: 2 });
    double.setService({
      id: 9,
      roles: [
        { name: 'lb', vms: [1] },
        { name: 'inference', vms: [2] },
      ],
    });
    let busy = 1;
    const deps = {
      role: 'inference' as const,
      oneGate: client(double, 2),
      apply: async (v: TeamView) => (applied.push(v), true),
      status: async (draining: boolean) => ({
        address: '10.0.0.2:443',
        ready: true,
        draining,
        modelId: 'm',
        contextSize: 4096,
        slots: 1,
        load: { slots: 1, busy, queued: 0, load: busy * 100 },
      }),
      log: quietLog,
    };
    const applied: TeamView[] = [];
    const r = new TeamRefresher(deps);
    await r.tick();
    await r.tick();
    expect(applied).toEqual([{ role: 'inference', lbFingerprints: ['e'.repeat(40)] }]);
    expect(me.userTemplate).toMatchObject({ [PUBLISHED.ready]: 'YES', [PUBLISHED.load]: '100' });
    // READY=NO until it accepts a load balancer (first pass), then YES: two PUTs, none after (nothing changed)
    expect(double.requests.filter((q) => q.method === 'PUT').map((q) => q.body.includes('READY%3DYES'))).toEqual([
      false,
      true,
    ]);
    setTimeout(() => (busy = 0), 50);
    expect(await drain(r, deps, { boundMs: 5000, minimumMs: 0, pollMs: 20 })).toBe(true);
    expect(me.userTemplate).toMatchObject({ [PUBLISHED.ready]: 'NO', [PUBLISHED.draining]: 'YES' });
  });
});
