// The appliance the agents talk to, with real processes under a temp root: llama-server started with
// the command line renderEngine renders (our chat template, our flags; lifecycle's test-support renderApplianceEngine)
// and the real nginx with the rendered gateway, serving a leaf signed by the per-VM CA (ensureSelfSigned).
import { readFile, rm } from 'node:fs/promises';
import { renderApplianceEngine } from '@slm-copilot/lifecycle/test-support/appliance-engine';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import { startGateway, tempRoot, type Gateway } from '@slm-copilot/nginx-config/test-support/nginx';
import { freePort } from '@slm-copilot/task-kit';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import {
  ensureLlamaBuild,
  ensureTinyModel,
  startLlamaServer,
  type GgufModel,
  type LlamaServer,
  type LlamaVariant,
} from '@slm-copilot/testbed';

/** The appliance's name in the leaf; `localhost` is a SAN of every self-signed leaf too (what agents use). */
export const APPLIANCE_HOST = 'copilot.example.test';
/** The model id the appliance serves by default. */
export const MODEL_ID = 'devstral-small-2';

export interface AgentKey {
  /** The name nginx logs for it (`extra-<n>`). */
  name: string;
  value: string;
}

export interface Appliance {
  /** `https://localhost:<port>` (no `/v1`). */
  origin: string;
  /** PEM file of the per-VM CA, the file the report tells users to trust. */
  caFile: string;
  /** One key per agent, each logged under its own name. */
  keys: Record<string, AgentKey>;
  gateway: Gateway;
  engine: LlamaServer;
  model: GgufModel;
  /** The engine's arguments (rendered ExecStart without binary, --host and --port). */
  engineArgs: string[];
  stop(): Promise<void>;
}

/** `args` without `flag` and its value. */
function withoutFlagValue(args: readonly string[], flag: string): string[] {
  return args.filter((a, i) => a !== flag && args[i - 1] !== flag);
}

/** A throwaway key per agent: 16–256 characters from the allowed set (never a real key). */
function keyFor(agent: string): string {
  return `sk-agent-${agent}-0123456789abcdef`;
}

/**
 * Starts the engine (tiny test model, the appliance's rendered flags, `overrides` applied to the
 * context as an operator would) and the gateway in front of it. The engine runs with
 * LLAMA_SERVER_SLOTS_DEBUG=1 so that GET /slots on the engine shows the text it last generated (the
 * reference the agents' output is compared with); that is an environment switch, not a flag.
 */
export async function startAppliance(opts: {
  agents: readonly string[];
  overrides?: Record<string, string>;
  variant?: LlamaVariant;
  /** Mutation: the engine with the model's own (stock Mistral 2512) template instead of ours. */
  stockTemplate?: boolean;
  /** Mutation: this chat template file instead of ours (e.g. ours without its tool-call block). */
  chatTemplateFile?: string;
  /** Also serve on this address (an agent sandbox's host end): the leaf names it and `origin` uses it. */
  address?: string;
  /** The GGUF to serve (default: the tiny test model). */
  model?: (build: Awaited<ReturnType<typeof ensureLlamaBuild>>) => Promise<GgufModel>;
}): Promise<Appliance> {
  const build = await ensureLlamaBuild({ variant: opts.variant ?? 'dispatch' });
  const model = opts.model ? await opts.model(build) : await ensureTinyModel({ llama: build });
  const root = await tempRoot('agents');
  const enginePort = await freePort();
  const rendered = await renderApplianceEngine({
    root,
    model: model.path,
    sha256: model.sha256,
    enginePort,
    overrides: opts.overrides,
  });
  const paths = rendered.paths;
  const args = opts.stockTemplate ? withoutFlagValue(rendered.args, '--chat-template-file') : [...rendered.args];
  if (opts.chatTemplateFile) {
    const at = args.indexOf('--chat-template-file');
    if (at < 0) throw new Error('the rendered engine has no --chat-template-file to replace');
    args[at + 1] = opts.chatTemplateFile;
  }
  const ss = await ensureSelfSigned({
    paths,
    hostname: APPLIANCE_HOST,
    ipAddresses: opts.address ? [opts.address] : [],
    log: quietLog,
  });
  const extra = opts.agents.map(keyFor);
  const gateway = await startGateway({
    root,
    tls: ss.served,
    trustFile: paths.tls.caCert,
    enginePort,
    render: opts.address ? { listenAddresses: ['127.0.0.1', opts.address] } : undefined,
    env: {
      ...opts.overrides,
      ONEAPP_COPILOT_ENGINE: 'llama-server',
      ONEAPP_COPILOT_EXTRA_API_KEYS: extra.join(','),
      ONEAPP_COPILOT_HOSTNAME: APPLIANCE_HOST,
      ONEAPP_COPILOT_TLS_MODE: 'self-signed',
    },
  });
  const engine = await startLlamaServer({
    binary: build.llamaServer,
    args,
    port: enginePort,
    readyTimeoutMs: 5 * 60_000,
    env: { LLAMA_SERVER_SLOTS_DEBUG: '1' },
  }).catch(async (e: unknown) => {
    await gateway.stop();
    throw e;
  });
  const keys = Object.fromEntries(
    opts.agents.map((a, i) => [a, { name: `extra-${i + 1}`, value: extra[i]! }] as const),
  );
  await readFile(paths.tls.caCert, 'utf8'); // fail here, not in an agent, if the CA is missing
  return {
    origin: `https://${opts.address ?? 'localhost'}:${gateway.httpsPort}`,
    caFile: paths.tls.caCert,
    keys,
    gateway,
    engine,
    model,
    engineArgs: args,
    stop: async () => {
      await engine.stop();
      await gateway.stop();
      if (process.env.SLM_COPILOT_TESTBED_KEEP_TEMP !== '1') await rm(root, { recursive: true, force: true });
    },
  };
}
