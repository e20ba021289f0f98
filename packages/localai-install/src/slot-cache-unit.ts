import type { AppliancePaths } from '@slm-copilot/context-schema';
import { underRoot } from '@slm-copilot/task-kit';
import type { EnginePlan } from './plan.js';
import { slotCacheDir } from './slot-cache.js';
import { ENGINE_SANDBOX, ENGINE_UNIT, ENGINE_USER, execWord } from './unit.js';

/** Restores the saved slots once the engine is ready; saves them before the engine stops. */
export const SLOT_CACHE_UNIT = 'slm-copilot-engine-cache.service';

/** The image's Node runtime and lifecycle bundle (appliance/install.sh puts them there). */
const NODE = '/opt/slm-copilot/node/bin/node';
const LIFECYCLE_CLI = '/opt/slm-copilot/bin/slm-copilot-service.mjs';

/**
 * Disk speed the stop and start bounds assume for the saved files: each save is fsynced before it
 * replaces the previous file (a file renamed before its data reached the disk could be restored as
 * zeros after a power loss), so the disk, not the page cache, sets the pace. 100 MB/s is a slow cloud
 * volume; measured here, the engine wrote 329 MB (8 k tokens of a Devstral-shaped model) in 0.56 s
 * into the page cache.
 */
export const ASSUMED_DISK_BYTES_PER_SECOND = 100e6;
/** Node's start, the engine's answer and the directory sync, besides the data itself. */
const MARGIN_SECONDS = 30;

export interface SlotCacheTimeouts {
  /** The save at stop: every slot's file at its largest, at the assumed disk speed. */
  stopSeconds: number;
  /** The wait for the engine (its own start bound) and the restore, read at the same speed. */
  startSeconds: number;
  /** How long the restore command waits for the engine's /health before it gives up (exit 0). */
  readySeconds: number;
}

export function slotCacheTimeouts(plan: EnginePlan, engineStartSeconds: number): SlotCacheTimeouts {
  const transfer = Math.ceil(plan.slotState.diskBytes / ASSUMED_DISK_BYTES_PER_SECOND);
  return {
    stopSeconds: transfer + MARGIN_SECONDS,
    startSeconds: engineStartSeconds + transfer + MARGIN_SECONDS,
    readySeconds: engineStartSeconds,
  };
}

export interface SlotCacheUnitSpec {
  id: string;
  plan: EnginePlan;
  paths: AppliancePaths;
  engineStartSeconds: number;
}

/**
 * A companion of the engine unit (which Wants= it): started after the engine, it waits until the
 * engine answers and restores the saved slots; stopped before the engine (After= reversed, and
 * BindsTo= so an engine stop or crash stops it too), it saves them while the engine still runs.
 * A oneshot that stays active in between (RemainAfterExit), so its ExecStop runs at every engine stop.
 * It runs as the engine's own dynamic user (the files are the engine's) with the engine's sandbox,
 * except MemoryDenyWriteExecute: Node's JIT needs writable code pages.
 */
export function renderSlotCacheUnit(spec: SlotCacheUnitSpec): string {
  const { paths } = spec;
  const run = (action: string, extra: string[]) =>
    [
      underRoot(paths.prefix || '/', NODE),
      underRoot(paths.prefix || '/', LIFECYCLE_CLI),
      'cache',
      action,
      '--dir',
      slotCacheDir(paths, spec.id),
      '--engine',
      `http://${paths.engine.host}:${paths.engine.port}`,
      ...extra,
    ]
      .map(execWord)
      .join(' ');
  const t = slotCacheTimeouts(spec.plan, spec.engineStartSeconds);
  const lines = [
    '# Rendered by SLM-Copilot (localai-install) on every boot; edits are overwritten.',
    '[Unit]',
    "Description=SLM-Copilot engine's prompt cache across restarts (restore at start, save before stop)",
    `BindsTo=${ENGINE_UNIT}`,
    `After=${ENGINE_UNIT}`,
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=${run('restore', ['--ready-timeout', String(t.readySeconds)])}`,
    `ExecStop=${run('save', ['--max-file-bytes', String(spec.plan.slotState.fileMaxBytes)])}`,
    `TimeoutStartSec=${t.startSeconds}`,
    `TimeoutStopSec=${t.stopSeconds}`,
    `User=${ENGINE_USER}`,
    'DynamicUser=yes',
    'StateDirectory=slm-copilot-engine',
    'StateDirectoryMode=0700',
    ...ENGINE_SANDBOX,
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RemoveIPC=yes',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'SystemCallFilter=~@privileged',
    // a call outside the filter fails (EPERM) instead of killing Node (libuv probes io_uring and falls back)
    'SystemCallErrorNumber=EPERM',
    'IPAddressDeny=any',
    'IPAddressAllow=localhost',
    '',
  ];
  return lines.join('\n');
}
