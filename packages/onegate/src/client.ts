/**
 * A small OneGate client. Requests as OpenNebula/one-apps ae5a43e411bde941f46b1e8e314eccf5c7a327b2
 * context-linux/src/usr/bin/onegate.rb sends them (do_request: headers X-ONEGATE-TOKEN and X-ONEGATE-VMID;
 * put: form body; http_start: https without certificate verification); answers as OpenNebula/one
 * f847cf2e9a78da302cd0344505f93eadc43a6d28 src/onegate/onegate-server.rb gives them (401 "Not authorized"
 * from authenticate, 404 when the VM is not found, 403 for restricted attributes, 500 on update errors).
 * Never throws for OneGate's sake: every outcome is a value, and the caller logs one line.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '@slm-copilot/task-kit';
import type { OneGateConfig } from './config.js';
import type { ServiceDocument, VmDocument } from './documents.js';
import { EXTENDED_BODY, eraseBody, updateBody } from './form.js';

export interface ClientOptions {
  log: Logger;
  /** Per request (connect + answer). */
  timeoutMs?: number;
  /** Attempts per call, first included (bounded). */
  attempts?: number;
  /** The first wait between attempts; doubled each time. */
  backoffMs?: number;
}

export const DEFAULTS = { timeoutMs: 10_000, attempts: 4, backoffMs: 1_000 } as const;

export type Outcome<T> =
  { ok: true; value: T } | { ok: false; reason: string; status: number | null; refused: boolean };

interface Answer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

const FORM = 'application/x-www-form-urlencoded';

/** A refusal worth trying again: the network, a timeout, a 5xx (except the server's "attribute not found"). */
const transient = (a: Answer) => a.status >= 500 && !/attribute not found/.test(a.body);

export class OneGateClient {
  private readonly opts: Required<ClientOptions>;

  constructor(
    readonly config: OneGateConfig,
    options: ClientOptions,
  ) {
    this.opts = { ...DEFAULTS, ...options };
  }

  /** PUT /vm type 1: the pairs join (or replace) the VM's USER_TEMPLATE. */
  updateVm(data: Record<string, string>): Promise<Outcome<void>> {
    return this.call('PUT', '/vm', updateBody(data), () => undefined);
  }

  /** PUT /vm type 2: removes one attribute from USER_TEMPLATE (500 "attribute not found" when absent). */
  eraseVm(key: string): Promise<Outcome<void>> {
    return this.call('PUT', '/vm', eraseBody(key), () => undefined);
  }

  getVm(): Promise<Outcome<VmDocument>> {
    return this.call('GET', '/vm', null, (body) => JSON.parse(body) as VmDocument);
  }

  /** GET /service, extended (each node's whole VM: USER_TEMPLATE and NICs), as `onegate service show --extended`. */
  getService(): Promise<Outcome<ServiceDocument>> {
    return this.call('GET', '/service', EXTENDED_BODY, (body) => JSON.parse(body) as ServiceDocument);
  }

  private async call<T>(
    method: 'GET' | 'PUT',
    route: string,
    body: string | null,
    parse: (body: string) => T,
  ): Promise<Outcome<T>> {
    const what = `${method} ${route}`;
    let last = '';
    let lastStatus: number | null = null;
    for (let attempt = 1; attempt <= this.opts.attempts; attempt++) {
      if (attempt > 1) await sleep(this.opts.backoffMs * 2 ** (attempt - 2));
      let answer: Answer;
      try {
        answer = await this.send(method, route, body);
      } catch (error) {
        last = (error as Error).message;
        lastStatus = null;
        this.opts.log.debug(`OneGate ${what}: attempt ${attempt}/${this.opts.attempts} failed: ${last}`);
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        try {
          return { ok: true, value: parse(answer.body) };
        } catch (error) {
          return {
            ok: false,
            reason: `${what}: unreadable answer: ${(error as Error).message}`,
            status: 200,
            refused: false,
          };
        }
      }
      last = `${answer.status} ${answer.body.trim().split('\n')[0] ?? ''}`.trim();
      lastStatus = answer.status;
      if (!transient(answer))
        return { ok: false, reason: `${what} refused: ${last}`, status: answer.status, refused: true };
      this.opts.log.debug(`OneGate ${what}: attempt ${attempt}/${this.opts.attempts}: ${last}`);
    }
    const reason = `${what} failed after ${this.opts.attempts} attempts: ${last}`;
    return { ok: false, reason, status: lastStatus, refused: false };
  }

  private send(method: string, route: string, body: string | null): Promise<Answer> {
    // onegate.rb requests the absolute path (`Put.new('/vm')`): a path in ONEGATE_ENDPOINT is not used
    const url = new URL(route, this.config.endpoint);
    const headers: Record<string, string> = {
      'X-ONEGATE-TOKEN': this.config.token,
      'X-ONEGATE-VMID': this.config.vmId,
      'User-Agent': 'slm-copilot-onegate',
      Accept: 'application/json',
    };
    if (body !== null)
      Object.assign(headers, { 'Content-Type': FORM, 'Content-Length': String(Buffer.byteLength(body)) });
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        // the official client does not verify OneGate's certificate either (http_start: VERIFY_NONE)
        { method, headers, timeout: this.opts.timeoutMs, rejectUnauthorized: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              headers: res.headers,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.opts.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
