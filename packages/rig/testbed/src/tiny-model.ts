import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';
import { exists, formatDuration, hashParts, sha256File, withLock, type Logger } from '@slm-copilot/task-kit';
import { aptInstall } from './build-tools.js';
import { buildAtomically, cacheDirOf, testbedLogger, timed } from './cache.js';
import { ensureLlamaBuild, type LlamaBuild } from './llama-build.js';

/** Debian's interpreter (has apt's numpy/yaml), deliberately not whatever `python3` is on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** The stock chat template embedded in the test models (Mistral's 2512 generation, like Devstral Small 2). */
export const CHAT_TEMPLATE_PATH_IN_TREE = 'models/templates/mistralai-Ministral-3-14B-Reasoning-2512.jinja';

export interface ModelParams {
  /** GGUF architecture: `mistral3` (Devstral Small 2's) or `llama`. */
  arch: 'mistral3' | 'llama';
  name: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  vocabSize: number;
  /** Trained context length written as `<arch>.context_length`. */
  contextLength: number;
  ropeTheta: number;
  seed: number;
  /** llama-quantize type of the final file. */
  quant: string;
}

/** 2 layers × 256, vocab 2048, trained context 32768: ~1.7 MB at Q4_K_M, made in about a second. */
export const TINY_MODEL_PARAMS: Readonly<ModelParams> = Object.freeze({
  arch: 'mistral3',
  name: 'slm-copilot tiny test model',
  nLayer: 2,
  nEmbd: 256,
  nHead: 4,
  nHeadKv: 1,
  headDim: 64,
  nFf: 768,
  vocabSize: 2048,
  contextLength: 32768,
  ropeTheta: 1_000_000,
  seed: 42,
  quant: 'Q4_K_M',
});

/**
 * Devstral Small 2's shape (head_dim 128, GQA 4:1, ff = 6.4 × n_embd, vocab 131072) scaled to
 * 16 layers × 2560: 2.95 B parameters, ~1.8 GB at Q4_K_M. For speed work only, never in tests.
 */
export const DEVSTRAL_SHAPED_PARAMS: Readonly<ModelParams> = Object.freeze({
  arch: 'mistral3',
  name: 'slm-copilot devstral-shaped test model',
  nLayer: 16,
  nEmbd: 2560,
  nHead: 20,
  nHeadKv: 5,
  headDim: 128,
  nFf: 16384,
  vocabSize: 131072,
  contextLength: 32768,
  ropeTheta: 1_000_000,
  seed: 42,
  quant: 'Q4_K_M',
});

/**
 * Test-model variants (py/make_tiny_variant.py, applied to the default model generated with the variant's
 * parameters): 'agent' ends its replies by itself (`</s>` has a real probability) and has a trained context
 * of 131072; 'tool-caller' is 'agent' plus a tool call (`[TOOL_CALLS]` first) whenever the prompt ends with
 * `[/INST]`, with strings and objects biased to close inside llama-server's tool-call grammar.
 */
export type TinyVariant = 'default' | 'agent' | 'tool-caller';

/** Trained context of the variants: fits the largest agent prompt counted (Claude Code, ≈ 45–64 k tokens here). */
export const AGENT_CONTEXT_LENGTH = 131072;

/** The generator parameters of each variant (the default's are TINY_MODEL_PARAMS, unchanged). */
export const TINY_VARIANT_PARAMS: Readonly<Record<TinyVariant, Readonly<ModelParams>>> = Object.freeze({
  default: TINY_MODEL_PARAMS,
  agent: Object.freeze({
    ...TINY_MODEL_PARAMS,
    name: 'slm-copilot tiny agent test model',
    contextLength: AGENT_CONTEXT_LENGTH,
  }),
  'tool-caller': Object.freeze({
    ...TINY_MODEL_PARAMS,
    name: 'slm-copilot tiny tool-caller test model',
    contextLength: AGENT_CONTEXT_LENGTH,
  }),
});

/** What make_tiny_variant.py changed (its --meta-out), e.g. `{ variant, eos_id, eos_weight, … }`. */
export type VariantEdits = Record<string, unknown> & { variant: Exclude<TinyVariant, 'default'> };

export interface GgufModel {
  /** The quantized GGUF. */
  path: string;
  sha256: string;
  bytes: number;
  params: ModelParams;
  /** Cache key (directory name under `<cache>/models/`). */
  key: string;
  /** Token ids the output layer is biased against (control tokens, bytes >= 0x80, ASCII control bytes). */
  bannedTokenIds: number[];
  nParams: number;
  /** Set for a variant: the weights make_tiny_variant.py edited (absent for the default model). */
  variant?: VariantEdits;
}

export interface ModelOptions {
  cacheDir?: string;
  log?: Logger;
  /**
   * llama.cpp build whose llama-quantize and gguf-py are used (default: the 'dispatch' build, the one the image
   * ships).
   */
  llama?: LlamaBuild;
}

export interface TinyModelOptions extends ModelOptions {
  /** Which test model (default: 'default', the tiny model every other test uses). */
  variant?: TinyVariant;
}

/** Path of py/make_tiny_gguf.py, both from src/ (tsx, vitest) and from dist/ (bundled CLI). */
export function generatorScriptPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, '..', 'py', 'make_tiny_gguf.py');
}

/** Path of py/make_tiny_variant.py (beside the generator). */
export function variantScriptPath(): string {
  return join(dirname(generatorScriptPath()), 'make_tiny_variant.py');
}

/** Debian's python3 with numpy and yaml (what gguf-py imports); installs them with apt as root. */
export async function ensurePython(log: Logger = testbedLogger()): Promise<string> {
  const check = () => $({ quiet: true, nothrow: true })`${SYSTEM_PYTHON} -c ${'import numpy, yaml'}`;
  if ((await exists(SYSTEM_PYTHON)) && (await check()).exitCode === 0) return SYSTEM_PYTHON;
  await aptInstall(['python3', 'python3-numpy', 'python3-yaml'], log);
  const r = await check();
  if (r.exitCode !== 0) throw new Error(`${SYSTEM_PYTHON} still cannot import numpy and yaml: ${r.stderr}`);
  return SYSTEM_PYTHON;
}

/**
 * The tiny test model (cached). `variant` selects 'agent' or 'tool-caller' (cached under their own keys,
 * `tiny-agent-<hash>`, `tiny-tool-caller-<hash>`); the default model and its cache key are those of before
 * the variants existed.
 */
export async function ensureTinyModel(opts: TinyModelOptions = {}): Promise<GgufModel> {
  const { variant = 'default', ...rest } = opts;
  if (variant === 'default') return ensureGgufModel('tiny', TINY_MODEL_PARAMS, rest);
  return ensureGgufModel(`tiny-${variant}`, TINY_VARIANT_PARAMS[variant], { ...rest, variant });
}

/** On demand only (~1.8 GB, a few minutes): not used by the tests. */
export async function ensureDevstralShapedModel(opts: ModelOptions = {}): Promise<GgufModel> {
  return ensureGgufModel('devstral-shaped', DEVSTRAL_SHAPED_PARAMS, opts);
}

/** make_tiny_gguf.py's arguments for `params`. */
function generatorArgs(params: ModelParams, out: string, templatePath: string, metaJson: string): string[] {
  const n = (flag: string, v: number) => [flag, String(v)];
  return [
    ...['--out', out, '--arch', params.arch, '--name', params.name],
    ...n('--n-layer', params.nLayer),
    ...n('--n-embd', params.nEmbd),
    ...n('--n-head', params.nHead),
    ...n('--n-head-kv', params.nHeadKv),
    ...n('--head-dim', params.headDim),
    ...n('--n-ff', params.nFf),
    ...n('--vocab-size', params.vocabSize),
    ...n('--ctx', params.contextLength),
    ...n('--rope-theta', params.ropeTheta),
    ...n('--seed', params.seed),
    ...['--chat-template-file', templatePath, '--dtype', 'f16', '--meta-out', metaJson],
  ];
}

/** One model's inputs, shared by its steps. */
interface ModelJob {
  kind: string;
  params: ModelParams;
  llama: LlamaBuild;
  script: string;
  templatePath: string;
  key: string;
  fileName: string;
  log: Logger;
  durations: Record<string, number>;
  /** A variant: make_tiny_variant.py edits the generated F16 model before it is quantized. */
  variant?: Exclude<TinyVariant, 'default'>;
}

/** Runs make_tiny_variant.py on `f16` (in place, through a second file); returns its summary of the edits. */
async function applyVariant(job: ModelJob, python: string, f16: string, tmp: string): Promise<VariantEdits> {
  const { variant, llama, log, durations } = job;
  const edited = join(tmp, `${job.kind}-F16-edited.gguf`);
  const metaJson = join(tmp, 'variant.json');
  await timed(log, durations, `make the ${variant} variant`, async () => {
    const env = { ...process.env, PYTHONPATH: join(llama.srcDir, 'gguf-py') };
    const args = ['--in', f16, '--out', edited, '--variant', variant!, '--meta-out', metaJson];
    const r = await $({ quiet: true, nothrow: true, env })`${python} ${variantScriptPath()} ${args}`;
    if (r.exitCode !== 0)
      throw new Error(`make_tiny_variant.py failed (exit ${r.exitCode}):\n${r.stderr.slice(-3000)}`);
  });
  await rename(edited, f16);
  return JSON.parse(await readFile(metaJson, 'utf8')) as VariantEdits;
}

/** Generates the F16 model, quantizes it and writes model.json into `tmp`. */
async function makeModel(job: ModelJob, python: string, tmp: string): Promise<void> {
  const { kind, params, llama, log, durations } = job;
  const f16 = join(tmp, `${kind}-F16.gguf`);
  const metaJson = join(tmp, 'generator.json');
  const shape = `F16, ${params.nLayer} layers × ${params.nEmbd}, vocab ${params.vocabSize}`;
  await timed(log, durations, `generate ${kind} model (${shape})`, async () => {
    const env = { ...process.env, PYTHONPATH: join(llama.srcDir, 'gguf-py') };
    const args = generatorArgs(params, f16, job.templatePath, metaJson);
    const r = await $({ quiet: true, nothrow: true, env })`${python} ${job.script} ${args}`;
    if (r.exitCode !== 0) throw new Error(`make_tiny_gguf.py failed (exit ${r.exitCode}):\n${r.stderr.slice(-3000)}`);
  });
  const edits = job.variant ? await applyVariant(job, python, f16, tmp) : undefined;
  const out = join(tmp, job.fileName);
  await timed(log, durations, `llama-quantize ${params.quant}`, async () => {
    const r = await $({
      quiet: true,
      nothrow: true,
    })`${llama.llamaQuantize} ${f16} ${out} ${params.quant} ${String(2)}`;
    if (r.exitCode !== 0) throw new Error(`llama-quantize failed (exit ${r.exitCode}):\n${r.stdall.slice(-3000)}`);
  });
  await rm(f16, { force: true });
  const sha256 = await timed(log, durations, 'sha256', () => sha256File(out));
  const bytes = (await stat(out)).size;
  const gen = JSON.parse(await readFile(metaJson, 'utf8')) as { banned_token_ids: number[]; n_params: number };
  const unbanned = new Set((edits?.unbanned_token_ids as number[] | undefined) ?? []);
  const m: Omit<GgufModel, 'path'> & Record<string, unknown> = {
    key: job.key,
    sha256,
    bytes,
    params: { ...params },
    bannedTokenIds: gen.banned_token_ids.filter((id) => !unbanned.has(id)),
    nParams: gen.n_params,
    ...(edits ? { variant: edits } : {}),
    llama: { version: llama.version, release: llama.release, commit: llama.commit },
    chatTemplate: CHAT_TEMPLATE_PATH_IN_TREE,
    createdAt: new Date().toISOString(),
    durationsMs: durations,
  };
  await writeFile(join(tmp, 'model.json'), JSON.stringify(m, null, 2) + '\n');
}

/**
 * The cache key: the generator's text, the parameters, the template and llama.cpp (never reorder these);
 * a variant adds make_tiny_variant.py's text and its name (so the default's key is what it always was).
 */
async function modelKey(kind: string, params: ModelParams, template: Buffer, job: KeyInputs): Promise<string> {
  const { llama, variant } = job;
  const parts = [await readFile(generatorScriptPath()), JSON.stringify(params), template, llama.version, llama.commit];
  if (variant) parts.push(await readFile(variantScriptPath()), variant);
  return `${kind}-${hashParts(parts, 12)}`;
}

interface KeyInputs {
  llama: LlamaBuild;
  variant?: Exclude<TinyVariant, 'default'>;
}

/**
 * Generates (once, cached) a random-weight GGUF with py/make_tiny_gguf.py (and, for a variant,
 * py/make_tiny_variant.py) and quantizes it. Cache: `<cache>/models/<kind>-<hash>/{<kind>-<quant>.gguf,
 * model.json}`; the hash covers the script(s), the parameters, the chat template and the llama.cpp version.
 */
export async function ensureGgufModel(
  kind: string,
  params: ModelParams,
  opts: ModelOptions & { variant?: Exclude<TinyVariant, 'default'> } = {},
): Promise<GgufModel> {
  const log = testbedLogger(opts.log);
  const llama = opts.llama ?? (await ensureLlamaBuild({ variant: 'dispatch', cacheDir: opts.cacheDir, log }));
  const script = generatorScriptPath();
  const templatePath = join(llama.srcDir, CHAT_TEMPLATE_PATH_IN_TREE);
  const key = await modelKey(kind, params, await readFile(templatePath), { llama, variant: opts.variant });
  const dir = join(cacheDirOf(opts.cacheDir), 'models', key);
  const fileName = `${kind}-${params.quant}.gguf`;
  const manifest = join(dir, 'model.json');
  const read = async (): Promise<GgufModel> => {
    const m = JSON.parse(await readFile(manifest, 'utf8')) as Omit<GgufModel, 'path'>;
    return { ...m, path: join(dir, fileName) };
  };
  if (await exists(manifest)) return read();

  return withLock(
    join(cacheDirOf(opts.cacheDir), 'locks', `model-${key}.lock`),
    async () => {
      if (await exists(manifest)) return read();
      const python = await ensurePython(log);
      const t0 = performance.now();
      const job = {
        kind,
        params,
        llama,
        script,
        templatePath,
        key,
        fileName,
        log,
        durations: {},
        variant: opts.variant,
      };
      await buildAtomically(dir, (tmp) => makeModel(job, python, tmp));
      const model = await read();
      const size = `${(model.bytes / 1e6).toFixed(1)} MB`;
      log.info(`${kind} model ready in ${formatDuration(performance.now() - t0)}: ${model.path} (${size})`);
      return model;
    },
    { log, what: `${kind} model` },
  );
}
