/** The VM builds' cross-process lock is task-kit's flock(2) lock (released by the kernel when a holder dies). */
export { withLock as withFileLock } from '@slm-copilot/task-kit';
