#!/usr/bin/env node
// Bundles the package in the current directory:
//   src/cli.ts   -> dist/cli.mjs   (self-contained: runs on a bare Node with no node_modules, as in the image)
//   src/index.ts -> dist/index.mjs (library; dependencies stay external)
import { existsSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { build } from 'esbuild';

const common = {
  platform: 'node',
  target: 'node20',
  format: 'esm',
  bundle: true,
  conditions: ['source'],
  legalComments: 'none',
  logLevel: 'warning',
  // ESM bundles of CommonJS dependencies (ajv, yaml…) need a real `require`.
  banner: { js: "import { createRequire as __slmCreateRequire } from 'node:module'; const require = __slmCreateRequire(import.meta.url);" },
};

const started = performance.now();
if (existsSync('src/cli.ts')) {
  // src/cli.ts must not carry its own shebang: the banner puts one first.
  await build({ ...common, entryPoints: ['src/cli.ts'], outfile: 'dist/cli.mjs', banner: { js: `#!/usr/bin/env node\n${common.banner.js}` } });
  await chmod('dist/cli.mjs', 0o755);
}
if (existsSync('src/index.ts')) {
  await build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.mjs', packages: 'external' });
}
console.error(`esbuild: ${process.cwd().split('/').slice(-2).join('/')} bundled in ${Math.round(performance.now() - started)} ms`);
