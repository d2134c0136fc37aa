// Whole-file reads and crash-safe writes. Every checkpoint/config writer goes through writeFileAtomic*:
// the bytes go to a temporary name in the target's directory, are fsynced, renamed over the target, and
// the directory is fsynced, so a crash leaves either the old file or the new one, never half of one.
import * as fs from "fs";
import * as path from "path";
import * as crypto from "crypto";
import { constants as bufferConstants } from "buffer";
import { CheckpointError } from "../errors";

export type Chunks = Uint8Array | readonly Uint8Array[];
const asList = (c: Chunks): readonly Uint8Array[] => (c instanceof Uint8Array ? [c] : c);

function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`);
}

// Directory fsync makes the rename durable; platforms that cannot open a directory (Windows) skip it.
function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (e) {
    if (!isDirSyncUnsupported(e)) throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
const isDirSyncUnsupported = (e: unknown) => ["EISDIR", "EINVAL", "EPERM", "EACCES"].includes((e as NodeJS.ErrnoException).code ?? "");

function wrap(target: string, e: unknown): CheckpointError {
  if (e instanceof CheckpointError) return e;
  return new CheckpointError(`cannot write ${target}: ${(e as Error).message}`, { cause: e });
}

/** Writes `chunks` to `target` atomically (temp file, fsync, rename, fsync directory). */
export function writeFileAtomicSync(target: string, chunks: Chunks): void {
  const tmp = tempName(path.resolve(target));
  try {
    const fd = fs.openSync(tmp, "wx", 0o666);
    try {
      for (const c of asList(chunks)) {
        let off = 0;
        while (off < c.byteLength) off += fs.writeSync(fd, c, off, c.byteLength - off);
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw wrap(target, e);
  }
  try {
    fsyncDirSync(path.dirname(path.resolve(target)));
  } catch (e) {
    throw wrap(target, e);
  }
}

/** Promise version of writeFileAtomicSync: the same steps without blocking the event loop. */
export async function writeFileAtomic(target: string, chunks: Chunks): Promise<void> {
  const tmp = tempName(path.resolve(target));
  try {
    const fh = await fs.promises.open(tmp, "wx", 0o666);
    try {
      for (const c of asList(chunks)) {
        let off = 0;
        while (off < c.byteLength) off += (await fh.write(c, off, c.byteLength - off)).bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, target);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw wrap(target, e);
  }
  try {
    const dh = await fs.promises.open(path.dirname(path.resolve(target)), "r").catch((e) => {
      if (isDirSyncUnsupported(e)) return null;
      throw e;
    });
    if (dh) {
      try {
        await dh.sync().catch((e) => { if (!isDirSyncUnsupported(e)) throw e; });
      } finally {
        await dh.close();
      }
    }
  } catch (e) {
    throw wrap(target, e);
  }
}

const readError = (file: string, e: unknown) =>
  e instanceof CheckpointError ? e : new CheckpointError(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
const READ_CHUNK = 1 << 30;

function allocFor(file: string, size: number): Buffer {
  if (size > bufferConstants.MAX_LENGTH) throw new CheckpointError(`${file}: ${size} bytes is larger than this Node.js can hold in one buffer`);
  return Buffer.allocUnsafeSlow(size);
}

/**
 * Reads a whole file into one Buffer that owns its memory (byteOffset 0, so typed views are aligned),
 * in chunks so files over 2 GiB work where fs.readFileSync refuses them.
 */
export function readFileWhole(file: string): Buffer {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "r");
    const size = fs.fstatSync(fd).size;
    const buf = allocFor(file, size);
    for (let off = 0; off < size; ) {
      const n = fs.readSync(fd, buf, off, Math.min(size - off, READ_CHUNK), off);
      if (n === 0) throw new CheckpointError(`${file}: file shrank while being read (${off} of ${size} bytes)`);
      off += n;
    }
    return buf;
  } catch (e) {
    throw readError(file, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** readFileWhole without blocking the event loop. */
export async function readFileWholeAsync(file: string): Promise<Buffer> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(file, "r");
    const size = (await fh.stat()).size;
    const buf = allocFor(file, size);
    for (let off = 0; off < size; ) {
      const { bytesRead } = await fh.read(buf, off, Math.min(size - off, READ_CHUNK), off);
      if (bytesRead === 0) throw new CheckpointError(`${file}: file shrank while being read (${off} of ${size} bytes)`);
      off += bytesRead;
    }
    return buf;
  } catch (e) {
    throw readError(file, e);
  } finally {
    await fh?.close();
  }
}
