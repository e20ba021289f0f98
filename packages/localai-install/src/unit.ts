import type { AppliancePaths } from '@slm-copilot/context-schema';
import { SANDBOX_KERNEL_DIRECTIVES, SANDBOX_RESTRICT_DIRECTIVES, TaskError } from '@slm-copilot/task-kit';

export const ENGINE_UNIT = 'slm-copilot-engine.service';
/**
 * The engine's dynamic user, named explicitly so that the prompt-cache unit can share it (systemd shares
 * a dynamic user between units that give the same User=); unnamed it would be the unit's name anyway.
 */
export const ENGINE_USER = 'slm-copilot-engine';

/** The sandbox every unit running as the engine's dynamic user shares (the engine and its cache unit). */
export const ENGINE_SANDBOX: readonly string[] = [
  'UMask=0077',
  'NoNewPrivileges=yes',
  'CapabilityBoundingSet=',
  'AmbientCapabilities=',
  'ProtectSystem=strict',
  'ProtectHome=yes',
  'PrivateTmp=yes',
  'PrivateDevices=yes',
  'PrivateUsers=yes',
  ...SANDBOX_KERNEL_DIRECTIVES,
];

export interface EngineUnitSpec {
  description: string;
  execStart: string[];
  environmentFile?: string;
  /** Seconds systemd waits for start-up (mapping a 14 GB model from a cold disk is slow). */
  startTimeoutSeconds: number;
  /** Directories the engine may write (everything else is read-only). */
  writablePaths?: string[];
  /** Units started with the engine (the prompt-cache unit). */
  wants?: string[];
  /** Commands run as the engine's user before it starts (each an argv of plain words). */
  execStartPre?: string[][];
  /** The state directory's mode; systemd's default (0755) when unset. */
  stateDirectoryMode?: string;
}

/** systemd's ExecStart splits on spaces and interprets quotes and specifiers: allow only plain words. */
export function execWord(word: string): string {
  if (!/^[A-Za-z0-9@%+=:,./_-]+$/.test(word) || word.includes('%')) {
    throw new TaskError(`internal: refusing to put ${JSON.stringify(word)} on a systemd ExecStart line`);
  }
  return word;
}

/**
 * One unit for whichever engine is configured, so switching engines leaves no stale unit:
 * the unit's text changes and the lifecycle restarts it.
 * Hardened: a dynamic user with no capabilities, a read-only system, loopback-only networking.
 */
export function renderEngineUnit(spec: EngineUnitSpec, paths: AppliancePaths): string {
  const lines = [
    '# Rendered by SLM-Copilot (localai-install) on every boot; edits are overwritten.',
    '[Unit]',
    `Description=${spec.description}`,
    'After=network.target',
    ...(spec.wants ?? []).map((u) => `Wants=${execWord(u)}`),
    'StartLimitIntervalSec=300',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=exec',
    ...(spec.environmentFile ? [`EnvironmentFile=${spec.environmentFile}`] : []),
    ...(spec.execStartPre ?? []).map((argv) => `ExecStartPre=${argv.map(execWord).join(' ')}`),
    `ExecStart=${spec.execStart.map(execWord).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=3',
    `TimeoutStartSec=${spec.startTimeoutSeconds}`,
    'TimeoutStopSec=30',
    // The engine locks the model in RAM (--mlock / mmlock); an unprivileged process may lock up to
    // RLIMIT_MEMLOCK, so no capability is needed. The plan already counts the model in its RAM check.
    'LimitMEMLOCK=infinity',
    `User=${ENGINE_USER}`,
    'DynamicUser=yes',
    'StateDirectory=slm-copilot-engine',
    ...(spec.stateDirectoryMode ? [`StateDirectoryMode=${execWord(spec.stateDirectoryMode)}`] : []),
    'WorkingDirectory=/var/lib/slm-copilot-engine',
    ...ENGINE_SANDBOX,
    ...SANDBOX_RESTRICT_DIRECTIVES,
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'SystemCallFilter=~@privileged',
    // The engine talks to nginx on loopback and to nothing else: no telemetry, no downloads.
    'IPAddressDeny=any',
    'IPAddressAllow=localhost',
    ...(spec.writablePaths ?? []).map((p) => `ReadWritePaths=${execWord(p)}`),
    `ReadOnlyPaths=${execWord(paths.modelsDir)}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ];
  return lines.join('\n');
}
