// Test support: a temp root laid out like the image after the install stage (nginx main config,
// the tiny model with its manifest, installed.json), to run the lifecycle's configure on.
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths } from '@slm-copilot/context-schema';
import { stateFiles, type StageOptions } from '@slm-copilot/lifecycle';
import { RecordingServices, testHost } from '@slm-copilot/lifecycle/test-support/doubles';
import { buildManifest, writeManifest } from '@slm-copilot/model-fetch';
import { mainConf, NGINX, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';

export { RecordingServices, testHost } from '@slm-copilot/lifecycle/test-support/doubles';

export interface Appliance {
  root: string;
  /** The model file as the appliance has it (a copy when `copyModel`, else a symlink to the cache). */
  modelFile: string;
  services: RecordingServices;
  options(env: Record<string, string>): StageOptions;
}

export async function appliance(
  tag: string,
  model: { path: string; sha256: string },
  opts: { copyModel?: boolean } = {},
): Promise<Appliance> {
  const root = await tempRoot(`hardening-${tag}`);
  const paths = appliancePaths(root);
  await mkdir(path.join(root, 'etc/nginx/conf.d'), { recursive: true });
  const conf = path.join(root, 'etc/nginx/nginx.conf');
  await writeFile(conf, mainConf(root, paths));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    await mkdir(path.join(root, 'run/nginx', d), { recursive: true });
  await mkdir(paths.modelsDir, { recursive: true });
  const modelFile = path.join(paths.modelsDir, 'tiny.gguf');
  if (opts.copyModel) await copyFile(model.path, modelFile);
  else await symlink(model.path, modelFile);
  await writeManifest(modelFile, await buildManifest(modelFile, { sha256: model.sha256 }));
  await mkdir(paths.configDir, { recursive: true });
  await writeFile(
    stateFiles(paths).installed,
    JSON.stringify({
      engineDefault: 'llama-server',
      model: { file: 'tiny.gguf', sha256: model.sha256, source: null },
      localai: { version: '4.9.0', sha256: 'x' },
      llamaServer: { sha256: 'x', source: 'test' },
      builtAt: '2026-11-28T00:00:00Z',
    }),
  );
  const services = new RecordingServices();
  return {
    root,
    modelFile,
    services,
    options: (env) => ({
      prefix: root,
      env,
      services,
      log: quietLog,
      hostFacts: async () => testHost,
      now: () => new Date('2026-11-28T00:00:00Z'),
      gateway: { testConfigCommand: [NGINX, '-t', '-q', '-c', conf], httpPort: 9080 },
    }),
  };
}
