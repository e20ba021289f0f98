import { createServer } from 'node:net';

/** Ports this process has handed out: the kernel may give the same free port to two bind(0) calls in a row. */
const handedOut = new Set<number>();

function probePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

/**
 * A TCP port that was free a moment ago on `host` (bind to port 0, read it, close), never one this
 * process got before. The caller still retries if another process takes it meanwhile.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await probePort(host);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('could not get a free port that this process has not used already (50 tries)');
}
