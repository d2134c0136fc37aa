// A ZIP reader for torch.save archives: end-of-central-directory (with ZIP64), the central directory,
// local headers; STORED entries are returned as views of the archive bytes (torch.save never
// compresses), DEFLATE entries are inflated with node:zlib. Every offset and size is bounds-checked.
import * as zlib from "zlib";
import { CheckpointError } from "../errors";

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the entry's data in the archive. */
  dataOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
/** Deflate's largest possible expansion is 1032:1; torch.save never compresses, so deflate entries are small. */
const MAX_INFLATE_RATIO = 1032;
const MAX_INFLATED_BYTES = 2 ** 31 - 1;

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly dv: DataView;

  /** Parses the directory of the archive held in `bytes`; `source` names it in errors. */
  constructor(readonly bytes: Uint8Array, readonly source: string) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.readDirectory();
  }

  private fail(msg: string): CheckpointError {
    return new CheckpointError(`${this.source}: ${msg}`);
  }

  private u16 = (at: number) => this.dv.getUint16(at, true);
  private u32 = (at: number) => this.dv.getUint32(at, true);
  private u64(at: number): number {
    const v = this.dv.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(`bad zip: 64-bit field at byte ${at} is too large (${v})`);
    return Number(v);
  }

  private readDirectory(): void {
    const len = this.bytes.length;
    // The EOCD record (22 bytes + a comment of up to 65535) is the last thing in the file.
    let eocd = -1;
    for (let at = len - 22; at >= Math.max(0, len - 22 - 0xffff); at--) {
      if (this.u32(at) === SIG_EOCD && at + 22 + this.u16(at + 20) === len) { eocd = at; break; }
    }
    if (eocd < 0) throw this.fail("not a zip archive (no end-of-central-directory record; truncated?)");
    if (this.u16(eocd + 4) !== 0 || this.u16(eocd + 6) !== 0) throw this.fail("bad zip: multi-disk archives are not supported");
    let count = this.u16(eocd + 10);
    let cdSize = this.u32(eocd + 12);
    let cdOffset = this.u32(eocd + 16);
    let cdLimit = eocd;
    if (eocd >= 20 && this.u32(eocd - 20) === SIG_ZIP64_LOCATOR) {
      const rec = this.u64(eocd - 20 + 8);
      if (rec + 56 > eocd - 20 || this.u32(rec) !== SIG_ZIP64_EOCD) throw this.fail(`bad zip: ZIP64 end-of-central-directory record expected at byte ${rec}`);
      count = this.u64(rec + 32);
      cdSize = this.u64(rec + 40);
      cdOffset = this.u64(rec + 48);
      cdLimit = rec;
    }
    if (cdOffset + cdSize > cdLimit) throw this.fail(`bad central directory: offset ${cdOffset} + size ${cdSize} runs past its end at byte ${cdLimit}`);

    let at = cdOffset;
    const end = cdOffset + cdSize;
    for (let i = 0; i < count; i++) {
      if (at + 46 > end) throw this.fail(`bad central directory: entry ${i} of ${count} runs past its end`);
      if (this.u32(at) !== SIG_CENTRAL) throw this.fail(`bad central directory: entry ${i} at byte ${at} has no central-header signature`);
      const flags = this.u16(at + 8);
      const method = this.u16(at + 10);
      const crc32 = this.u32(at + 16);
      let compressedSize = this.u32(at + 20);
      let size = this.u32(at + 24);
      const nameLen = this.u16(at + 28), extraLen = this.u16(at + 30), commentLen = this.u16(at + 32);
      let localOffset = this.u32(at + 42);
      const next = at + 46 + nameLen + extraLen + commentLen;
      if (next > end) throw this.fail(`bad central directory: entry ${i} runs past its end`);
      const name = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + at + 46, nameLen).toString("utf8");
      // ZIP64 extended information: the 64-bit values of the fields saturated at 0xffffffff, in this order.
      for (let x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen; ) {
        const id = this.u16(x), sz = this.u16(x + 2);
        if (x + 4 + sz > at + 46 + nameLen + extraLen) throw this.fail(`bad central directory: extra field of '${name}' runs past its end`);
        if (id === 0x0001) {
          let p = x + 4;
          const take = () => {
            if (p + 8 > x + 4 + sz) throw this.fail(`bad central directory: ZIP64 field of '${name}' is too short`);
            const v = this.u64(p);
            p += 8;
            return v;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localOffset === 0xffffffff) localOffset = take();
        }
        x += 4 + sz;
      }
      if (flags & 1) throw this.fail(`zip entry '${name}' is encrypted`);
      if (this.entries.has(name)) throw this.fail(`bad central directory: duplicate entry '${name}'`);
      if (localOffset + 30 > cdOffset || this.u32(localOffset) !== SIG_LOCAL) throw this.fail(`bad zip: local header of '${name}' expected at byte ${localOffset}`);
      const dataOffset = localOffset + 30 + this.u16(localOffset + 26) + this.u16(localOffset + 28);
      if (dataOffset + compressedSize > cdOffset) throw this.fail(`bad zip: data of '${name}' (${compressedSize} bytes at ${dataOffset}) runs into the central directory`);
      this.entries.set(name, { name, method, compressedSize, size, crc32, dataOffset });
      at = next;
    }
  }

  /** The bytes of entry `name`: a view for stored entries, inflated memory for deflate ones. */
  read(name: string, options: { verifyCrc?: boolean } = {}): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw this.fail(`zip entry '${name}' is missing`);
    const raw = this.bytes.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
    let data: Uint8Array;
    if (e.method === 0) {
      if (e.size !== e.compressedSize) throw this.fail(`bad zip: stored entry '${name}' has size ${e.size} but ${e.compressedSize} stored bytes`);
      data = raw;
    } else if (e.method === 8) {
      // Deflate expands at most 1032:1, so a directory size past that is a lie (a zip bomb), refused before inflating.
      if (e.size > MAX_INFLATE_RATIO * e.compressedSize + 1024 || e.size > MAX_INFLATED_BYTES) {
        throw this.fail(`zip entry '${name}' claims ${e.size} bytes from ${e.compressedSize} compressed; expected at most ` +
          `${MAX_INFLATE_RATIO}:1 and ${MAX_INFLATED_BYTES} bytes (a zip bomb?)`);
      }
      try {
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(e.size, 1) });
      } catch (err) {
        throw this.fail(`zip entry '${name}' does not inflate: ${(err as Error).message}`);
      }
      if (data.length !== e.size) throw this.fail(`zip entry '${name}' inflates to ${data.length} bytes, the directory says ${e.size}`);
    } else {
      throw this.fail(`zip entry '${name}' uses compression method ${e.method}; only stored (0) and deflate (8) are supported`);
    }
    if (options.verifyCrc) {
      const crc = crc32(data);
      if (crc !== e.crc32) throw this.fail(`zip entry '${name}' is corrupt: CRC-32 ${hex(crc)}, the directory says ${hex(e.crc32)}`);
    }
    return data;
  }
}

let crcTable: Uint32Array | null = null;
/** CRC-32 (zip polynomial): node:zlib's when this Node has it (20.15+), else a table-driven loop. */
function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, "0")}`;
