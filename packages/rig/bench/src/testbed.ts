// The test bed the bench runs on when no --url is given: everything the appliance renders, under a
// temp root, with real processes — llama-server started with renderEngine's command line, and the
// real nginx with renderGateway's site, serving a leaf signed by the generated per-VM CA.
import { chmodSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseContext, type AppliancePaths, type Config } from '@slm-copilot/context-schema';
import { ensureSelfSigned, renderGateway } from '@slm-copilot/nginx-config';
import { applyFileSet, createLogger, freePort, reapOnExit } from '@slm-copilot/task-kit';
import { startLlamaServer, startNginx, type LlamaServer } from '@slm-copilot/testbed';
import { TEST_ENGINE_KEY } from '@slm-copilot/lifecycle/test-support/appliance-engine';

export { renderApplianceEngine, type ApplianceEngine } from '@slm-copilot/lifecycle/test-support/appliance-engine';

/** The API key of the test-bed gateway (never a real one): the rendered engine's context carries it too. */
export const BENCH_KEY = TEST_ENGINE_KEY;
/** The name the leaf certificate is checked against (a SAN of every self-signed leaf). */
export const BENCH_HOST = 'localhost';

/** Temp roots to remove when the process exits: dir → unregister. */
const roots = new Map<string, () => void>();

/** A temp root for one appliance layout (world-traversable: nginx's workers run as nobody). */
export async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'slm-bench-'));
  chmodSync(dir, 0o755);
  if (process.env.SLM_COPILOT_TESTBED_KEEP_TEMP !== '1')
    roots.set(
      dir,
      reapOnExit(() => rmSync(dir, { recursive: true, force: true })),
    );
  return dir;
}

export function removeRoot(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  roots.get(dir)?.();
  roots.delete(dir);
}

const quietLog = createLogger({ level: 'warn' });

/** Replaces (or adds) a flag's value in a llama-server argument list. */
export function withFlag(args: readonly string[], flag: string, value?: string, aliases: string[] = []): string[] {
  const names = new Set([flag, ...aliases]);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (names.has(args[i]!)) {
      if (i + 1 < args.length && !args[i + 1]!.startsWith('--') && value !== undefined) i++;
      continue;
    }
    out.push(args[i]!);
  }
  return value === undefined ? [...out, flag] : [...out, flag, value];
}

/** Removes a boolean flag (e.g. `--cache-prompt`). */
export function withoutFlag(args: readonly string[], flag: string): string[] {
  return args.filter((a) => a !== flag);
}

export async function startEngine(binary: string, args: string[], port: number): Promise<LlamaServer> {
  return startLlamaServer({ binary, args, port, readyTimeoutMs: 10 * 60_000 });
}

export interface BenchGateway {
  baseUrl: string;
  httpsPort: number;
  caFile: string;
  caPem: string;
  config: Config;
  stop(): Promise<void>;
}

/**
 * The appliance's gateway on the real nginx: the per-VM CA and its leaf (ensureSelfSigned), the
 * rendered site (renderGateway) with the context's defaults — except the per-key rate limit, raised
 * to 100000/min so the benchmark's bursts are not refused (the limit_req code path stays on).
 */
export async function startBenchGateway(opts: {
  root: string;
  enginePort: number;
  paths: AppliancePaths;
}): Promise<BenchGateway> {
  const { root, paths } = opts;
  const [httpsPort, httpPort] = [await freePort(), await freePort()];
  const config = parseContext({
    ONEAPP_COPILOT_PASSWORD: BENCH_KEY,
    ONEAPP_COPILOT_ENGINE: 'llama-server',
    ONEAPP_COPILOT_HTTPS_PORT: String(httpsPort),
    ONEAPP_COPILOT_RATE_LIMIT: '100000',
  });
  const ss = await ensureSelfSigned({ paths, hostname: null, ipAddresses: [], log: quietLog });
  const files = renderGateway(config, {
    paths,
    keys: { main: config.apiKey!, extra: config.extraApiKeys },
    tls: ss.served,
    httpPort,
    listenAddresses: ['127.0.0.1'],
    keyFileOwner: null,
  });
  await applyFileSet('/', files);
  for (const d of [path.join(root, 'var/log/nginx'), paths.nginx.acmeWebroot]) await mkdir(d, { recursive: true });
  const nginx = await startNginx({
    runDir: path.join(root, 'run/nginx'),
    include: `${path.join(paths.nginx.confDir, 'conf.d')}/*.conf`,
    errorLogLevel: 'warn',
    readyPort: httpsPort,
  });
  return {
    baseUrl: `https://${BENCH_HOST}:${httpsPort}`,
    httpsPort,
    caFile: paths.tls.caCert,
    caPem: await readFile(paths.tls.caCert, 'utf8'),
    config,
    stop: nginx.stop,
  };
}
