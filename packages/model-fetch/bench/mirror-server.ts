// Serves a directory with the test bed's mirror in its own process, so the benchmark's hashing never
// shares an event loop with the server. Prints the base URL; stops when its stdin closes.
//   tsx bench/mirror-server.ts ROOT [NAME BYTES_PER_SECOND]   (optional throttle for one file)
import { startMirror } from '@slm-copilot/testbed';

const [root, name, rate] = process.argv.slice(2);
if (!root) throw new Error('usage: mirror-server.ts ROOT [NAME BYTES_PER_SECOND]');
const mirror = await startMirror({ root, faults: name && rate ? { [name]: { bytesPerSecond: Number(rate) } } : {} });
process.stdout.write(`${mirror.baseUrl}\n`);
process.stdin.resume();
process.stdin.on('end', () => void mirror.stop().then(() => process.exit(0)));
