import { appliancePaths, type AppliancePaths } from '@slm-copilot/context-schema';
import type { HostFacts, Logger } from '@slm-copilot/task-kit';
import type { WatchBounds } from './engine-watch.js';
import type { ServiceControl } from './services.js';

export interface StageOptions {
  /** '' in the appliance; a temp dir in tests. */
  prefix: string;
  env: Record<string, string | undefined>;
  services: ServiceControl;
  log: Logger;
  /** Injectable for tests. */
  hostFacts?: () => Promise<HostFacts>;
  now?: () => Date;
  /** Tests run nginx with their own main config and ports; the appliance uses the system's. */
  gateway?: { testConfigCommand?: string[]; httpPort?: number; listenAddresses?: string[] };
  /** Tests: the engine's loopback port (the appliance uses 8080). */
  enginePort?: number;
  /** Tests: shorter bounds for telling a loading engine from a failed one (see WatchBounds). */
  watch?: Partial<WatchBounds>;
}

/** The appliance paths a stage works on (the prefix, and the engine port when a test moved it). */
export function stagePaths(opts: Pick<StageOptions, 'prefix' | 'enginePort'>): AppliancePaths {
  const paths = appliancePaths(opts.prefix);
  return opts.enginePort ? { ...paths, engine: { ...paths.engine, port: opts.enginePort } } : paths;
}
