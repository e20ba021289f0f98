// The nginx-config bin (bundled as dist/cli.mjs); the commands live in commands.ts.
import { main } from './commands.js';

process.exitCode = await main(process.argv.slice(2));
