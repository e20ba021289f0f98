// A DNS server that resolves nothing: it records every name it is asked for and answers NXDOMAIN. An agent
// sandbox's resolv.conf points at it, so each host name an agent tries to reach (an update check, a
// telemetry endpoint) is named in the record, and refused, before any connection could be attempted.
import { createSocket, type Socket } from 'node:dgram';

export interface DnsQuery {
  name: string;
  /** A, AAAA, HTTPS, … (TYPE<n> for the rest). */
  type: string;
  /** What the catcher answered (always NXDOMAIN: the name does not exist for the sandbox). */
  answer: 'NXDOMAIN';
}

const TYPES: Record<number, string> = { 1: 'A', 5: 'CNAME', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 65: 'HTTPS' };

interface Question {
  name: string;
  qtype: number;
  /** Offset of the first byte after the question (name, type, class). */
  end: number;
}

/** The first question of a DNS query message; null when it is not a well-formed query. */
export function parseQuestion(msg: Buffer): Question | null {
  if (msg.length < 12 || (msg[2]! & 0x80) !== 0 || msg.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length) {
    const len = msg[at]!;
    if (len === 0) break;
    if (len > 63 || at + 1 + len > msg.length) return null; // no compression in a question we parse
    labels.push(msg.subarray(at + 1, at + 1 + len).toString('latin1'));
    at += 1 + len;
  }
  if (at + 5 > msg.length) return null;
  return { name: labels.join('.').toLowerCase(), qtype: msg.readUInt16BE(at + 1), end: at + 5 };
}

/** The NXDOMAIN answer to `msg`: its id, its question, recursion desired copied, no records. */
export function nxdomain(msg: Buffer, q: Question): Buffer {
  const out = Buffer.alloc(q.end);
  msg.copy(out, 0, 0, q.end);
  const rd = msg[2]! & 0x01;
  out[2] = 0x80 | rd; // QR=1 (a response), opcode 0, recursion desired as asked
  out[3] = 0x80 | 0x03; // RA=1, RCODE 3 (NXDOMAIN)
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6); // no answers, no authority
  out.writeUInt16BE(0, 10); // no additional records
  return out;
}

export interface DnsCatcher {
  address: string;
  port: number;
  /** Every query received, in order. */
  queries: DnsQuery[];
  close(): Promise<void>;
}

/** Listens on `address`:`port` (UDP; 53 for a resolv.conf, which cannot name another port). */
export async function startDnsCatcher(address: string, port = 53): Promise<DnsCatcher> {
  const socket: Socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  const queries: DnsQuery[] = [];
  socket.on('message', (msg, peer) => {
    const q = parseQuestion(msg);
    if (!q) return;
    queries.push({ name: q.name, type: TYPES[q.qtype] ?? `TYPE${q.qtype}`, answer: 'NXDOMAIN' });
    socket.send(nxdomain(msg, q), peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    address,
    port: socket.address().port,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
