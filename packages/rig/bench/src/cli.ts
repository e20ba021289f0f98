import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, flagInt, flagString, runCommand, UsageError } from '@slm-copilot/task-kit';
import { formatJson, formatMarkdown, formatTable } from './report.js';
import type { BenchOptions } from './types.js';

const [str, int] = [flagString, flagInt];

const code = await runCommand(
  {
    name: 'slm-bench',
    summary:
      'benchmark SLM-Copilot: gateway vs bare engine, bandwidth bound, TTFT overhead, prompt cache, threads, ' +
      'model download',
    usage: 'slm-bench [--quick] [--url URL --key KEY [--ca FILE]] [--json out.json] [--markdown out.md]',
    options: {
      quick: { type: 'boolean', default: false },
      url: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
      engine: { type: 'string' },
      'engine-url': { type: 'string' },
      model: { type: 'string' },
      'llama-server': { type: 'string' },
      'llama-bench': { type: 'string' },
      variant: { type: 'string' },
      threads: { type: 'string' },
      'fetch-size-mb': { type: 'string' },
      tune: { type: 'boolean' },
      'no-tune': { type: 'boolean', default: false },
      'tune-only': { type: 'boolean', default: false },
      'tune-pairs': { type: 'string' },
      'tune-variants': { type: 'string' },
      'tune-depth': { type: 'string' },
      'skip-fetch': { type: 'boolean', default: false },
      json: { type: 'string' },
      markdown: { type: 'string' },
    },
    details: `Without --url it builds its own test bed: llama-server with the command line the appliance renders
(renderEngine: threads = physical cores, context, prompt cache …), the real nginx with the rendered
gateway (TLS from the generated CA, API key, SSE), and measures, each as a ratio within this one run:
  1  generation tok/s through the gateway (openai client, streaming) ÷ llama-bench tg at equal depth
     (-d = the server's prompt tokens) and at depth 0; same model, threads and KV flags (-ctk/-ctv/-fa)
  2  generation tok/s ÷ the memory-bandwidth bound (read bandwidth measured now ÷ GGUF bytes read per token),
     with what limits it here: decode scaling with threads, tg(Nt)/tg(1t) → compute- or memory-bound
  3  TTFT through the gateway minus direct to the engine (median, fresh TLS connection each)
  4  prompt cache: turn-2 ÷ turn-1 TTFT of a Cline-like conversation (8k-token system prompt; 1k with
     --quick), with the rendered settings (4a) and with --no-cache-prompt (4b); 4c: two users alternating
     new tasks on one slot, each resending its own 8k-token system prompt (1k with --quick): new-task TTFT
     ÷ the cold TTFT after an engine start (goal ≤ 0.15), with timings.prompt_n (tokens really processed)
  5  thread sweep 1..CPUs with llama-bench: the default thread count ÷ the best (OK within 5 %)
  6  model-fetch ÷ (wget -c, then sha256sum) on a 1.5 GiB file from a local mirror (64 MiB with --quick)
  8  prompt tok/s of the shipped runtime-dispatching llama.cpp build ÷ a host-native build of the same
     source (llama-bench pp, interleaved rounds; goal ≥ 0.95); names the CPU module it loaded
A full run also starts llama-server with flag variants (repack, flash attention, mmap, mlock, ubatch,
poll, threads) beside the rendered one, alternating requests between the two, to back or refute the
engine defaults (--no-tune skips it, --tune-only runs only that).
The machine's load (/proc/loadavg) and the CPU used by other processes (/proc/stat minus our own
process tree) are sampled before and during the run; a busy machine is reported as NOT quiet.
Full run: the ~1.8 GB Devstral-shaped model (generated once and cached); --quick: the tiny model.
How long each takes: the repository README, sections "Benchmarks" and "Development".

With --url/--key/--ca it measures a deployed endpoint (an appliance). Engine-direct figures use
SSH-free means only: when run ON the VM (URL on localhost) the local model file, llama-bench
(--llama-bench) and the engine port (--engine-url, default http://127.0.0.1:8080); otherwise figure 1
uses llama-server's own timings from the stream and the rest are skipped with the reason.
When the engine is LocalAI (detected from /props and /version, or --engine localai) it also starts
llama-server (--llama-server, --model) on the same machine with the rendered flags and compares (7).

Examples:
  pnpm bench --quick
  pnpm bench --json bench-results/full.json --markdown bench-results/full.md
  slm-bench --url https://copilot.example.com --key "$KEY" --ca appliance-ca.crt --quick`,
  },
  {
    quick: 'tiny model and small sizes: every figure, quickly (what `npm test` runs)',
    url: "measure this endpoint instead of the test bed (e.g. https://host[:port]; '/v1' optional)",
    key: 'API key for --url',
    ca: 'PEM CA file to trust for --url (the appliance CA)',
    engine: 'auto (default: detect), llama-server or localai',
    'engine-url': 'the engine directly, for figure 3 with --url (on the VM: http://127.0.0.1:8080)',
    model: 'GGUF file: the test-bed model instead of the generated one; with --url, a local copy of the served model',
    'llama-server': 'llama-server binary (default: the test bed build)',
    'llama-bench': 'llama-bench binary (default: the test bed build)',
    variant:
      'test-bed llama.cpp build: host (static, AVX-512; default when the CPU has it) or dispatch (the shipped one)',
    threads: 'ONEAPP_COPILOT_THREADS for the render (default 0 = physical cores)',
    'fetch-size-mb': 'size of the figure-6 file (default 1536, quick 64)',
    tune: 'run the engine flag variants (default: on in a full test-bed run)',
    'no-tune': 'skip the engine flag variants',
    'tune-only': 'test bed: only the engine flag variants, no figures',
    'tune-pairs': 'variant/rendered request pairs per variant (default 3; quick 1)',
    'tune-variants':
      'comma-separated variant names or flags to run (e.g. "-fa on,--mlock"); the A/A control always runs',
    'tune-depth':
      'long prompts: every engine caches a prefix of this many tokens and each measured request continues it ' +
      '(1024 new tokens, then generation; quick 128)',
    'skip-fetch': 'skip figure 6',
    json: 'write the full report as JSON here',
    markdown: 'write the table as markdown here',
  },
  process.argv.slice(2),
  async ({ values, log }) => {
    const engine = str(values.engine) ?? 'auto';
    if (!['auto', 'llama-server', 'localai'].includes(engine))
      throw new UsageError(`--engine must be auto, llama-server or localai, got "${engine}"`);
    const variant = str(values.variant);
    if (variant && variant !== 'host' && variant !== 'dispatch')
      throw new UsageError(`--variant must be host or dispatch, got "${variant}"`);
    if (values.key && !values.url) throw new UsageError('--key needs --url');
    const opts: BenchOptions = {
      quick: Boolean(values.quick),
      url: str(values.url),
      key: str(values.key),
      ca: str(values.ca),
      engine: engine as BenchOptions['engine'],
      engineUrl: str(values['engine-url']),
      model: str(values.model),
      llamaServer: str(values['llama-server']),
      llamaBench: str(values['llama-bench']),
      variant: variant as BenchOptions['variant'],
      threads: int(values.threads, 'threads'),
      fetchSizeMb: int(values['fetch-size-mb'], 'fetch-size-mb'),
      tune: values['no-tune'] ? false : (values.tune as boolean | undefined),
      skipFetch: Boolean(values['skip-fetch']),
      tuneOnly: Boolean(values['tune-only']),
      tunePairs: int(values['tune-pairs'], 'tune-pairs'),
      tuneDepth: int(values['tune-depth'], 'tune-depth'),
      tuneVariants: str(values['tune-variants'])
        ?.split(',')
        .map((x) => x.trim())
        .filter(Boolean),
      log: (m) => log.info(m),
    };
    // The bench is imported once the command has decided to run (help and usage errors load nothing).
    const { runBench } = await import('./run.js');
    const report = await runBench(opts);
    process.stdout.write(formatTable(report));
    for (const [file, text] of [
      [str(values.json), formatJson(report)],
      [str(values.markdown), formatMarkdown(report)],
    ] as const) {
      if (!file) continue;
      await mkdir(path.dirname(path.resolve(file)), { recursive: true });
      await writeFile(file, text);
      log.info(`wrote ${file}`);
    }
    return ExitCode.ok;
  },
);
process.exit(code);
