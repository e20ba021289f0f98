// Runs nginx-config's upstream test double (NOT the engine) in this process — started inside a
// network namespace by netns.ts — and reports each recorded request as a JSON line on stdout.
// A number read on stdin is answered with {"pong": n} after every request recorded so far.
import { createInterface } from 'node:readline';
import { startUpstreamDouble } from '@slm-copilot/nginx-config/test-support/upstream-double';

const double = await startUpstreamDouble({ port: Number(process.argv[2] ?? 0) });
let sent = 0;
const flush = () => {
  while (sent < double.requests.length)
    process.stdout.write(`${JSON.stringify({ request: double.requests[sent++] })}\n`);
};
setInterval(flush, 20);
createInterface({ input: process.stdin }).on('line', (line) => {
  flush();
  process.stdout.write(`${JSON.stringify({ pong: Number(line) })}\n`);
});
process.on('SIGTERM', () => {
  void double.close().then(() => process.exit(0));
});
process.stdout.write(`${JSON.stringify({ port: double.port })}\n`);
