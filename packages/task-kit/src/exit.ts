/** Cleanups still registered; one `exit` listener runs them all, so many callers add no listener each. */
const cleanups = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // One failing cleanup (a child already gone…) must not stop the others.
    }
  }
  cleanups.clear();
}

/**
 * Runs `cleanup` when this Node process exits (so no child — QEMU, nginx, llama-server — outlives it).
 * `exit` listeners run synchronously: kill with SIGKILL, remove with rmSync. Returns an unregister
 * function to call once the resource is released normally.
 */
export function reapOnExit(cleanup: () => void): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', runAll);
  }
  const entry = () => cleanup();
  cleanups.add(entry);
  return () => {
    cleanups.delete(entry);
  };
}
