import { readFile } from 'node:fs/promises';
import { runCommand, runSubcommands, UsageError } from '@slm-copilot/task-kit';
import { LLAMA_VARIANTS, ensureLlamaBuild, type LlamaVariant } from './llama-build.js';
import { NODE_LLAMA_CPP_VERSION } from './llama-source.js';
import { startMirror, type Mirror, type MirrorFault } from './mirror.js';
import { DEVSTRAL_SHAPED_PARAMS, TINY_MODEL_PARAMS, ensureDevstralShapedModel, ensureTinyModel } from './tiny-model.js';

const TOOL = 'slm-testbed';
const CACHE = 'Cached under $SLM_COPILOT_CACHE (default ~/.cache/slm-copilot), keyed by inputs.';
const json = { type: 'boolean', default: false } as const;

/** `--json`: the object as JSON; else the text. */
function print(asJson: unknown, obj: object, text: string, indent = 2): void {
  process.stdout.write(asJson ? `${JSON.stringify(obj, null, indent)}\n` : `${text}\n`);
}

function positiveInt(value: unknown, flag: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new UsageError(`--${flag} must be an integer from 1 to ${max}, not "${value}"`);
  return n;
}

const buildLlama = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} build-llama`,
      summary: 'build llama-server, llama-quantize and llama-bench from llama.cpp source (cached)',
      usage: `${TOOL} build-llama [--variant dispatch|host|avx2] [--jobs N] [--verbose] [--json]`,
      options: { variant: { type: 'string', default: 'dispatch' }, jobs: { type: 'string' }, json },
      details:
        `The llama.cpp source bundled in node-llama-cpp@${NODE_LLAMA_CPP_VERSION} (npm pack; never installed),\n` +
        'built once per version and flag set. Variants:\n' +
        '  dispatch  the shipped build (also what every host test runs): shared libraries + CPU modules\n' +
        '            haswell/skylakex/icelake/zen4 loaded at run time (GGML_BACKEND_DL; haswell under QEMU TCG);\n' +
        '            no AMX module (llama.cpp #20824)\n' +
        '  host      static, AVX-512 F/VBMI/VNNI/BF16: the host-native build the bench compares against\n' +
        '  avx2      static, AVX2/FMA/F16C/BMI2 only (no longer used by the tests or the image)\n' +
        'Cold on 2 idle cores: ~4.5 min for a static variant, longer for dispatch (two cmake passes); instant\n' +
        `when cached. ${CACHE}\n` +
        '\nExamples:\n' +
        `  ${TOOL} build-llama\n` +
        `  ${TOOL} build-llama --variant host --jobs 4 --json`,
    },
    {
      variant: `${LLAMA_VARIANTS.join(', ')} (default dispatch)`,
      jobs: 'parallel compile jobs (default 2)',
      verbose: 'debug output, and stream the compiler output',
      json: 'print the result (paths of the binaries, source, key) as JSON',
    },
    argv,
    async ({ values, log }) => {
      const variant = values.variant as LlamaVariant;
      if (!LLAMA_VARIANTS.includes(variant))
        throw new UsageError(`--variant must be one of ${LLAMA_VARIANTS.join(', ')}, not "${variant}"`);
      const jobs = positiveInt(values.jobs, 'jobs', 256);
      const b = await ensureLlamaBuild({ variant, jobs, verbose: Boolean(values.verbose), log });
      const text = [
        `llama-server:   ${b.llamaServer}`,
        `llama-quantize: ${b.llamaQuantize}`,
        `llama-bench:    ${b.llamaBench}`,
        `source:         ${b.srcDir}`,
      ].join('\n');
      print(values.json, b, text);
    },
  );

const model = (name: 'tiny-model' | 'devstral-shaped') => (argv: string[]) => {
  const tiny = name === 'tiny-model';
  const p = tiny ? TINY_MODEL_PARAMS : DEVSTRAL_SHAPED_PARAMS;
  const shape = `${p.nLayer} layers x ${p.nEmbd}, head_dim ${p.headDim}, GQA ${p.nHead}:${p.nHeadKv}, ff ${p.nFf}`;
  const about = tiny
    ? `The tiny test model: random weights, ${p.arch} architecture, ${shape}, vocab ${p.vocabSize},\n` +
      `trained context ${p.contextLength}, Ministral-3 2512 chat template, ${p.quant}. Made in seconds.\n`
    : `A Devstral-shaped random-weight model for speed work: ${shape}, vocab ${p.vocabSize},\n` +
      `~1.8 GB at ${p.quant}. Needs ~8 GB of free disk while it runs (F16 intermediate) and a few minutes.\n`;
  return runCommand(
    {
      name: `${TOOL} ${name}`,
      summary: tiny
        ? 'generate the tiny random-weight test GGUF (cached)'
        : 'generate the ~1.8 GB Devstral-shaped GGUF',
      usage: `${TOOL} ${name} [--json]`,
      options: { json },
      details:
        about +
        'Prints its path. Builds the dispatch llama.cpp first if needed (for llama-quantize and gguf-py).\n' +
        `${CACHE}\n` +
        '\nExamples:\n' +
        `  ${TOOL} ${name}\n` +
        `  ${TOOL} ${name} --json`,
    },
    { json: 'print path, sha256, size, parameters and cache key as JSON' },
    argv,
    async ({ values, log }) => {
      const m = tiny ? await ensureTinyModel({ log }) : await ensureDevstralShapedModel({ log });
      print(values.json, m, `${m.path}\nsha256 ${m.sha256}, ${m.bytes} bytes`);
    },
  );
};

/** The mirror's faults file: `{"<name>": MirrorFault}`; a bad file is a bad flag value. */
async function readFaults(file: unknown): Promise<Record<string, MirrorFault>> {
  if (typeof file !== 'string') return {};
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--faults ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  try {
    const faults = JSON.parse(text) as unknown;
    if (faults && typeof faults === 'object' && !Array.isArray(faults)) return faults as Record<string, MirrorFault>;
  } catch {
    // reported below
  }
  throw new UsageError(`--faults ${file}: expected a JSON object {"<file name>": {fault…}}`);
}

/** Prints the mirror's finished requests every 200 ms until SIGINT/SIGTERM. */
async function serveUntilStopped(mirror: Mirror, asJson: boolean): Promise<void> {
  let seen = 0;
  const timer = setInterval(() => {
    for (; seen < mirror.requests.length; seen++) {
      const r = mirror.requests[seen]!;
      const range = r.range ? ` [${r.range}]` : '';
      const line = `${r.method} ${r.path}${range} -> ${r.status}, ${r.bytes} bytes${r.dropped ? ' (dropped)' : ''}`;
      process.stdout.write(`${asJson ? JSON.stringify(r) : line}\n`);
    }
  }, 200);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  await mirror.stop();
}

const mirror = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} mirror`,
      summary: 'serve a directory over HTTP (GET, HEAD, single Range requests) with injected faults',
      usage: `${TOOL} mirror --dir DIR [--port P] [--faults FILE.json] [--json]`,
      options: { dir: { type: 'string' }, port: { type: 'string' }, faults: { type: 'string' }, json },
      details:
        'Serves the files of DIR as http://127.0.0.1:P/<name> until interrupted; prints its address, then one line\n' +
        'per request (--json: one JSON object per line).\n' +
        'FILE.json: {"<name>": {"dropAfterBytes": N, "resetAfterBytes": N, "dropRequests": K, "ignoreRange": true,\n' +
        '  "bytesPerSecond": B, "status404": true, "status": 503, "corrupt": true | [offsets], "delayMs": MS}}\n' +
        '\nExamples:\n' +
        `  ${TOOL} mirror --dir /srv/slm-mirror --port 8080\n` +
        `  ${TOOL} mirror --dir ./mirror --faults faults.json --json`,
    },
    {
      dir: 'directory to serve (required)',
      port: 'port on 127.0.0.1 (default: any free port)',
      faults: 'JSON file of faults per file name',
      json: 'one JSON object per request instead of a text line',
    },
    argv,
    async ({ values }) => {
      if (typeof values.dir !== 'string') throw new UsageError('--dir is required');
      const port = positiveInt(values.port, 'port', 65535);
      const faults = await readFaults(values.faults);
      const m = await startMirror({ root: values.dir, port, faults });
      const started = { dir: values.dir, baseUrl: m.baseUrl };
      print(values.json, started, `mirror of ${values.dir} at ${m.baseUrl}/ (Ctrl-C to stop)`, 0);
      await serveUntilStopped(m, Boolean(values.json));
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'the real test bed of SLM-Copilot: engine build, test models, test mirror',
    {
      'build-llama': { summary: 'build llama-server, llama-quantize, llama-bench (cached)', run: buildLlama },
      'tiny-model': { summary: 'generate the tiny random-weight test GGUF (cached)', run: model('tiny-model') },
      'devstral-shaped': {
        summary: 'generate the ~1.8 GB Devstral-shaped GGUF (cached, slow)',
        run: model('devstral-shaped'),
      },
      mirror: { summary: 'serve a directory over HTTP (Range, HEAD, faults)', run: mirror },
    },
    argv,
  );
}

process.exitCode = await main(process.argv.slice(2));
