/**
 * The OneFlow service template of the team service (OpenNebula 7 format, see contract/oneflow-7.4.0.json):
 * one `lb` VM in front of 1..4 `inference` VMs, all from the appliance's own VM template, each told its
 * role by ONEAPP_COPILOT_ROLE in its CONTEXT. The user inputs are the single VM's (from the context
 * schema, like the marketplace YAML), each on the role that reads it. Pure: options in, document out.
 */
import {
  userInput,
  variableByName,
  withDefaults,
  type VariableDefaults,
  type VariableSpec,
} from '@slm-copilot/context-schema';

/** The context variable that picks the role (the context schema's, once it has it). */
export const ROLE_VARIABLE = 'ONEAPP_COPILOT_ROLE';
/** What each inference VM publishes through OneGate: (busy slots + queued requests) / slots x 100. */
export const LOAD_ATTRIBUTE = 'ONEAPP_COPILOT_LOAD';
export const LB_ROLE = 'lb';
export const INFERENCE_ROLE = 'inference';
/** The service's one network: users reach the lb on it, the lb reaches the inference VMs on it. */
export const SERVICE_NETWORK = 'service';
/** Not a template id: OneFlow fails the instantiation on it rather than start some other template. */
export const TEMPLATE_ID_PLACEHOLDER = -1;

/**
 * When the inference role grows and shrinks. OneFlow evaluates a policy at most every `period` s and
 * no more often than its autoscaler interval (90 s by default), fires it after `periodNumber` true
 * evaluations in a row, then waits `cooldown` s once the new VMs reported ready. Out fast (about 3-5 min
 * of load), in slowly (about 15 min idle): a new inference VM costs a model load, an idle one only RAM.
 */
export const ELASTICITY = {
  minVms: 1,
  maxVms: 4,
  cooldown: 600,
  scaleOut: { above: 80, period: 60, periodNumber: 3 },
  scaleIn: { below: 20, period: 60, periodNumber: 10 },
} as const;

/** The lb runs nginx only: a small VM (the inference role keeps the appliance template's size). */
export const LB_SIZE = { CPU: '2', VCPU: '2', MEMORY: '4096' } as const;

type Scope = 'service' | typeof LB_ROLE | typeof INFERENCE_ROLE;

/**
 * Which role reads each input. The users' keys and the TLS/limits settings belong to the user-facing
 * lb (inference VMs never get the users' keys); engine settings to the inference VMs; what both
 * gateways and the report need, to the service (OneFlow gives a service input to every role).
 */
export const INPUT_SCOPE: Readonly<Record<string, Scope>> = {
  ONEAPP_COPILOT_PASSWORD: LB_ROLE,
  ONEAPP_COPILOT_EXTRA_API_KEYS: LB_ROLE,
  ONEAPP_COPILOT_ENGINE: INFERENCE_ROLE,
  ONEAPP_COPILOT_MODEL_ID: 'service',
  ONEAPP_COPILOT_CONTEXT_SIZE: INFERENCE_ROLE,
  ONEAPP_COPILOT_KV_CACHE_TYPE: INFERENCE_ROLE,
  ONEAPP_COPILOT_THREADS: INFERENCE_ROLE,
  ONEAPP_COPILOT_PARALLEL: INFERENCE_ROLE,
  ONEAPP_COPILOT_MAX_TOKENS: INFERENCE_ROLE,
  ONEAPP_COPILOT_PROMPT_CACHE_PERSIST: INFERENCE_ROLE,
  ONEAPP_COPILOT_HOSTNAME: LB_ROLE,
  ONEAPP_COPILOT_HTTPS_PORT: LB_ROLE,
  ONEAPP_COPILOT_TLS_MODE: LB_ROLE,
  ONEAPP_COPILOT_TLS_CERT: LB_ROLE,
  ONEAPP_COPILOT_TLS_KEY: LB_ROLE,
  ONEAPP_COPILOT_LETSENCRYPT_EMAIL: LB_ROLE,
  ONEAPP_COPILOT_ACME_DIRECTORY: LB_ROLE,
  ONEAPP_COPILOT_CORS_ORIGINS: LB_ROLE,
  ONEAPP_COPILOT_RATE_LIMIT: LB_ROLE,
  ONEAPP_COPILOT_CONNECTION_LIMIT: LB_ROLE,
  ONEAPP_COPILOT_REQUEST_TIMEOUT: 'service',
  ONEAPP_COPILOT_MAX_BODY_SIZE: 'service',
  ONEAPP_COPILOT_METRICS: 'service',
  ONEAPP_COPILOT_BASIC_AUTH: LB_ROLE,
};

export interface ServiceTemplateOptions {
  /** The appliance's VM template in OpenNebula; unknown before import, so a placeholder by default. */
  templateId?: number;
  /** Defaults in place of the schema's (e.g. the context size an image was built for), checked by it. */
  defaults?: VariableDefaults;
}

/** OneFlow user inputs: keyed by the exact variable name, which OneFlow makes the CONTEXT entry's name. */
function inputsOf(specs: readonly VariableSpec[], scope: Scope): Record<string, string> {
  return Object.fromEntries(specs.filter((v) => INPUT_SCOPE[v.name] === scope).map((v) => [v.name, userInput(v)]));
}

/** The variables offered as inputs; a schema variable nobody placed is an error, not a silent omission. */
function inputSpecs(defaults: VariableDefaults | undefined): readonly VariableSpec[] {
  const specs = withDefaults(defaults).filter((v) => v.name !== ROLE_VARIABLE);
  const unplaced = specs.filter((v) => INPUT_SCOPE[v.name] === undefined).map((v) => v.name);
  if (unplaced.length > 0) throw new Error(`INPUT_SCOPE does not say which role reads ${unplaced.join(', ')}`);
  return specs;
}

/** The role's CONTEXT additions (merged key by key into the VM template's CONTEXT by OneFlow). */
function roleContext(role: Scope): Record<string, string> {
  const allowed = variableByName.get(ROLE_VARIABLE)?.enum;
  if (allowed && !allowed.includes(role)) throw new Error(`${ROLE_VARIABLE} does not allow "${role}"`);
  return { NETWORK: 'YES', TOKEN: 'YES', REPORT_READY: 'YES', [ROLE_VARIABLE]: role };
}

const nic = [{ NAME: 'NIC0', NETWORK_ID: `$${SERVICE_NETWORK}` }];

const policy = (adjust: number, op: string, threshold: number, period: number, periodNumber: number) => ({
  type: 'CHANGE',
  adjust,
  expression: `${LOAD_ATTRIBUTE} ${op} ${threshold}`,
  period,
  period_number: periodNumber,
});

/** The service template document, as `oneflow-template create` takes it. */
export function serviceTemplate(options: ServiceTemplateOptions = {}) {
  const templateId = options.templateId ?? TEMPLATE_ID_PLACEHOLDER;
  const specs = inputSpecs(options.defaults);
  const { scaleOut, scaleIn } = ELASTICITY;
  return {
    name: 'SLM-Copilot team',
    description:
      'SLM-Copilot for a team: one load balancer (role lb: the endpoint and API keys of the users) in front of ' +
      `${ELASTICITY.minVms}-${ELASTICITY.maxVms} inference VMs (role inference) that OneFlow adds and removes ` +
      `on their published load. Both roles run the SLM-Copilot VM template: set template_id to its ID.`,
    deployment: 'straight',
    ready_status_gate: true,
    networks: {
      [SERVICE_NETWORK]: 'M|network|Network of the service: users reach the load balancer on it| |',
    },
    user_inputs: inputsOf(specs, 'service'),
    roles: [
      {
        name: INFERENCE_ROLE,
        type: 'vm',
        template_id: templateId,
        cardinality: ELASTICITY.minVms,
        min_vms: ELASTICITY.minVms,
        max_vms: ELASTICITY.maxVms,
        cooldown: ELASTICITY.cooldown,
        shutdown_action: 'terminate',
        elasticity_policies: [
          policy(1, '>', scaleOut.above, scaleOut.period, scaleOut.periodNumber),
          policy(-1, '<', scaleIn.below, scaleIn.period, scaleIn.periodNumber),
        ],
        user_inputs: inputsOf(specs, INFERENCE_ROLE),
        template_contents: { NIC: nic, CONTEXT: roleContext(INFERENCE_ROLE) },
      },
      {
        name: LB_ROLE,
        type: 'vm',
        template_id: templateId,
        // deployed once the inference role is RUNNING (its VMs READY): the lb finds backends at once
        parents: [INFERENCE_ROLE],
        cardinality: 1,
        min_vms: 1,
        max_vms: 1,
        user_inputs: inputsOf(specs, LB_ROLE),
        template_contents: { ...LB_SIZE, NIC: nic, CONTEXT: roleContext(LB_ROLE) },
      },
    ],
  };
}

export type ServiceTemplate = ReturnType<typeof serviceTemplate>;

/** The template as the committed file and the build output hold it. */
export function renderServiceTemplate(options: ServiceTemplateOptions = {}): string {
  return `${JSON.stringify(serviceTemplate(options), null, 2)}\n`;
}

/** Where the committed copy lives (relative to the repository root). */
export const SERVICE_TEMPLATE_FILE = 'scripts/generated/slm-copilot.oneflow.json';
