import path from 'node:path';
import { TaskError } from './errors.js';

/** Maps an appliance path (`/etc/nginx/…`) under a root prefix (`/tmp/x` in tests, `/` in the VM). */
export function underRoot(root: string, appliancePath: string): string {
  if (!path.isAbsolute(appliancePath)) {
    throw new TaskError(`internal: file path must be absolute, got "${appliancePath}"`);
  }
  return path.join(root, appliancePath);
}

/** The root prefix from `--root`, else SLM_COPILOT_ROOT, else `/`. */
export function resolveRoot(flag?: string): string {
  return path.resolve(flag ?? process.env.SLM_COPILOT_ROOT ?? '/');
}
