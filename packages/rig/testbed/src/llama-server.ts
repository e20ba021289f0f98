import { formatDuration, freePort, reapOnExit } from '@slm-copilot/task-kit';
import { $, type ProcessPromise } from 'zx';

export interface StartLlamaServerOptions {
  /** Path of the llama-server binary (e.g. `(await ensureLlamaBuild()).llamaServer`). */
  binary: string;
  /**
   * Arguments, e.g. `['-m', model, '--jinja', '-c', '4096', '--alias', 'devstral-small-2']`.
   * `--host`/`--port` are added.
   */
  args: string[];
  /** Port to listen on (default: a random free port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** How long to wait for `/health` to answer 200 (default 120 s). */
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface LlamaServer {
  /** `http://127.0.0.1:<port>` (append `/v1` for OpenAI clients). */
  baseUrl: string;
  port: number;
  pid: number;
  /** The zx process (its stdout/stderr streams are live). */
  process: ProcessPromise;
  /** Everything the server printed so far (stdout + stderr). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** SIGKILL, and a process already gone is fine. */
function killNow(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * Starts a real llama-server and waits until `GET /health` answers 200.
 * On timeout or early exit it throws an error that includes the server's output tail.
 * If the port was chosen here and turns out to be taken meanwhile, it retries with another.
 */
export async function startLlamaServer(opts: StartLlamaServerOptions): Promise<LlamaServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      const retry = opts.port === undefined && attempt < 3 && e instanceof PortInUseError;
      if (!retry) throw e;
    }
  }
}

class PortInUseError extends Error {}

async function startOnce(opts: StartLlamaServerOptions): Promise<LlamaServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  const readyTimeoutMs = opts.readyTimeoutMs ?? 120_000;
  for (const flag of ['--host', '--port']) {
    if (opts.args.includes(flag)) throw new Error(`startLlamaServer: pass ${flag} through the options, not in args`);
  }
  const args = [...opts.args, '--host', host, '--port', String(port)];
  const env = { ...process.env, ...opts.env };
  // `exec` so that the zx child *is* llama-server (signals reach it directly).
  const proc = $({ quiet: true, nothrow: true, env })`exec ${opts.binary} ${args}`;
  let out = '';
  const collect = (d: Buffer) => {
    out += d.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  proc.stdout.on('data', collect);
  proc.stderr.on('data', collect);
  let exited = false;
  let exitCode: number | null = null;
  let unregister = () => {};
  const done = proc.then((o) => {
    exited = true;
    exitCode = o.exitCode;
    unregister();
  });
  const pid = proc.pid;
  if (!pid) {
    await done;
    throw new Error(`llama-server did not start (${opts.binary}): ${tail(out)}`);
  }
  if (!exited) unregister = reapOnExit(() => killNow(pid));
  const baseUrl = `http://${host}:${port}`;

  const stop = async (graceMs = 5000): Promise<void> => {
    if (exited) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const timer = setTimeout(() => killNow(pid), graceMs);
    await done;
    clearTimeout(timer);
  };

  const t0 = performance.now();
  for (;;) {
    if (exited) {
      const msg =
        `llama-server exited (code ${exitCode}) before becoming ready on ${baseUrl}\n` +
        `--- output tail ---\n${tail(out)}`;
      if (/couldn't bind|address already in use/i.test(out)) throw new PortInUseError(msg);
      throw new Error(msg);
    }
    if (performance.now() - t0 > readyTimeoutMs) {
      await stop(1000);
      throw new Error(
        `llama-server not ready within ${formatDuration(readyTimeoutMs)} on ${baseUrl}/health\n` +
          `--- output tail ---\n${tail(out)}`,
      );
    }
    try {
      const r = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { baseUrl, port, pid, process: proc, output: () => out, stop };
}
