/**
 * systemd sandbox directives shared by every service SLM-Copilot runs or narrows (the engine unit,
 * the nginx drop-in). Each keeps the kernel, other processes and the host's identity out of reach;
 * none of them costs a network service anything.
 */
export const SANDBOX_KERNEL_DIRECTIVES: readonly string[] = [
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'ProtectKernelTunables=yes',
  'ProtectKernelModules=yes',
  'ProtectKernelLogs=yes',
  'ProtectControlGroups=yes',
  'ProtectProc=invisible',
];

/** IP and Unix sockets only; no namespaces, realtime, set-id files, personality changes, W+X memory or leftover IPC. */
export const SANDBOX_RESTRICT_DIRECTIVES: readonly string[] = [
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
  'RestrictNamespaces=yes',
  'RestrictRealtime=yes',
  'RestrictSUIDSGID=yes',
  'LockPersonality=yes',
  'MemoryDenyWriteExecute=yes',
  'RemoveIPC=yes',
];
