// safetensors reader/writer, dtype conversions and atomic writes: against the reference Rust
// serializer's own test vectors, PyTorch goldens (test/fixtures/golden_io.py), round trips, and one
// test per malformed-file rule with its exact message.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CheckpointError } from "../lib/errors";
import {
  StateTensor, decodeTensorData, encodeSafetensors, encodeTensorData, f32ToBf16Bits, f32ToF16Bits,
  parseSafetensors, readSafetensors, saveSafetensors, saveSafetensorsAsync, writeFileAtomic, writeFileAtomicSync,
} from "../lib/io";
import * as crypto from "crypto";

const FIX = path.join(__dirname, "fixtures");
const golden = JSON.parse(fs.readFileSync(path.join(FIX, "io.json"), "utf8"));
type Vals = { dtype: string; shape: number[]; values: number[] };

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const concat = (chunks: Uint8Array[]) => new Uint8Array(Buffer.concat(chunks));
let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-io-")); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A safetensors file from a header object and a data section of `dataLen` bytes (or given bytes). */
function build(header: unknown, data: number | Uint8Array = 0): Uint8Array {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return new Uint8Array(Buffer.concat([len, h, typeof data === "number" ? Buffer.alloc(data) : data]));
}
const f32 = (shape: number[], values: number[]): StateTensor => ({ dtype: "F32", shape, data: Float32Array.from(values) });

describe("safetensors writer matches the reference Rust serializer byte for byte", () => {
  // The expected bytes are the test vectors of safetensors/src/tensor.rs (test_serialization, ...).
  test("one F32 tensor [1,2,3]", () => {
    const out = concat(encodeSafetensors({ "attn.0": f32([1, 2, 3], [0, 1, 2, 3, 4, 5]) }, null));
    expect([...out]).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70,
      51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111,
      102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0,
      0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });
  test("header padded with spaces to a multiple of 8", () => {
    const out = concat(encodeSafetensors({ attn0: f32([1, 1, 2, 3], [0, 1, 2, 3, 4, 5]) }, null));
    expect(out.length).toBe(8 + 72 + 24);
    expect(Buffer.from(out.subarray(8, 80)).toString()).toBe('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
  });
  test("empty, with and without metadata", () => {
    expect([...concat(encodeSafetensors({}, null))]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const out = concat(encodeSafetensors({}, { framework: "pt" }));
    expect(out[0]).toBe(40);
    expect(Buffer.from(out.subarray(8)).toString()).toBe('{"__metadata__":{"framework":"pt"}}     ');
  });
  test("tensors ordered by dtype alignment (largest first), then name; F32 data is not copied", () => {
    const w = f32([2], [1, 2]);
    const chunks = encodeSafetensors({ b: w, a: f32([1], [3]), ids: { dtype: "I64", shape: [2], data: Int32Array.from([5, -6]) }, m: { dtype: "U8", shape: [1], data: Int32Array.from([7]) } });
    const header = JSON.parse(Buffer.from(chunks[1]).toString());
    expect(Object.keys(header)).toEqual(["__metadata__", "ids", "a", "b", "m"]);
    expect(header.__metadata__).toEqual({ format: "pt" });
    expect(header.ids).toEqual({ dtype: "I64", shape: [2], data_offsets: [0, 16] });
    expect(header.m.data_offsets).toEqual([28, 29]);
    expect(chunks[4].buffer).toBe(w.data.buffer); // "b" is written straight from its Float32Array
  });
});

describe("safetensors reader", () => {
  test("a hand-written mixed-dtype file decodes to PyTorch's values", () => {
    const file = readSafetensors(path.join(FIX, "io", "mixed.safetensors"));
    expect(file.metadata).toEqual({ format: "pt", note: "golden" });
    const want = golden.fixtures["mixed.safetensors"] as Record<string, Vals>;
    expect([...file.tensors.keys()].sort()).toEqual(Object.keys(want).sort());
    for (const [name, w] of Object.entries(want)) {
      const t = file.tensors.get(name)!;
      expect([name, t.dtype, t.shape]).toEqual([name, w.dtype, w.shape]);
      if (t.data instanceof Float32Array) expect(bits(t.data)).toEqual(bits(Float32Array.from(w.values)));
      else expect([...t.data]).toEqual(w.values);
    }
  });

  test("F32 tensors are views of the one file buffer; an unaligned buffer is decoded through one copy", () => {
    const bytes = concat(encodeSafetensors({ a: f32([3], [1, 2, 3]), b: f32([2], [4, 5]) }));
    const aligned = parseSafetensors(bytes).tensors;
    expect(aligned.get("a")!.data.buffer).toBe(bytes.buffer);
    expect(aligned.get("b")!.data.buffer).toBe(bytes.buffer);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const t = parseSafetensors(shifted.subarray(1)).tensors;
    expect([...t.get("a")!.data, ...t.get("b")!.data]).toEqual([1, 2, 3, 4, 5]);
    expect(t.get("a")!.data.buffer).not.toBe(shifted.buffer);
  });

  test("accepts any entry order, scalars and zero-size tensors", () => {
    const bytes = build({ z: { dtype: "F32", shape: [0, 5], data_offsets: [8, 8] }, s: { dtype: "F32", shape: [], data_offsets: [4, 8] }, a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(new Float32Array([7, 9]).buffer));
    const t = parseSafetensors(bytes).tensors;
    expect([t.get("a")!.data[0], t.get("s")!.data[0], t.get("z")!.data.length]).toEqual([7, 9, 0]);
    expect(parseSafetensors(bytes).metadata).toBeNull();
  });
});

describe("float conversions match PyTorch", () => {
  const c = golden.conversions as { f32_bits: number[]; f16_bits: number[]; bf16_bits: number[]; f16_table_sha256: string };
  const x = new Float32Array(new Uint32Array(c.f32_bits).buffer);

  test(`float32 → F16 and BF16, round to nearest even (${c.f32_bits.length} values incl. ties, subnormals, overflow)`, () => {
    const f16 = Array.from(x, f32ToF16Bits), bf16 = Array.from(x, f32ToBf16Bits);
    expect(f16).toEqual(c.f16_bits);
    expect(bf16).toEqual(c.bf16_bits);
    const t: StateTensor = { dtype: "F32", shape: [x.length], data: x };
    expect([...new Uint16Array(encodeTensorData(t, "F16", "t").slice().buffer)]).toEqual(c.f16_bits);
    expect([...new Uint16Array(encodeTensorData(t, "BF16", "t").slice().buffer)]).toEqual(c.bf16_bits);
  });

  test("all 65536 F16 values decode as PyTorch decodes them", () => {
    const all = new Uint8Array(new Uint16Array(65536).map((_, i) => i).buffer);
    const out = decodeTensorData("F16", all, 0, 65536, "t") as Float32Array;
    const b = bits(out).slice();
    for (let i = 0; i < b.length; i++) if (Number.isNaN(out[i])) b[i] = 0x7fc00000;
    expect(crypto.createHash("sha256").update(b).digest("hex")).toBe(c.f16_table_sha256);
  });

  test("NaN and infinities survive F16/BF16", () => {
    const t: StateTensor = { dtype: "F32", shape: [4], data: Float32Array.from([NaN, -NaN, Infinity, -Infinity]) };
    for (const dt of ["F16", "BF16"] as const) {
      const back = parseSafetensors(concat(encodeSafetensors({ t }, null, { dtype: dt }))).tensors.get("t")!.data;
      expect(Number.isNaN(back[0]) && Number.isNaN(back[1])).toBe(true);
      expect([back[2], back[3]]).toEqual([Infinity, -Infinity]);
    }
    expect(f32ToF16Bits(NaN)).toBe(0x7e00);
    expect(f32ToBf16Bits(NaN)).toBe(0x7fc0);
  });
});

describe("write → read round trips are bit-exact", () => {
  const n = 4099;
  const rand = new Float32Array(n);
  for (let i = 0, s = 12345; i < n; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; rand[i] = ((s / 2 ** 32) - 0.5) * 2 ** ((i % 40) - 20); }
  rand.set([0, -0, Infinity, -Infinity, 3.4028234663852886e38, 1e-45, -1e-40, 65504]);

  test("F32", () => {
    const file = path.join(tmp, "f32.safetensors");
    saveSafetensors(file, new Map([["w", { dtype: "F32", shape: [n], data: rand }]]));
    const back = readSafetensors(file);
    expect(back.metadata).toEqual({ format: "pt" });
    expect(bits(back.tensors.get("w")!.data as Float32Array)).toEqual(bits(rand));
  });

  for (const dt of ["F16", "BF16"] as const) {
    test(`${dt}: data from ${dt} writes back to identical bytes, and any float32 is rounded as PyTorch rounds`, () => {
      const file = path.join(tmp, `${dt}.safetensors`);
      saveSafetensors(file, { w: { dtype: "F32", shape: [n], data: rand } }, { note: "x" }, { dtype: dt });
      const first = fs.readFileSync(file);
      const back = readSafetensors(file);
      expect(back.metadata).toEqual({ format: "pt", note: "x" });
      const t = back.tensors.get("w")!;
      expect(t.dtype).toBe(dt);
      const round = dt === "F16" ? f32ToF16Bits : f32ToBf16Bits;
      expect([...new Uint16Array(first.buffer, first.byteOffset + first.length - 2 * n, n)]).toEqual(Array.from(rand, round));
      saveSafetensors(file, back.tensors, { note: "x" }, { dtype: dt });
      expect(fs.readFileSync(file).equals(first)).toBe(true);
    });
  }

  test("integer dtypes keep their type and values", () => {
    const ints: Record<string, StateTensor> = {
      i64: { dtype: "I64", shape: [3], data: Int32Array.from([-(2 ** 31), -1, 2 ** 31 - 1]) },
      i32: { dtype: "I32", shape: [2], data: Int32Array.from([-5, 6]) },
      i16: { dtype: "I16", shape: [2], data: Int32Array.from([-32768, 32767]) },
      i8: { dtype: "I8", shape: [2], data: Int32Array.from([-128, 127]) },
      u8: { dtype: "U8", shape: [2, 1], data: Int32Array.from([0, 255]) },
      u16: { dtype: "U16", shape: [1], data: Int32Array.from([65535]) },
      bool: { dtype: "BOOL", shape: [3], data: Int32Array.from([1, 0, 1]) },
    };
    const back = parseSafetensors(concat(encodeSafetensors(ints))).tensors;
    for (const [k, t] of Object.entries(ints)) expect(back.get(k)).toEqual(t);
  });

  test("async save writes the same bytes", async () => {
    const a = path.join(tmp, "sync.safetensors"), b = path.join(tmp, "async.safetensors");
    const tensors = { w: { dtype: "F32" as const, shape: [n], data: rand } };
    saveSafetensors(a, tensors, {}, { dtype: "BF16" });
    await saveSafetensorsAsync(b, tensors, {}, { dtype: "BF16" });
    expect(fs.readFileSync(a).equals(fs.readFileSync(b))).toBe(true);
  });
});

describe("atomic writes", () => {
  const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"));

  test("replace the target and leave no temporary file", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "atomic-"));
    const file = path.join(dir, "x.bin");
    writeFileAtomicSync(file, Buffer.from("old"));
    writeFileAtomicSync(file, [Buffer.from("ne"), Buffer.from("w")]);
    expect(fs.readFileSync(file, "utf8")).toBe("new");
    await writeFileAtomic(file, [Buffer.from("async"), new Uint8Array(0)]);
    expect(fs.readFileSync(file, "utf8")).toBe("async");
    expect(fs.readdirSync(dir)).toEqual(["x.bin"]);
  });

  test("a failed save keeps the old file intact", () => {
    const dir = fs.mkdtempSync(path.join(tmp, "atomic-"));
    const file = path.join(dir, "model.safetensors");
    saveSafetensors(file, { a: f32([1], [1]) });
    const before = fs.readFileSync(file);
    expect(() => saveSafetensors(file, { a: f32([2], [1]) })).toThrow("saveSafetensors: tensor 'a': shape [2] has 2 elements but data has 1");
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(leftovers(dir)).toEqual([]);
  });

  test("an unwritable target is a CheckpointError naming it", async () => {
    const target = path.join(tmp, "no-such-dir", "x.bin");
    expect(() => writeFileAtomicSync(target, Buffer.from("x"))).toThrow(new RegExp(`^cannot write ${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: ENOENT`));
    await expect(writeFileAtomic(target, Buffer.from("x"))).rejects.toThrow(CheckpointError);
    // The target exists as a directory: rename fails, the temp file is removed.
    const dir = fs.mkdtempSync(path.join(tmp, "atomic-"));
    fs.mkdirSync(path.join(dir, "taken"));
    expect(() => writeFileAtomicSync(path.join(dir, "taken"), Buffer.from("x"))).toThrow(/cannot write .*taken: /);
    expect(leftovers(dir)).toEqual([]);
  });
});

describe("writer input checks", () => {
  test.each([
    [{ __metadata__: f32([1], [1]) }, "saveSafetensors: tensor '__metadata__': this name is not allowed"],
    [{ a: { dtype: "F32", shape: [-1], data: new Float32Array(1) } }, "saveSafetensors: tensor 'a': shape must be an array of non-negative integers"],
    [{ a: { dtype: "I32", shape: [1], data: new Float32Array(1) } }, "saveSafetensors: tensor 'a': dtype I32 does not match its Float32Array data"],
    [{ a: { dtype: "F32", shape: [1], data: [1] } }, "saveSafetensors: tensor 'a': data must be a Float32Array or an Int32Array"],
    [{ a: { dtype: "U8", shape: [2], data: Int32Array.from([0, 256]) } }, "saveSafetensors: tensor 'a': element 1 = 256 is out of range for U8 [0, 255]"],
  ])("%#: %s", (tensors, message) => {
    expect(() => encodeSafetensors(tensors as unknown as Record<string, StateTensor>)).toThrow(message);
  });
  test("unknown float dtype option", () => {
    expect(() => encodeSafetensors({}, null, { dtype: "F8" as "F16" })).toThrow('saveSafetensors: option dtype must be F32, F16 or BF16, got "F8"');
  });
});

describe("malformed safetensors files: one clear error each", () => {
  const t4 = { dtype: "F32", shape: [1], data_offsets: [0, 4] };
  const cases: [string, () => Uint8Array, string | RegExp][] = [
    ["truncated below 8 bytes", () => new Uint8Array(5), "x.safetensors: file is 5 bytes, too small for the 8-byte header length (truncated?)"],
    ["header length beyond the file", () => build({ a: t4 }, 4).subarray(0, 20), /^x\.safetensors: header length 54 runs past the end of the 20-byte file \(truncated\?\)$/],
    ["header length over the 100 MB limit", () => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, 200_000_000n, true); return b; }, "x.safetensors: header length 200000000 exceeds the 100000000-byte limit (not a safetensors file?)"],
    ["truncated data section", () => build({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 16).subarray(0, 70), "x.safetensors: tensor 'a': data_offsets [0, 16] out of range: the data section is 7 bytes"],
    ["header not UTF-8", () => { const b = build({ a: t4 }, 4); b[10] = 0xff; return b; }, "x.safetensors: header is not valid UTF-8"],
    ["header not JSON", () => { const b = build({ a: t4 }, 4); b[8] = 0x20; b[9] = 0x5b; return b; }, /^x\.safetensors: header: not valid JSON \(/],
    ["header not an object", () => build([1, 2]), "x.safetensors: header must be a JSON object of tensor entries"],
    ["entry lacks a field", () => build({ a: { dtype: "F32", shape: [1] } }, 4), "x.safetensors: tensor 'a': entry lacks data_offsets"],
    ["unknown dtype", () => build({ a: { ...t4, dtype: "F17" } }, 4), /^x\.safetensors: tensor 'a': unknown dtype "F17" \(expected one of F64, F32, F16, BF16, I64/],
    ["bad shape", () => build({ a: { ...t4, shape: [1.5] } }, 4), "x.safetensors: tensor 'a': shape must be an array of non-negative integers, got [1.5]"],
    ["bad offsets", () => build({ a: { ...t4, data_offsets: [0] } }, 4), "x.safetensors: tensor 'a': data_offsets must be [begin, end] non-negative integers, got [0]"],
    ["begin after end", () => build({ a: { ...t4, shape: [0], data_offsets: [4, 0] } }, 4), "x.safetensors: tensor 'a': data_offsets [4, 0] has begin > end"],
    ["out-of-range offsets", () => build({ a: { ...t4, data_offsets: [4, 8] } }, 4), "x.safetensors: tensor 'a': data_offsets [4, 8] out of range: the data section is 4 bytes"],
    ["shape / bytes mismatch", () => build({ a: { ...t4, shape: [2] } }, 4), "x.safetensors: tensor 'a': shape [2] of F32 needs 8 bytes but data_offsets [0, 4] span 4"],
    ["overlapping offsets", () => build({ a: { ...t4, shape: [2], data_offsets: [0, 8] }, b: { ...t4, data_offsets: [4, 8] } }, 8), "x.safetensors: tensor 'b': data_offsets [4, 8] overlap tensor 'a' (which ends at 8)"],
    ["a hole between tensors", () => build({ a: t4, b: { ...t4, data_offsets: [8, 12] } }, 12), "x.safetensors: tensor 'b': data_offsets [8, 12] leave a 4-byte hole after tensor 'a'"],
    ["trailing bytes", () => build({ a: t4 }, 6), "x.safetensors: 2 trailing bytes after the last tensor (the data section is 6 bytes, tensors cover 4)"],
    ["metadata value not a string", () => build({ __metadata__: { format: 1 }, a: t4 }, 4), 'x.safetensors: __metadata__ value for \'format\' must be a string, got 1'],
    ["8-bit floats", () => build({ a: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] } }, 2), /^x\.safetensors: tensor 'a': dtype F8_E4M3 is a valid safetensors type but tunekit cannot load 8-bit float weights/],
    ["I64 beyond int32", () => build({ a: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array([0, 0, 0, 0, 1, 0, 0, 0])), "x.safetensors: tensor 'a': I64 element 0 = 4294967296 does not fit in int32, tunekit's in-memory integer type"],
  ];
  test.each(cases)("%s", (_name, make, message) => {
    const bytes = make();
    expect(() => parseSafetensors(bytes, "x.safetensors")).toThrow(CheckpointError);
    expect(() => parseSafetensors(bytes, "x.safetensors")).toThrow(message);
  });

  test("a file cut short on disk", () => {
    const file = path.join(tmp, "cut.safetensors");
    saveSafetensors(file, { a: f32([4], [1, 2, 3, 4]) });
    fs.truncateSync(file, fs.statSync(file).size - 3);
    expect(() => readSafetensors(file)).toThrow(`${file}: tensor 'a': data_offsets [0, 16] out of range: the data section is 13 bytes`);
    expect(() => readSafetensors(path.join(tmp, "absent.safetensors"))).toThrow(/^cannot read .*absent\.safetensors: ENOENT/);
  });
});
