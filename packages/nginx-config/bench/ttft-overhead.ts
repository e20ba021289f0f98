// Time-to-first-token overhead of the gateway: the same streamed chat request to llama-server
// directly (plain HTTP, new TCP connection) and through the rendered nginx (HTTPS, new TCP + TLS
// handshake each time), alternating, N rounds; prints the medians and their difference.
//   pnpm --filter @slm-copilot/nginx-config bench [-- --rounds 20 --variant host]
// Not a test: numbers depend on the machine; it says whether the machine was quiet.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, Agent } from 'node:https';
import { loadavg, cpus } from 'node:os';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { appliancePaths } from '@slm-copilot/context-schema';
import { ensureLlamaBuild, ensureTinyModel, startLlamaServer, type LlamaVariant } from '@slm-copilot/testbed';
import { lookupTo } from '../src/test-support/client.js';
import { freePort, removeTempRoots, startGateway, tempRoot } from '../src/test-support/nginx.js';
import { ensureSelfSigned } from '../src/tls.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: { rounds: { type: 'string', default: '20' }, variant: { type: 'string', default: process.env.SLM_COPILOT_TESTBED_LLAMA_VARIANT ?? 'host' }, help: { type: 'boolean', default: false } },
});
if (values.help) {
  console.log('ttft-overhead [--rounds 20] [--variant host|avx2]: TTFT through nginx minus direct to llama-server (medians), tiny model');
  process.exit(0);
}
const ROUNDS = Number(values.rounds);
const HOST = 'copilot.example.test';
const KEY = 'sk-test-main-key-0123456789abcdef';
const BODY = JSON.stringify({
  model: 'devstral-small-2',
  messages: [{ role: 'user', content: 'Write one word.' }],
  max_tokens: 4,
  stream: true,
});
const quietLog = { debug() {}, info() {}, warn() {}, error() {}, addSecret() {}, child() { return quietLog; }, phase: <T>(_: string, fn: () => Promise<T>) => fn() };

/** ms from sending the request to the first `data:` event that carries a content delta. */
function ttft(send: (onResponse: (res: import('node:http').IncomingMessage) => void) => import('node:http').ClientRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first: number | undefined;
    const req = send((res) => {
      if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (first === undefined && /"content":"/.test(event)) first = performance.now() - t0;
        }
      });
      res.on('end', () => (first === undefined ? reject(new Error('no token')) : resolve(first)));
    });
    req.on('error', reject);
    req.end(BODY);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const t0 = performance.now();
const build = await ensureLlamaBuild({ variant: values.variant as LlamaVariant });
const model = await ensureTinyModel({ llama: build });
const root = await tempRoot('bench');
const paths = appliancePaths(root);
const ss = await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [], log: quietLog });
const ca = await readFile(paths.tls.caCert);
const enginePort = await freePort();
const engine = await startLlamaServer({ binary: build.llamaServer, port: enginePort, args: ['-m', model.path, '--jinja', '-c', '4096', '--alias', 'devstral-small-2', '-t', '2'] });
const gw = await startGateway({ root, tls: ss.served, trustFile: paths.tls.caCert, enginePort, env: { ONEAPP_COPILOT_ENGINE: 'llama-server', ONEAPP_COPILOT_RATE_LIMIT: '0' } });
try {
  const load = loadavg()[0]!;
  const direct = () =>
    ttft((cb) => httpRequest(`http://127.0.0.1:${enginePort}/v1/chat/completions`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json' } }, cb));
  const viaNginx = () =>
    ttft((cb) =>
      httpsRequest(
        `https://${HOST}:${gw.httpsPort}/v1/chat/completions`,
        { method: 'POST', agent: new Agent({ ca, keepAlive: false, lookup: lookupTo('127.0.0.1') }), headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` } },
        cb,
      ),
    );
  for (let i = 0; i < 3; i++) {
    await direct();
    await viaNginx();
  }
  const d: number[] = [];
  const n: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // alternate the order so neither path always runs on a warmer cache
    if (i % 2) {
      d.push(await direct());
      n.push(await viaNginx());
    } else {
      n.push(await viaNginx());
      d.push(await direct());
    }
  }
  const pairs = d.map((x, i) => n[i]! - x);
  const loadAfter = loadavg()[0]!;
  const quiet = Math.max(load, loadAfter) < 0.5 * cpus().length;
  const fmt = (x: number) => `${x.toFixed(2)} ms`;
  console.log(`TTFT, tiny model, llama-server ${build.variant}, ${ROUNDS} rounds, fresh connection each (nginx: TCP + TLS 1.3 handshake):`);
  console.log(`  direct to llama-server (HTTP):  median ${fmt(median(d))}`);
  console.log(`  through nginx (HTTPS):          median ${fmt(median(n))}`);
  console.log(`  overhead (median nginx - median direct): ${fmt(median(n) - median(d))}; median of paired differences: ${fmt(median(pairs))}`);
  console.log(`  machine ${quiet ? 'quiet' : 'NOT quiet'}: load average ${load.toFixed(2)} before, ${loadAfter.toFixed(2)} after, ${cpus().length} CPUs; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify({ bench: 'ttft-overhead', rounds: ROUNDS, directMs: median(d), nginxMs: median(n), overheadMs: median(n) - median(d), pairedMs: median(pairs), quiet, load: [load, loadAfter] }));
} finally {
  await engine.stop();
  await gw.stop();
  removeTempRoots();
}
