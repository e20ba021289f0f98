// The wget driver: one wget run = one HTTP request chain (redirects followed), so that every
// retry, resume and restart is decided — and logged — by fetch.ts, never silently inside wget.
import { $, which } from 'zx';
import type { Logger } from '@slm-copilot/task-kit';

/** Why one attempt or source failed (also used to pick the exit code and whether to retry). */
export type FailureKind =
  | 'not-found'
  | 'http'
  | 'auth'
  | 'dns'
  | 'refused'
  | 'reset'
  | 'timeout'
  | 'dropped'
  | 'range-ignored'
  | 'tls'
  | 'disk-full'
  | 'io'
  | 'no-resume'
  | 'killed'
  | 'checksum'
  | 'not-gguf'
  | 'network'
  | 'unknown';

export interface Failure {
  kind: FailureKind;
  cause: string;
  /** The HTTP status, for kind `http`/`auth`/`not-found`. */
  status?: number;
}

/** Maps wget's exit status and messages (run with LC_ALL=C) to a cause a user can act on. */
export function classifyWgetFailure(exitCode: number | null, signal: string | null, stderr: string): Failure {
  if (signal) return { kind: 'killed', cause: `wget was killed by ${signal}` };
  const httpErrors = [...stderr.matchAll(/ERROR (\d{3}): ([^\n]*?)\.?\s*$/gm)];
  const last = httpErrors.at(-1);
  if (/No space left on device/.test(stderr)) {
    return { kind: 'disk-full', cause: 'disk full (No space left on device)' };
  }
  if (/Cannot write to/.test(stderr)) {
    const m = /Cannot write to .*?\((.*)\)/.exec(stderr);
    return { kind: 'io', cause: `cannot write the download${m ? ` (${m[1]})` : ''}` };
  }
  if (/Refusing to truncate existing file|conflicts with [`'‘]-c/.test(stderr)) {
    const cause = 'the server ignored the Range request, so the partial download cannot be continued';
    return { kind: 'no-resume', cause };
  }
  if (last) {
    const status = Number(last[1]);
    const text = `HTTP ${status} ${last[2]!.trim()}`;
    if (status === 404 || status === 410) return { kind: 'not-found', cause: `${text} (no such file there)`, status };
    if (status === 401 || status === 403) return { kind: 'auth', cause: `${text} (gated or private)`, status };
    return { kind: 'http', cause: text, status };
  }
  const dns = new RegExp(
    [
      'unable to resolve host address',
      'Name or service not known',
      'Temporary failure in name resolution',
      'No address associated',
    ].join('|'),
  );
  if (dns.test(stderr)) {
    const host = /unable to resolve host address [‘'`"]?([^’'"\s]+)/.exec(stderr)?.[1];
    return { kind: 'dns', cause: `DNS lookup failed${host ? ` for ${host}` : ''}` };
  }
  if (/Connection refused/.test(stderr)) {
    return { kind: 'refused', cause: 'connection refused (nothing listening there)' };
  }
  if (/timed out/i.test(stderr)) return { kind: 'timeout', cause: 'timed out (no data within --timeout)' };
  if (/Connection reset by peer/.test(stderr)) {
    const at = /Read error at byte (\d+)\S* \(Connection reset by peer\)/.exec(stderr)?.[1];
    return { kind: 'reset', cause: `connection reset by peer${at ? ` at byte ${at}` : ''}` };
  }
  const closed = /(?:Connection closed|Read error) at byte (\d+)/.exec(stderr);
  if (closed) return { kind: 'dropped', cause: `connection dropped at byte ${closed[1]}` };
  if (/ERROR: cannot verify|certificate|SSL|TLS|GnuTLS/i.test(stderr) || exitCode === 5) {
    return { kind: 'tls', cause: 'TLS verification failed' };
  }
  if (exitCode === 4) return { kind: 'network', cause: 'network failure' };
  const lastLine =
    stderr
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .at(-1) ?? '';
  return { kind: 'unknown', cause: `wget exited with ${exitCode}${lastLine ? `: ${lastLine.trim()}` : ''}` };
}

/** The final status of the request chain seen so far (after redirects), or null before any answer. */
export function lastHttpStatus(stderr: string): number | null {
  const all = [...stderr.matchAll(/awaiting response\.\.\. (\d{3})/g)];
  const last = all.at(-1);
  return last ? Number(last[1]) : null;
}

let setprivPath: string | null | undefined;
async function findSetpriv(): Promise<string | null> {
  if (setprivPath === undefined) setprivPath = await which('setpriv', { nothrow: true });
  return setprivPath;
}

export interface WgetRun {
  url: string;
  partial: string;
  /** Bytes already in `partial`: wget asks for the rest with a Range request. */
  resumeFrom: number;
  log: Logger;
  timeoutSec: number;
  progress: 'bar' | 'dot' | 'none';
  wget: string;
}

/**
 * One wget run: `wget -c -O <partial> --tries=1`; resolves with a failure, or null on success.
 * wget -c -O silently starts over from byte 0 (overwriting the partial file) when a server answers
 * a Range request with 200: that is caught here from the status line, wget is stopped before it
 * writes, and `range-ignored` is returned so the caller restarts the file and its hash from 0.
 */
export async function runWget(o: WgetRun): Promise<Failure | null> {
  const args = [
    '--continue',
    `--output-document=${o.partial}`,
    '--tries=1',
    `--timeout=${o.timeoutSec}`,
    '--no-hsts',
    `--progress=${o.progress === 'bar' ? 'bar:force:noscroll' : 'dot:giga'}`,
    o.url,
  ];
  // setpriv --pdeathsig: wget dies with us (even on SIGKILL), so an orphan never keeps appending.
  const setpriv = await findSetpriv();
  const argv = setpriv ? [setpriv, '--pdeathsig', 'KILL', o.wget, ...args] : [o.wget, ...args];
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C', COLUMNS: String(process.stderr.columns ?? 100) };
  const p = $({ quiet: true, nothrow: true, env })`exec ${argv}`;
  let tail = '';
  let line = '';
  let statusChecked = o.resumeFrom === 0;
  let rangeIgnored = false;
  p.stderr.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    tail = (tail + text).slice(-32_768);
    if (!statusChecked) {
      const status = lastHttpStatus(tail);
      if (status !== null && (status < 300 || status >= 400)) {
        statusChecked = true;
        if (status === 200) {
          rangeIgnored = true;
          void p.kill('SIGKILL').catch(() => undefined);
        }
      }
    }
    if (o.progress === 'bar') {
      process.stderr.write(text);
    } else if (o.progress === 'dot') {
      line += text;
      let nl: number;
      while ((nl = line.indexOf('\n')) >= 0) {
        const l = line.slice(0, nl).trimEnd();
        line = line.slice(nl + 1);
        if (l.trim()) o.log.info(l);
      }
    }
  });
  const out = await p;
  if (o.progress === 'dot' && line.trim()) o.log.info(line.trimEnd());
  if (rangeIgnored) {
    const cause = `server ignored Range (asked for bytes ${o.resumeFrom}-, it answered 200 with the whole file)`;
    return { kind: 'range-ignored', cause };
  }
  if (out.exitCode === 0 && !out.signal) return null;
  return classifyWgetFailure(out.exitCode, out.signal, tail);
}
