import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256File, type Logger } from '@slm-copilot/task-kit';
import type { BuildPlan } from '@slm-copilot/lifecycle';
// @ts-expect-error plain ESM helper shared with every package's build
import { bundleCli } from '../esbuild-options.mjs';
import { ensureNodeRuntime, NODE_RUNTIME } from './node-runtime.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The task CLIs that go into the image, by name in /opt/slm-copilot/bin. */
export const BUNDLED_CLIS: Record<string, string> = {
  'slm-copilot-service': 'packages/lifecycle/src/cli.ts',
  'context-schema': 'packages/context-schema/src/cli.ts',
  'model-fetch': 'packages/model-fetch/src/cli.ts',
  'localai-install': 'packages/localai-install/src/cli.ts',
  'nginx-config': 'packages/nginx-config/src/cli.ts',
  'report-writer': 'packages/report-writer/src/cli.ts',
};

/** appliance/ files laid out in the bundle's appliance/ (install.sh places them). */
export const APPLIANCE_FILES = [
  'appliance.sh',
  'slm-copilot-context.service',
  // a CONTEXT CD swapped on the running VM, where one-context is absent
  'slm-copilot-reconfigure.service',
  '65-slm-copilot-context.rules',
];

export interface BundleManifest {
  builtAt: string;
  nodeRuntime: { package: string; version: string; integrity: string };
  files: Record<string, string>;
}

/**
 * Lays out the directory Packer uploads into the build VM: one self-contained .mjs per task
 * (no node_modules), the Node runtime, templates, the one-apps shim and units, and the build plan.
 */
export async function bundleAppliance(
  out: string,
  plan: BuildPlan,
  log: Logger,
  opts: { cacheDir?: string } = {},
): Promise<BundleManifest> {
  // `out` may already hold the plan's mirror (test profile); what we lay out here is replaced whole
  for (const d of ['bin', 'node', 'templates', 'appliance'])
    await rm(path.join(out, d), { recursive: true, force: true });
  for (const d of ['bin', 'node/bin', 'templates', 'appliance']) await mkdir(path.join(out, d), { recursive: true });
  await log.phase('esbuild the task CLIs', async () => {
    for (const [name, entry] of Object.entries(BUNDLED_CLIS))
      await bundleCli(path.join(repoRoot, entry), path.join(out, 'bin', `${name}.mjs`));
  });
  const runtime = await log.phase('node runtime', () => ensureNodeRuntime(log, opts));
  await cp(runtime.node, path.join(out, 'node/bin/node'));
  await cp(path.join(repoRoot, 'packages/localai-install/templates'), path.join(out, 'templates'), { recursive: true });
  for (const f of APPLIANCE_FILES) await cp(path.join(repoRoot, 'appliance', f), path.join(out, 'appliance', f));
  await cp(path.join(repoRoot, 'appliance/slm-copilot-context-boot'), path.join(out, 'bin/slm-copilot-context-boot'));
  await cp(path.join(repoRoot, 'appliance/install.sh'), path.join(out, 'install.sh'));
  await writeFile(path.join(out, 'build-plan.json'), `${JSON.stringify(plan, null, 2)}\n`);

  const files: Record<string, string> = {};
  for (const rel of [
    ...Object.keys(BUNDLED_CLIS).map((n) => `bin/${n}.mjs`),
    'node/bin/node',
    'templates/devstral-chat-template.jinja',
    ...APPLIANCE_FILES.map((f) => `appliance/${f}`),
    'bin/slm-copilot-context-boot',
  ]) {
    files[rel] = await sha256File(path.join(out, rel));
  }
  const manifest: BundleManifest = {
    builtAt: new Date().toISOString(),
    nodeRuntime: { package: NODE_RUNTIME.npmPackage, version: NODE_RUNTIME.version, integrity: NODE_RUNTIME.integrity },
    files,
  };
  await writeFile(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
