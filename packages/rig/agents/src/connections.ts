// The connections a run attempted, read from strace's record of its connect/send calls (every process of
// the run, `strace -f`): the address each one named and what the kernel answered. Calls on a connected
// socket name no address and are not attempts; neither are netlink sockets.

export interface Attempt {
  pid: number;
  syscall: string;
  family: 'inet' | 'inet6' | 'unix';
  /** IP address (an IPv4-mapped IPv6 address as IPv4) or the unix socket's path. */
  address: string;
  port?: number;
  /** `0`, a byte count, or the error (`ENETUNREACH`, `ECONNREFUSED`, `EINPROGRESS`: the answer comes later). */
  result: string;
}

const CALL = /^(\d+) +(connect|sendto|sendmsg|sendmmsg)\((.*)$/;
const RESUMED = /^(\d+) +<\.\.\. (\w+) resumed>.*\) += (.*)$/;
const INET = /sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)/;
const INET6 = /sa_family=AF_INET6, sin6_port=htons\((\d+)\),.*?inet_pton\(AF_INET6, "([^"]+)"/;
const UNIX = /sa_family=AF_UNIX, sun_path=@?"([^"]*)"/;

/** `= 0`, `= 29`, `= -1 ENETUNREACH (Network is unreachable)` → `0`, `29`, `ENETUNREACH`. */
function resultOf(text: string): string {
  const m = /^(-?\d+)(?: (E[A-Z0-9]+))?/.exec(text.trim());
  if (!m) return text.trim();
  return m[2] ?? m[1]!;
}

function addressOf(args: string): Pick<Attempt, 'family' | 'address' | 'port'> | null {
  const v4 = INET.exec(args);
  if (v4) return { family: 'inet', address: v4[2]!, port: Number(v4[1]) };
  const v6 = INET6.exec(args);
  if (v6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(v6[2]!);
    return mapped
      ? { family: 'inet', address: mapped[1]!, port: Number(v6[1]) }
      : { family: 'inet6', address: v6[2]!, port: Number(v6[1]) };
  }
  const unix = UNIX.exec(args);
  if (unix) return { family: 'unix', address: unix[1]! };
  return null;
}

/** The attempts in a strace record (`-f`, so each line starts with the pid). */
export function parseAttempts(record: string): Attempt[] {
  const out: Attempt[] = [];
  const pending = new Map<string, Attempt>();
  for (const line of record.split('\n')) {
    const resumed = RESUMED.exec(line);
    if (resumed) {
      const a = pending.get(`${resumed[1]} ${resumed[2]}`);
      if (a) a.result = resultOf(resumed[3]!);
      pending.delete(`${resumed[1]} ${resumed[2]}`);
      continue;
    }
    const call = CALL.exec(line);
    if (!call) continue;
    const where = addressOf(call[3]!);
    if (!where) continue;
    const unfinished = call[3]!.endsWith('<unfinished ...>');
    const done = /\) += (.*)$/.exec(call[3]!);
    const a: Attempt = { pid: Number(call[1]), syscall: call[2]!, ...where, result: done ? resultOf(done[1]!) : '?' };
    if (unfinished) pending.set(`${a.pid} ${a.syscall}`, a);
    out.push(a);
  }
  return out;
}

/** `10.0.0.1:443`, `[::1]:443`, `unix:/path`. */
export function describeAttempt(a: Pick<Attempt, 'family' | 'address' | 'port'>): string {
  if (a.family === 'unix') return `unix:${a.address}`;
  return a.family === 'inet6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Loopback: inside the sandbox only the agent's own processes listen there. */
export function isLoopback(a: Attempt): boolean {
  return (a.family === 'inet' && a.address.startsWith('127.')) || (a.family === 'inet6' && a.address === '::1');
}
