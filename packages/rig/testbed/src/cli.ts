import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { cacheRoot } from './cache.js';
import { LLAMA_VARIANTS, ensureLlamaBuild, type LlamaVariant } from './llama-build.js';
import { startMirror, type MirrorFault } from './mirror.js';
import { DEVSTRAL_SHAPED_PARAMS, TINY_MODEL_PARAMS, ensureDevstralShapedModel, ensureTinyModel } from './tiny-model.js';

const MAIN_HELP = `slm-testbed — the real test bed of SLM-Copilot (engine build, test models, test mirror)

Usage: slm-testbed <command> [options]

Commands:
  build-llama [--variant V]           build llama-server, llama-quantize, llama-bench (cached)
  tiny-model                          generate the tiny random-weight test GGUF (cached)
  devstral-shaped                     generate the ~1.8 GB Devstral-shaped GGUF (cached, slow)
  mirror --dir D [--port P]           serve a directory over HTTP (Range, HEAD, faults)

Run 'slm-testbed <command> --help' for a command's options.
Cache: ${cacheRoot()} (set SLM_COPILOT_CACHE to move it).
`;

const HELP: Record<string, string> = {
  'build-llama': `Usage: slm-testbed build-llama [--variant dispatch|host|avx2] [--jobs N] [--verbose] [--json]

Builds llama-server, llama-quantize and llama-bench from the llama.cpp source bundled in
node-llama-cpp@3.21.1 (npm pack; never installed), once per version and flag set.
  --variant dispatch  the shipped build (default; also what every host test runs): shared libraries + CPU
                   modules haswell/skylakex/icelake/zen4 loaded at run time (GGML_BACKEND_DL; haswell under
                   QEMU TCG); no AMX module (llama.cpp #20824)
  --variant host   static, AVX-512 F/VBMI/VNNI/BF16: the host-native build the bench compares against
  --variant avx2   static, AVX2/FMA/F16C/BMI2 only (no longer used by the tests or the image)
  --jobs N         parallel compile jobs (default 2)
  --verbose        stream the compiler output
  --json           print the result as JSON (paths of the binaries)
Cold on 2 idle cores: ~4.5 min for a static variant, longer for dispatch (two cmake passes); instant when cached.
`,
  'tiny-model': `Usage: slm-testbed tiny-model [--json]

Generates the tiny test model (random weights, mistral3 architecture, ${TINY_MODEL_PARAMS.nLayer} layers x ${TINY_MODEL_PARAMS.nEmbd},
vocab ${TINY_MODEL_PARAMS.vocabSize}, trained context ${TINY_MODEL_PARAMS.contextLength}, Ministral-3 2512 chat template, ${TINY_MODEL_PARAMS.quant})
and prints its path. Builds the dispatch llama.cpp first if needed (for llama-quantize and gguf-py).
`,
  'devstral-shaped': `Usage: slm-testbed devstral-shaped [--json]

Generates a Devstral-shaped random-weight model (${DEVSTRAL_SHAPED_PARAMS.nLayer} layers x ${DEVSTRAL_SHAPED_PARAMS.nEmbd}, head_dim ${DEVSTRAL_SHAPED_PARAMS.headDim},
GQA ${DEVSTRAL_SHAPED_PARAMS.nHead}:${DEVSTRAL_SHAPED_PARAMS.nHeadKv}, ff ${DEVSTRAL_SHAPED_PARAMS.nFf}, vocab ${DEVSTRAL_SHAPED_PARAMS.vocabSize}; ~1.8 GB at ${DEVSTRAL_SHAPED_PARAMS.quant}) for speed work.
Needs ~8 GB of free disk while it runs (F16 intermediate) and a few minutes.
`,
  mirror: `Usage: slm-testbed mirror --dir D [--port P] [--faults FILE.json]

Serves the files of D as http://127.0.0.1:P/<name> (GET, HEAD, single Range requests)
until interrupted; prints one line per request.
  --faults FILE.json   {"<name>": {"dropAfterBytes": N, "dropRequests": K, "bytesPerSecond": B,
                        "status404": true, "status": 503, "corrupt": true | [offsets], "delayMs": MS}}
`,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(MAIN_HELP);
    return cmd ? 0 : 2;
  }
  if (!(cmd in HELP)) {
    process.stderr.write(`unknown command '${cmd}'\n\n${MAIN_HELP}`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: 'boolean', short: 'h' },
      variant: { type: 'string' },
      jobs: { type: 'string' },
      verbose: { type: 'boolean' },
      json: { type: 'boolean' },
      dir: { type: 'string' },
      port: { type: 'string' },
      faults: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP[cmd]!);
    return 0;
  }
  const print = (obj: Record<string, unknown>, text: string) =>
    process.stdout.write(values.json ? JSON.stringify(obj, null, 2) + '\n' : text + '\n');

  switch (cmd) {
    case 'build-llama': {
      const variant = (values.variant ?? 'dispatch') as LlamaVariant;
      if (!LLAMA_VARIANTS.includes(variant)) throw new Error(`--variant must be one of ${LLAMA_VARIANTS.join(', ')}`);
      const b = await ensureLlamaBuild({
        variant,
        jobs: values.jobs ? Number(values.jobs) : undefined,
        verbose: values.verbose,
      });
      print(
        { ...b },
        `llama-server:   ${b.llamaServer}\nllama-quantize: ${b.llamaQuantize}\nllama-bench:    ${b.llamaBench}\nsource:         ${b.srcDir}`,
      );
      return 0;
    }
    case 'tiny-model':
    case 'devstral-shaped': {
      const m = cmd === 'tiny-model' ? await ensureTinyModel() : await ensureDevstralShapedModel();
      print({ ...m }, `${m.path}\nsha256 ${m.sha256}, ${m.bytes} bytes`);
      return 0;
    }
    case 'mirror': {
      if (!values.dir) throw new Error('mirror: --dir is required');
      const faults = values.faults
        ? (JSON.parse(await readFile(values.faults, 'utf8')) as Record<string, MirrorFault>)
        : {};
      const mirror = await startMirror({
        root: values.dir,
        port: values.port ? Number(values.port) : undefined,
        faults,
      });
      process.stdout.write(`mirror of ${values.dir} at ${mirror.baseUrl}/ (Ctrl-C to stop)\n`);
      let seen = 0;
      const timer = setInterval(() => {
        for (; seen < mirror.requests.length; seen++) {
          const r = mirror.requests[seen]!;
          process.stdout.write(
            `${r.method} ${r.path}${r.range ? ` [${r.range}]` : ''} -> ${r.status}, ${r.bytes} bytes${r.dropped ? ' (dropped)' : ''}\n`,
          );
        }
      }, 200);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      clearInterval(timer);
      await mirror.stop();
      return 0;
    }
  }
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`slm-testbed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
