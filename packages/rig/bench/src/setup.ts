// Phase "setup": the endpoint under test and the engine behind it — the bench's own test bed (the
// rendered llama-server behind the real nginx) or a deployed endpoint (--url) — then which engine
// answers, the model bytes read per token, and a warm-up request.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '@slm-copilot/task-kit';
import { ensureDevstralShapedModel, ensureLlamaBuild, ensureTinyModel, missingCpuFlags } from '@slm-copilot/testbed';
import { detectEngine, firstModel, openaiClient, streamChat, type EngineKind } from './client.js';
import { asLogger, shortPrompt, threadOverrides, type Bed, type BenchRun, type Resources } from './context.js';
import { weightBytesPerToken, type WeightBytes } from './gguf-bytes.js';
import { applianceModel } from './machine.js';
import { fmt } from './stats.js';
import { BENCH_KEY, renderApplianceEngine, startBenchGateway, startEngine, tempRoot } from './testbed.js';

type Place = Pick<
  Bed,
  'ep' | 'direct' | 'engine' | 'llamaServerBin' | 'llamaBenchBin' | 'modelPath' | 'variant' | 'threads'
>;

export const isLoopback = (u: string) => ['localhost', '127.0.0.1', '[::1]', '::1'].includes(new URL(u).hostname);

/** The test bed: the engine as the appliance renders it, started here, behind the real nginx. */
async function testBed(run: BenchRun, res: Resources): Promise<Place> {
  const { opts, log } = run;
  const variant = opts.variant ?? ((await missingCpuFlags('host')).length === 0 ? 'host' : 'dispatch');
  const logger = asLogger(log);
  const llama = await ensureLlamaBuild({ variant, log: logger });
  const llamaServerBin = opts.llamaServer ?? llama.llamaServer;
  const llamaBenchBin = opts.llamaBench ?? llama.llamaBench;
  let modelPath = opts.model;
  let modelSha: string | undefined;
  if (!modelPath) {
    const m = opts.quick
      ? await ensureTinyModel({ llama, log: logger })
      : await ensureDevstralShapedModel({ llama, log: logger });
    modelPath = m.path;
    modelSha = m.sha256;
  }
  const root = (res.root = await tempRoot());
  const enginePort = await freePort();
  const engine = await renderApplianceEngine({
    root,
    model: modelPath,
    sha256: modelSha,
    enginePort,
    overrides: threadOverrides(opts),
  });
  log(`engine (as rendered): llama-server ${engine.args.join(' ')}`);
  const server = (res.server = await startEngine(llamaServerBin, engine.args, enginePort));
  res.cleanups.push(() => res.server!.stop());
  const gateway = await startBenchGateway({ root, enginePort, paths: engine.paths });
  res.cleanups.push(() => gateway.stop());
  const model = engine.config.modelId;
  const ep = { baseUrl: gateway.baseUrl, key: BENCH_KEY, ca: gateway.caPem, resolveTo: '127.0.0.1', model };
  const direct = { baseUrl: server.baseUrl, key: '', model };
  log(`gateway ${gateway.baseUrl} (TLS with the generated CA ${gateway.caFile}) → llama-server ${server.baseUrl}`);
  return { ep, direct, engine, llamaServerBin, llamaBenchBin, modelPath, variant, threads: engine.plan.threads };
}

/** A deployed endpoint (--url): what is reachable without SSH, more when the bench runs on the VM itself. */
async function deployedEndpoint(run: BenchRun): Promise<Place> {
  const { opts } = run;
  const url = opts.url!.replace(/\/+$/, '').replace(/\/v1$/, '');
  if (!opts.key) throw new Error('--url needs --key');
  const ca = opts.ca ? await readFile(opts.ca, 'utf8') : undefined;
  const ep = { baseUrl: url, key: opts.key, ca, model: '' };
  const m = await firstModel(ep);
  if (!m) throw new Error(`${url}/v1/models did not answer with a model (wrong key, CA or URL?)`);
  ep.model = m.id;
  const threads = opts.threads && opts.threads > 0 ? opts.threads : run.host.physicalCores;
  const onVm = isLoopback(url);
  const modelPath = opts.model ?? (onVm ? applianceModel() : undefined);
  const onVmBin = (name: string) =>
    onVm && existsSync(`/opt/llama.cpp/bin/${name}`) ? `/opt/llama.cpp/bin/${name}` : undefined;
  const llamaServerBin = opts.llamaServer ?? onVmBin('llama-server');
  const llamaBenchBin = opts.llamaBench ?? onVmBin('llama-bench');
  const eu = opts.engineUrl ?? (onVm ? 'http://127.0.0.1:8080' : undefined);
  const direct = eu ? { baseUrl: eu.replace(/\/+$/, ''), key: '', model: ep.model } : undefined;
  run.notes.push(
    'endpoint mode: figures that need the engine directly use only SSH-free means — a local model file, ' +
      "llama-bench and the engine's port when the bench runs on the VM itself " +
      `(${onVm ? 'it does' : 'it does not'}), else the engine's own timings sent in the stream; ` +
      'anything else is skipped and says why',
  );
  return { ep, direct, llamaServerBin, llamaBenchBin, modelPath, threads };
}

/** Where the figure-2 bytes per token come from, in words. */
function bytesSourceOf(modelPath: string, wb: WeightBytes): string {
  const tensors = `GGUF tensor table of ${path.basename(modelPath)}: ${fmt(wb.tensorBytes / 1e9, 3)} GB of tensors`;
  return wb.tiedOutput
    ? `${tensors} (output tied to the embeddings: all read per token)`
    : `${tensors}, minus the ${fmt(wb.tokenEmbeddingBytes / 1e9, 3)} GB token-embedding matrix ` +
        '(one row read per token)';
}

/** Sets up the endpoint and engine (registering in `res` what must be stopped) and warms them up. */
export async function setUp(run: BenchRun, res: Resources): Promise<Bed> {
  const { opts, log } = run;
  run.mark('setup');
  const testbed = !opts.url;
  const forced = opts.engine !== undefined && opts.engine !== 'auto';
  const place = testbed ? await testBed(run, res) : await deployedEndpoint(run);
  const detected = await detectEngine(place.ep);
  const kind = forced ? (opts.engine as EngineKind) : detected.kind;
  const kindDetail = forced
    ? `${opts.engine} (forced by --engine; the endpoint says: ${detected.detail})`
    : detected.detail;
  log(`engine behind the endpoint: ${kindDetail}`);
  // Model bytes read per generated token.
  let wb: WeightBytes | undefined;
  let bytesPerToken: number | null = null;
  let bytesSource = 'unknown';
  if (place.modelPath && existsSync(place.modelPath)) {
    wb = await weightBytesPerToken(place.modelPath);
    bytesPerToken = wb.bytesPerToken;
    bytesSource = bytesSourceOf(place.modelPath, wb);
  }
  const client = openaiClient(place.ep);
  log('warm-up request through the endpoint …');
  const warm = await streamChat(client, place.ep.model, shortPrompt(), { maxTokens: 4 });
  const shortPromptTokens = warm.promptTokens;
  return {
    ...place,
    testbed,
    kind,
    kindDetail,
    forced,
    wb,
    bytesPerToken,
    bytesSource,
    shortPromptTokens,
    client,
    res,
  };
}
