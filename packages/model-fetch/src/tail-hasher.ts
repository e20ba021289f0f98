// Hashes a download while wget writes it, so that the check after the last byte costs almost nothing.
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';

const MiB = 1024 * 1024;

/**
 * Hashes a file that another process is appending to (wget -c), reading the new bytes back while
 * they are still in the page cache. If the file ever shrinks or is replaced, it reports `null` and
 * the caller hashes the finished file from scratch — it can be slower, never wrong.
 */
export class TailHasher {
  private readonly hash = createHash('sha256');
  private offset = 0;
  private broken = false;
  private stopped = false;
  private ino: number | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly file: string,
    private readonly chunkBytes = 8 * MiB,
  ) {}

  get hashedBytes(): number {
    return this.offset;
  }

  start(): this {
    this.loop = this.run();
    return this;
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    let fh: FileHandle | undefined;
    const buf = Buffer.allocUnsafe(this.chunkBytes);
    try {
      for (;;) {
        if (!fh) {
          try {
            fh = await open(this.file, 'r');
            this.ino = (await fh.stat()).ino;
          } catch {
            if (this.stopped) return;
            await this.idle(25);
            continue;
          }
        }
        const { size } = await fh.stat();
        if (size < this.offset) {
          this.broken = true;
          return;
        }
        if (size > this.offset) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - this.offset), this.offset);
          if (bytesRead === 0) {
            this.broken = true;
            return;
          }
          this.hash.update(buf.subarray(0, bytesRead));
          this.offset += bytesRead;
          continue;
        }
        if (this.stopped) return;
        await this.idle(20);
      }
    } catch {
      this.broken = true;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** Stops following, hashes what is left, and returns the digest — or null if it cannot be trusted. */
  async finish(): Promise<{ sha256: string; bytes: number } | null> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (this.broken) return null;
    try {
      const st = await stat(this.file);
      if (st.size !== this.offset || (this.ino !== undefined && st.ino !== this.ino)) return null;
    } catch {
      return null;
    }
    return { sha256: this.hash.digest('hex'), bytes: this.offset };
  }

  /** Stops without a result (the attempt failed). */
  async abandon(): Promise<void> {
    this.stopped = true;
    this.broken = true;
    this.wake?.();
    await this.loop;
  }
}

/** The streamed hash of `<dest>.partial`: one follower for as long as the file is only appended to. */
export class StreamHash {
  private hasher: TailHasher | undefined;
  constructor(
    private readonly file: string,
    readonly enabled: boolean,
  ) {}
  follow(): void {
    if (this.enabled && !this.hasher) this.hasher = new TailHasher(this.file).start();
  }
  /** Forget what was hashed: the file is about to be removed, replaced or restarted from byte 0. */
  async restart(): Promise<void> {
    await this.hasher?.abandon();
    this.hasher = undefined;
  }
  /** The digest of the finished file, or null (not streaming, or it could not follow: hash from disk). */
  async take(): Promise<{ sha256: string; bytes: number } | null> {
    const h = this.hasher;
    this.hasher = undefined;
    return h ? h.finish() : null;
  }
}
