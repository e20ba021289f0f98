// esbuild settings shared by every package's `build` (scripts/esbuild.mjs) and the appliance bundle.
import { chmod } from 'node:fs/promises';
import { build } from 'esbuild';

const requireBanner =
  "import { createRequire as __slmCreateRequire } from 'node:module'; " +
  'const require = __slmCreateRequire(import.meta.url);';

const common = {
  platform: 'node',
  target: 'node20',
  format: 'esm',
  bundle: true,
  conditions: ['source'],
  legalComments: 'none',
  logLevel: 'warning',
};

/**
 * A self-contained executable .mjs: runs on a bare Node with no node_modules (as in the image).
 * Entry files carry no shebang.
 */
export async function bundleCli(entry, outfile) {
  await build({ ...common, entryPoints: [entry], outfile, banner: { js: `#!/usr/bin/env node\n${requireBanner}` } });
  await chmod(outfile, 0o755);
}

/** The library entry; dependencies stay external. */
export async function bundleLibrary(entry, outfile) {
  await build({ ...common, entryPoints: [entry], outfile, packages: 'external', banner: { js: requireBanner } });
}
