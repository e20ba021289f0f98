import { open, type FileHandle } from 'node:fs/promises';

/** A GGUF metadata value. Long arrays are summarised unless asked for (see {@link readGgufMetadata}). */
export type GgufValue = number | bigint | boolean | string | GgufValue[] | { arrayType: number; length: number };

export interface GgufHeader {
  version: number;
  tensorCount: bigint;
  metadata: Record<string, GgufValue>;
}

const T = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  U64: 10,
  I64: 11,
  F64: 12,
} as const;

class Reader {
  private buf = Buffer.alloc(0);
  private pos = 0; // position in buf
  private filePos = 0; // file offset of buf[0]
  constructor(private fh: FileHandle) {}
  private async need(n: number): Promise<void> {
    if (this.buf.length - this.pos >= n) return;
    const rest = this.buf.subarray(this.pos);
    const want = Math.max(n - rest.length, 1 << 20);
    const chunk = Buffer.alloc(want);
    const { bytesRead } = await this.fh.read(chunk, 0, want, this.filePos + this.buf.length);
    if (rest.length + bytesRead < n) throw new Error('unexpected end of GGUF file');
    this.filePos += this.pos;
    this.buf = Buffer.concat([rest, chunk.subarray(0, bytesRead)]);
    this.pos = 0;
  }
  async u32(): Promise<number> {
    await this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  async u64(): Promise<bigint> {
    await this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  async bytes(n: number): Promise<Buffer> {
    await this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  async string(): Promise<string> {
    const n = Number(await this.u64());
    return (await this.bytes(n)).toString('utf8');
  }
  async scalar(type: number): Promise<GgufValue> {
    switch (type) {
      case T.U8:
        return (await this.bytes(1)).readUInt8(0);
      case T.I8:
        return (await this.bytes(1)).readInt8(0);
      case T.U16:
        return (await this.bytes(2)).readUInt16LE(0);
      case T.I16:
        return (await this.bytes(2)).readInt16LE(0);
      case T.U32:
        return (await this.bytes(4)).readUInt32LE(0);
      case T.I32:
        return (await this.bytes(4)).readInt32LE(0);
      case T.F32:
        return (await this.bytes(4)).readFloatLE(0);
      case T.BOOL:
        return (await this.bytes(1)).readUInt8(0) !== 0;
      case T.STRING:
        return this.string();
      case T.U64:
        return (await this.bytes(8)).readBigUInt64LE(0);
      case T.I64:
        return (await this.bytes(8)).readBigInt64LE(0);
      case T.F64:
        return (await this.bytes(8)).readDoubleLE(0);
      default:
        throw new Error(`unknown GGUF value type ${type}`);
    }
  }
}

/**
 * Reads the metadata key/values of a GGUF file (little-endian, version 2 or 3) without
 * loading the tensors. Arrays longer than `maxArrayLength` (default 64; e.g. the token
 * list) are returned as `{ arrayType, length }`.
 */
export async function readGgufMetadata(path: string, opts: { maxArrayLength?: number } = {}): Promise<GgufHeader> {
  const maxArray = opts.maxArrayLength ?? 64;
  const fh = await open(path, 'r');
  try {
    const r = new Reader(fh);
    const magic = (await r.bytes(4)).toString('latin1');
    if (magic !== 'GGUF') throw new Error(`${path}: not a GGUF file (magic ${JSON.stringify(magic)})`);
    const version = await r.u32();
    if (version < 2) throw new Error(`${path}: GGUF version ${version} not supported`);
    const tensorCount = await r.u64();
    const kvCount = Number(await r.u64());
    const metadata: Record<string, GgufValue> = {};
    for (let i = 0; i < kvCount; i++) {
      const key = await r.string();
      const type = await r.u32();
      if (type === T.ARRAY) {
        const arrayType = await r.u32();
        const length = Number(await r.u64());
        const keep = length <= maxArray;
        const values: GgufValue[] = [];
        for (let j = 0; j < length; j++) {
          const v = await r.scalar(arrayType);
          if (keep) values.push(v);
        }
        metadata[key] = keep ? values : { arrayType, length };
      } else {
        metadata[key] = await r.scalar(type);
      }
    }
    return { version, tensorCount, metadata };
  } finally {
    await fh.close();
  }
}

/** `<arch>.context_length` of a GGUF file (the trained context). */
export async function ggufContextLength(path: string): Promise<number> {
  const { metadata } = await readGgufMetadata(path, { maxArrayLength: 0 });
  const arch = metadata['general.architecture'];
  const v = metadata[`${String(arch)}.context_length`];
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`${path}: no ${String(arch)}.context_length`);
  return Number(v);
}
