import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';

/** Starts one request the way the caller wants it (its agent, trust, fresh connection …). */
export type NodeRequester = (
  url: string,
  options: RequestOptions,
  onResponse: (res: IncomingMessage) => void,
) => ClientRequest;

/**
 * A WHATWG `fetch` (what the official `openai` client takes) over a node:http/https requester, so
 * tests and the bench choose the TLS trust and the connection while the client stays unmodified.
 */
export function fetchOver(requester: NodeRequester): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    const body =
      init?.body === undefined || init?.body === null
        ? undefined
        : typeof init.body === 'string'
          ? init.body
          : Buffer.from(await new Response(init.body).arrayBuffer());
    return new Promise<Response>((resolve, reject) => {
      const req = requester(url, { method: init?.method ?? 'GET', headers }, (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) v.forEach((x) => h.append(k, x));
          else if (v !== undefined) h.set(k, v);
        }
        const status = res.statusCode ?? 0;
        const noBody = status === 204 || status === 304;
        if (noBody) res.resume();
        resolve(
          new Response(noBody ? null : (Readable.toWeb(res) as unknown as ReadableStream), { status, headers: h }),
        );
      });
      req.on('error', reject);
      init?.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')));
      req.end(body);
    });
  }) as typeof fetch;
}

/**
 * A DNS lookup that answers every name with `address`: certificates are checked against the name, the
 * connection goes to the test bed.
 */
export function lookupTo(address: string): LookupFunction {
  return ((_host: string, options: unknown, cb: (...args: unknown[]) => void) => {
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
    const family = address.includes(':') ? 6 : 4;
    if (all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  }) as LookupFunction;
}
