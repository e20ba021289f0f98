/**
 * The OneFlow service template: its exact shape, the committed copy, and its validity against OneFlow's
 * rules transcribed from OpenNebula's source (contract/oneflow-7.4.0.json) — with mutations proving
 * that the validator refuses what OneFlow refuses.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { userInput, variableByName, variables } from '@slm-copilot/context-schema';
import { loadOneflowContract, serviceTemplateProblems } from './oneflow-contract.js';
import { main } from './oneflow-generate.js';
import {
  INPUT_SCOPE,
  LOAD_ATTRIBUTE,
  ROLE_VARIABLE,
  renderServiceTemplate,
  SERVICE_TEMPLATE_FILE,
  serviceTemplate,
} from './oneflow-template.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const contract = loadOneflowContract();
type Doc = ReturnType<typeof serviceTemplate>;
/** A deep copy to mutate; Reflect.set/deleteProperty break its types on purpose. */
const fresh = (): Doc => JSON.parse(JSON.stringify(serviceTemplate({ templateId: 42 }))) as Doc;
const policies = (d: Doc) => d.roles[0]!.elasticity_policies!;
type Policy = ReturnType<typeof policies>[number];
const inputsFor = (names: string[]) => Object.fromEntries(names.map((n) => [n, userInput(variableByName.get(n)!)]));

describe('serviceTemplate', () => {
  it('renders the service exactly: lb after an elastic inference role, one network, the inputs per role', () => {
    const doc: Doc = serviceTemplate({ templateId: 42 });
    const context = (role: string) => ({ NETWORK: 'YES', TOKEN: 'YES', REPORT_READY: 'YES', [ROLE_VARIABLE]: role });
    const nic = [{ NAME: 'NIC0', NETWORK_ID: '$service' }];
    expect(doc).toEqual({
      name: 'SLM-Copilot team',
      description: expect.stringContaining('set template_id to its ID') as unknown,
      deployment: 'straight',
      ready_status_gate: true,
      networks: { service: 'M|network|Network of the service: users reach the load balancer on it| |' },
      user_inputs: inputsFor(
        ['ONEAPP_COPILOT_MODEL_ID', 'ONEAPP_COPILOT_REQUEST_TIMEOUT'].concat([
          'ONEAPP_COPILOT_MAX_BODY_SIZE',
          'ONEAPP_COPILOT_METRICS',
        ]),
      ),
      roles: [
        {
          name: 'inference',
          type: 'vm',
          template_id: 42,
          cardinality: 1,
          min_vms: 1,
          max_vms: 4,
          cooldown: 600,
          shutdown_action: 'terminate',
          elasticity_policies: [
            { type: 'CHANGE', adjust: 1, expression: 'ONEAPP_COPILOT_LOAD > 80', period: 60, period_number: 3 },
            { type: 'CHANGE', adjust: -1, expression: 'ONEAPP_COPILOT_LOAD < 20', period: 60, period_number: 10 },
          ],
          user_inputs: inputsFor(
            [
              'ENGINE',
              'CONTEXT_SIZE',
              'KV_CACHE_TYPE',
              'THREADS',
              'PARALLEL',
              'MAX_TOKENS',
              'PROMPT_CACHE_PERSIST',
            ].map((n) => `ONEAPP_COPILOT_${n}`),
          ),
          template_contents: { NIC: nic, CONTEXT: context('inference') },
        },
        {
          name: 'lb',
          type: 'vm',
          template_id: 42,
          parents: ['inference'],
          cardinality: 1,
          min_vms: 1,
          max_vms: 1,
          user_inputs: inputsFor(
            [
              ...['PASSWORD', 'EXTRA_API_KEYS', 'HOSTNAME', 'HTTPS_PORT', 'TLS_MODE', 'TLS_CERT', 'TLS_KEY'],
              ...[
                'LETSENCRYPT_EMAIL',
                'ACME_DIRECTORY',
                'CORS_ORIGINS',
                'RATE_LIMIT',
                'CONNECTION_LIMIT',
                'BASIC_AUTH',
              ],
            ].map((n) => `ONEAPP_COPILOT_${n}`),
          ),
          template_contents: { CPU: '2', VCPU: '2', MEMORY: '4096', NIC: nic, CONTEXT: context('lb') },
        },
      ],
    });
    expect(doc.roles[0]!.user_inputs.ONEAPP_COPILOT_CONTEXT_SIZE).toBe(
      "O|number|Context window per request, in tokens (an agent's first request alone can take 30-45 k). " +
        'The engine reserves this times the parallel slots; clamped (with a warning) when RAM is short or beyond the ' +
        "model's trained context.| |65536",
    );
  });

  it('offers every context variable once, on the role that reads it; the secrets only on the lb', () => {
    const doc = serviceTemplate();
    const offered = [doc.user_inputs, ...doc.roles.map((r) => r.user_inputs)].flatMap((i) => Object.keys(i));
    const expected = variables.map((v) => v.name).filter((n) => n !== ROLE_VARIABLE);
    expect([...offered].sort()).toEqual([...expected].sort());
    expect(Object.keys(INPUT_SCOPE).sort()).toEqual([...expected].sort());
    const lb = doc.roles.find((r) => r.name === 'lb')!;
    for (const v of variables.filter((s) => s.secret)) expect(Object.keys(lb.user_inputs), v.name).toContain(v.name);
  });

  it("takes the builder's defaults, checked by the context schema", () => {
    const built = serviceTemplate({ defaults: { ONEAPP_COPILOT_CONTEXT_SIZE: 4096 } });
    expect(built.roles[0]!.user_inputs.ONEAPP_COPILOT_CONTEXT_SIZE).toMatch(/\| \|4096$/);
    expect(serviceTemplate().roles[0]!.user_inputs.ONEAPP_COPILOT_CONTEXT_SIZE).not.toMatch(/\|4096$/);
    expect(serviceTemplateProblems(contract, built)).toEqual([]);
    expect(() => serviceTemplate({ defaults: { ONEAPP_COPILOT_CONTEXT_SIZE: 12 } })).toThrow(
      /ONEAPP_COPILOT_CONTEXT_SIZE/,
    );
  });

  it('sets each role by ONEAPP_COPILOT_ROLE, within what the context schema allows once it lists it', () => {
    for (const role of serviceTemplate().roles) {
      expect(role.template_contents.CONTEXT[ROLE_VARIABLE]).toBe(role.name);
      const allowed = variableByName.get(ROLE_VARIABLE)?.enum;
      if (allowed) expect(allowed).toContain(role.name);
    }
  });

  it('scales on the load the inference VMs publish, with a dead band and a cooldown OneFlow can honour', () => {
    const [out, inn] = serviceTemplate().roles[0]!.elasticity_policies! as [Policy, Policy];
    const threshold = (e: string) => Number(/^(\w+) [<>] (\d+)$/.exec(e)![2]);
    expect(out.expression.startsWith(`${LOAD_ATTRIBUTE} > `)).toBe(true);
    expect(inn.expression.startsWith(`${LOAD_ATTRIBUTE} < `)).toBe(true);
    expect(threshold(out.expression)).toBeGreaterThan(threshold(inn.expression));
    expect(serviceTemplate().roles[0]!.cooldown).toBeGreaterThanOrEqual(
      contract.elasticityTiming.value.autoscalerIntervalSeconds,
    );
  });

  it('deploys every parent first: parents name roles of the template (OneFlow does not check this)', () => {
    const doc = serviceTemplate();
    const names = doc.roles.map((r) => r.name);
    doc.roles.forEach((r, i) => {
      for (const p of (r as { parents?: string[] }).parents ?? []) expect(names.indexOf(p)).toBeLessThan(i);
    });
  });
});

describe('committed and generated', () => {
  afterEach(() => vi.restoreAllMocks());

  it('the committed template equals a freshly generated one', async () => {
    expect(
      await readFile(path.join(repo, SERVICE_TEMPLATE_FILE), 'utf8'),
      `${SERVICE_TEMPLATE_FILE} is stale: run pnpm --filter @slm-copilot/scripts generate:oneflow`,
    ).toBe(renderServiceTemplate());
    expect(await main(['--check', '--quiet'])).toBe(0);
  });

  it('prints the template for a VM template id, and refuses an id that is none', async () => {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await main(['--template-id', '7'])).toBe(0);
    expect((JSON.parse(out) as Doc).roles.map((r) => r.template_id)).toEqual([7, 7]);
    expect(await main(['--template-id', 'seven'])).toBe(2);
    expect(stderr.mock.calls.join('')).toMatch(/--template-id: "seven"/);
  });
});

describe("OneFlow's rules (contract/oneflow-7.4.0.json)", () => {
  it('come from a pinned commit, every fact read in the source', () => {
    expect(contract.commit).toMatch(/^[0-9a-f]{40}$/);
    for (const [key, fact] of Object.entries(contract))
      if (typeof fact === 'object' && fact !== null && 'verified' in fact) expect(fact.verified, key).toBe(true);
  });

  it('accept the generated template, with the placeholder id and with a real one', () => {
    expect(serviceTemplateProblems(contract, serviceTemplate())).toEqual([]);
    expect(serviceTemplateProblems(contract, fresh())).toEqual([]);
  });

  // [rule, mutation, what the validator must say]; rule ids of contract.valueRules, or schema checks
  const inference = (d: Doc) => d.roles[0]!;
  const lb = (d: Doc) => d.roles[1]!;
  const mutations: [string, (d: Doc) => unknown, RegExp][] = [
    ['schema: cardinality minimum', (d) => (inference(d).cardinality = -1), /roles\[0\]\.cardinality must be >= 0/],
    [
      'schema: role name required',
      (d) => Reflect.deleteProperty(lb(d), 'name'),
      /roles\[1\]\.name \(string\) is missing/,
    ],
    ['schema: role name regex', (d) => (lb(d).name = 'load-balancer'), /roles\[1\]\.name must match/],
    ['schema: policy type enum', (d) => (policies(d)[0]!.type = 'SCALE'), /type must be one of/],
    ['schema: policy adjust required', (d) => Reflect.deleteProperty(policies(d)[1]!, 'adjust'), /adjust \(integer\)/],
    [
      'schema: template_id integer',
      (d) => Reflect.set(inference(d), 'template_id', 'x'),
      /template_id must be an Integer/,
    ],
    ['schema: deployment enum', (d) => (d.deployment = 'parallel'), /deployment must be one of none, straight/],
    ['schema: ready_status_gate boolean', (d) => Reflect.set(d, 'ready_status_gate', 'YES'), /must be true or false/],
    ['schema: roles required', (d) => Reflect.deleteProperty(d, 'roles'), /roles \(array\) is missing/],
    ['schema: role type', (d) => (inference(d).type = 'container'), /unsupported role type "container"/],
    ['schema: cooldown minimum', (d) => Reflect.set(inference(d), 'cooldown', -5), /cooldown must be >= 0/],
    ['unique-role-names', (d) => (lb(d).name = 'inference'), /"inference" is repeated/],
    ['min-vms-le-cardinality', (d) => (inference(d).cardinality = 0), /cardinality 0 is below min_vms 1/],
    ['max-vms-ge-cardinality', (d) => (inference(d).cardinality = 5), /cardinality 5 is above max_vms 4/],
    ['policies-need-min-and-max', (d) => Reflect.deleteProperty(inference(d), 'max_vms'), /both min_vms and max_vms/],
    ['expression-parses', (d) => (policies(d)[0]!.expression = 'LOAD >> 80'), /does not parse/],
    ['expression-parses', (d) => (policies(d)[1]!.expression = ''), /expression is empty/],
    [
      'scheduled-start-or-recurrence',
      (d) => Reflect.set(inference(d), 'scheduled_policies', [{ type: 'CHANGE', adjust: 1 }]),
      /scheduled_policies\[0\] must define start_time or recurrence/,
    ],
    ['new-format', (d) => d.roles.forEach((r) => Reflect.set(r, 'vm_template', r.template_id)), /OpenNebula 6\.x/],
    ['user input: 5 parts', (d) => (d.user_inputs.X = 'O|text|no default'), /user_inputs\.X has 3/],
    ['user input: type', (d) => (lb(d).user_inputs.Y = 'O|integer|n| |1'), /unknown type integer/],
    ['user input: number default', (d) => (d.user_inputs.Z = 'O|number|n| |'), /optional number input needs/],
  ];

  for (const [rule, mutate, message] of mutations) {
    it(`refuse a template that breaks: ${rule}`, () => {
      const doc = fresh();
      mutate(doc);
      expect(serviceTemplateProblems(contract, doc)).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
    });
  }

  it('have a mutation for every value rule of the contract', () => {
    const covered = new Set(mutations.map(([rule]) => rule));
    for (const { id } of contract.valueRules.value) expect(covered, id).toContain(id);
  });
});

describe('elasticity expressions (ElasticityGrammar, transcribed)', () => {
  const parses = (expression: string) => {
    const doc = fresh();
    policies(doc)[0]!.expression = expression;
    return serviceTemplateProblems(contract, doc).length === 0;
  };

  it.each([
    'ONEAPP_COPILOT_LOAD > 80',
    'ONEAPP_COPILOT_LOAD>80',
    "  'ONEAPP_COPILOT_LOAD' >= -1.5  ",
    '"CPU" <> 0',
    '(A > 1) && !(B < 2)',
    'A > 1 || B == 2 & C != 3',
    'A = B',
  ])('accepts %j', (e) => expect(parses(e)).toBe(true));

  it.each(['A > ', '> 1', 'A >> 1', 'A > 1 and B < 2', '1A > 2', 'A\t> 1', 'A > 1 &&', '(A > 1', 'A.B > 1'])(
    'refuses %j',
    (e) => expect(parses(e)).toBe(false),
  );
});
