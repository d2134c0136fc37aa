// Writes the binary inputs of test/fuzz_regressions.test.ts into test/fixtures/fuzz/ (gzipped: the
// hostile pickles are long runs of one byte). Each is the minimal form of a fuzz finding.
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { fileURLToPath } from "url";
import { makeZip } from "./gen.mjs";

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test/fixtures/fuzz");
fs.mkdirSync(OUT, { recursive: true });
const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32LE(v); return b; };
const str = (s) => Buffer.concat([Buffer.from([0x58]), (() => { const b = Buffer.alloc(4); b.writeUInt32LE(Buffer.byteLength(s)); return b; })(), Buffer.from(s)]);
const glob = (m, n) => Buffer.from(`c${m}\n${n}\n`);
const bin = (pkl, records = []) => makeZip([{ name: "archive/data.pkl", data: pkl }, ...records.map(([k, d]) => ({ name: `archive/data/${k}`, data: d }))]);
const write = (name, bytes) => fs.writeFileSync(path.join(OUT, `${name}.gz`), zlib.gzipSync(bytes, { level: 9 }));

// LONG4 of 300 000 bytes: built into a BigInt byte by byte, quadratic (seconds); now refused at byte 9.
write("long4_huge.bin", bin(Buffer.concat([Buffer.from([0x80, 2, 0x8b]), i32(300_000), Buffer.alloc(300_000, 0x7f), Buffer.from([0x2e])])));
// APPENDS of 150 000 items: list.push(...items) overflowed the call stack (RangeError).
write("appends_long.bin", bin(Buffer.concat([Buffer.from([0x80, 2, 0x5d, 0x28]), Buffer.alloc(150_000, 0x4e), Buffer.from([0x65, 0x2e])])));
// A tensor of size [100000000] with stride [0] over a 1-element storage: a 400 MB copy from a 400-byte file.
const int = (v) => Buffer.concat([Buffer.from([0x4a]), i32(v)]);
const tuple = (xs) => Buffer.concat([Buffer.from([0x28]), ...xs.map(int), Buffer.from([0x74])]);
write("stride0_view.bin", bin(Buffer.concat([
  Buffer.from([0x80, 2, 0x7d]), str("w"),
  glob("torch._utils", "_rebuild_tensor_v2"), Buffer.from([0x28]),
  Buffer.from([0x28]), str("storage"), glob("torch", "FloatStorage"), str("0"), str("cpu"), int(1), Buffer.from([0x74, 0x51]),
  int(0), tuple([100_000_000]), tuple([0]), Buffer.from([0x89]), glob("collections", "OrderedDict"), Buffer.from([0x29, 0x52]),
  Buffer.from([0x74, 0x52, 0x73, 0x2e]),
]), [["0", Buffer.alloc(4)]]));
// A deflate entry whose directory claims 100 MB from 8 compressed bytes (a zip bomb's shape).
write("zip_bomb.bin", makeZip([{ name: "archive/data.pkl", data: Buffer.from([0x80, 2, 0x7d, 0x2e]), method: 8, claimSize: 100_000_000 }]));
console.log(fs.readdirSync(OUT).map((f) => `${f} ${fs.statSync(path.join(OUT, f)).size}`).join("\n"));
