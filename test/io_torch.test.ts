// pytorch_model.bin: the zip reader, the allow-list unpickler and tensor rebuilding, against files
// torch.save wrote (test/fixtures/golden_io.py) and hand-made hostile or broken archives and pickles;
// sharded checkpoints and loadStateDict's file choice.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { CheckpointError } from "../lib/errors";
import { StateDict, ZipArchive, loadStateDict, loadStateDictAsync, parseTorchBin, readTorchBin } from "../lib/io";

const FIX = path.join(__dirname, "fixtures", "io");
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "io.json"), "utf8")).fixtures;
type Vals = { dtype: string; shape: number[]; values: number[] };
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-bin-")); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function expectValues(sd: StateDict, want: Record<string, Vals>): void {
  expect([...sd.keys()].sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const t = sd.get(name)!;
    expect([name, t.dtype, t.shape]).toEqual([name, w.dtype, w.shape]);
    if (t.data instanceof Float32Array) expect([name, bits(t.data)]).toEqual([name, bits(Float32Array.from(w.values))]);
    else expect([name, [...t.data]]).toEqual([name, w.values]);
  }
}

// ---- a minimal STORED zip writer, to build archives the way torch lays them out ----
function makeZip(entries: [string, Uint8Array | string][], opts: { method?: number; flags?: number } = {}): Uint8Array {
  const locals: Buffer[] = [], centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of entries) {
    const data = Buffer.from(content as Uint8Array);
    const n = Buffer.from(name);
    const crc = zlib.crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(opts.flags ?? 0, 6); lh.writeUInt16LE(opts.method ?? 0, 8);
    lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(data.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(opts.flags ?? 0, 8); ch.writeUInt16LE(opts.method ?? 0, 10);
    ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(data.length, 20); ch.writeUInt32LE(data.length, 24); ch.writeUInt16LE(n.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, n, data);
    centrals.push(ch, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(entries.length, 8); eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12); eocd.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, cd, eocd]));
}

// ---- a pickle builder for the opcodes torch.save uses ----
const op = {
  proto: [0x80, 2], emptyDict: [0x7d], mark: [0x28], tuple: [0x74], setitems: [0x75], reduce: [0x52], stop: [0x2e],
  emptyTuple: [0x29], newfalse: [0x89], binpersid: [0x51], build: [0x62], emptyList: [0x5d],
};
const uni = (s: string) => { const b = Buffer.from(s); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); return [...h, ...b]; };
const int = (v: number) => { const h = Buffer.alloc(5); h[0] = 0x4a; h.writeInt32LE(v, 1); return [...h]; };
const glob = (m: string, n: string) => [0x63, ...Buffer.from(`${m}\n${n}\n`)];
const tup = (items: number[]) => [...op.mark, ...items.flatMap(int), ...op.tuple];
const pickle = (...parts: number[][]) => new Uint8Array(parts.flat());

interface TensorSpec { storage?: string; key?: string; numel?: number; offset?: number; shape?: number[]; stride?: number[]; hooks?: number[][] }
/** `_rebuild_tensor_v2(('storage', torch.<storage>, key, 'cpu', numel), offset, shape, stride, False, OrderedDict())`. */
function tensor(s: TensorSpec = {}): number[] {
  const shape = s.shape ?? [2];
  return [
    ...glob("torch._utils", "_rebuild_tensor_v2"), ...op.mark,
    ...op.mark, ...uni("storage"), ...glob("torch", s.storage ?? "FloatStorage"), ...uni(s.key ?? "0"), ...uni("cpu"), ...int(s.numel ?? 2), ...op.tuple, ...op.binpersid,
    ...int(s.offset ?? 0), ...tup(shape), ...tup(s.stride ?? [1]), ...op.newfalse,
    ...glob("collections", "OrderedDict"), ...op.emptyTuple, ...op.reduce, ...(s.hooks ?? []).flat(),
    ...op.tuple, ...op.reduce,
  ];
}
const stateDict = (entries: [string, number[]][]) => pickle(op.proto, op.emptyDict, op.mark, ...entries.flatMap(([k, v]) => [uni(k), v]), op.setitems, op.stop);
const f32bytes = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);
const archive = (pkl: Uint8Array, records: [string, Uint8Array][] = [["0", f32bytes(1, 2)]]) =>
  makeZip([["archive/data.pkl", pkl], ["archive/version", "3\n"], ...records.map(([k, b]) => [`archive/data/${k}`, b] as [string, Uint8Array])]);

describe("torch.save archives decode to PyTorch's values", () => {
  const want = golden["state_dict.bin"] as Record<string, Vals>;

  test("every dtype, strides, storage offsets, shared storages, parameters, OrderedDict + BUILD", () => {
    const file = path.join(FIX, "state_dict.bin");
    const bytes = fs.readFileSync(file);
    const sd = parseTorchBin(bytes, file);
    expectValues(sd, want);
    // Tied: one tensor object under two names. Views of one storage share memory, as in torch.
    expect(sd.get("tied_a")).toBe(sd.get("tied_b"));
    expect(sd.get("row0")!.data.buffer).toBe(sd.get("row1")!.data.buffer);
    expect(sd.get("row1")!.data.byteOffset - sd.get("row0")!.data.byteOffset).toBe(16);
    // Contiguous F32 tensors are views of the file buffer (no copy); strided ones are materialised.
    expect(sd.get("lin.weight")!.data.buffer).toBe(bytes.buffer);
    expect(sd.get("sliced")!.data.buffer).toBe(bytes.buffer);
    expect(sd.get("transposed")!.data.buffer).not.toBe(bytes.buffer);
  });

  test("protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE) and deflate-compressed entries", () => {
    const p4 = readTorchBin(path.join(FIX, "protocol4.bin"));
    expectValues(p4, Object.fromEntries(["lin.weight", "f16", "transposed", "tied_a", "tied_b"].map((k) => [k, want[k]])));
    expect(p4.get("tied_a")).toBe(p4.get("tied_b"));
    expectValues(readTorchBin(path.join(FIX, "deflated.bin")), want);
  });

  test("verifyCrc detects a corrupted storage that the default (torch's own behaviour) does not check", () => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(FIX, "state_dict.bin")));
    const zip = new ZipArchive(bytes, "x");
    const entry = [...zip.entries.values()].find((e) => e.name.endsWith("/data/0"))!;
    bytes[entry.dataOffset] ^= 0xff;
    expect(() => parseTorchBin(bytes, "x.bin")).not.toThrow();
    expect(() => parseTorchBin(bytes, "x.bin", { verifyCrc: true })).toThrow(/^x\.bin: zip entry 'state_dict\/data\/0' is corrupt: CRC-32 0x[0-9a-f]{8}, the directory says 0x[0-9a-f]{8}$/);
  });

  test("hand-built archives: storage offset, strides, an int64 storage", () => {
    const pkl = stateDict([
      ["w", tensor({ numel: 6, offset: 1, shape: [2, 2], stride: [1, 2] })],
      ["ids", tensor({ storage: "LongStorage", key: "1", numel: 3, shape: [3], stride: [1] })],
    ]);
    const ids = new Uint8Array(new BigInt64Array([5n, -7n, 2147483647n]).buffer);
    const sd = parseTorchBin(archive(pkl, [["0", f32bytes(0, 1, 2, 3, 4, 5)], ["1", ids]]), "x.bin");
    expect([...sd.get("w")!.data]).toEqual([1, 3, 2, 4]);
    expect(sd.get("ids")).toEqual({ dtype: "I64", shape: [3], data: Int32Array.from([5, -7, 2147483647]) });
  });
});

describe("hostile or broken pytorch_model.bin: one clear error each", () => {
  test("a pickle calling os.system is refused before anything runs", () => {
    const file = path.join(FIX, "malicious.bin");
    expect(() => readTorchBin(file)).toThrow(CheckpointError);
    expect(() => readTorchBin(file)).toThrow(`${file}: refusing to load global 'os.system'; only torch tensor-rebuilding globals are allowed (pickle byte 2)`);
  });

  test("legacy (non-zip) torch.save format", () => {
    const file = path.join(FIX, "legacy.bin");
    expect(() => readTorchBin(file)).toThrow(`${file}: this is a legacy (non-zip) torch.save file, written by torch < 1.6 or with _use_new_zipfile_serialization=False; tunekit reads only the zip format. Re-save it with torch>=1.6`);
  });

  const evil: [string, Uint8Array, string][] = [
    ["STACK_GLOBAL builtins.eval", pickle([0x80, 4], [0x8c, 8, ...Buffer.from("builtins")], [0x8c, 4, ...Buffer.from("eval")], [0x93], op.stop), "refusing to load global 'builtins.eval'"],
    ["a torch global that is not a tensor rebuilder", pickle(op.proto, glob("torch", "load"), op.stop), "refusing to load global 'torch.load'"],
    ["calling a storage class", stateDict([["w", [...glob("torch", "FloatStorage"), ...op.emptyTuple, ...op.reduce]]]), "global 'torch.FloatStorage' cannot be called"],
    ["INST opcode", pickle(op.proto, [0x69, ...Buffer.from("os\nsystem\n")], op.stop), "pickle opcode INST (0x69) is not allowed (pickle byte 2)"],
    ["NEWOBJ opcode", pickle(op.proto, glob("collections", "OrderedDict"), op.emptyTuple, [0x81], op.stop), "pickle opcode NEWOBJ (0x81) is not allowed"],
    ["unknown opcode", pickle(op.proto, [0xff], op.stop), "pickle opcode unknown (0xff) is not allowed"],
    ["truncated pickle", pickle(op.proto, op.emptyDict, op.mark, uni("w")).subarray(0, 8), "truncated pickle"],
    ["STOP with a dirty stack", pickle(op.proto, op.emptyDict, op.emptyDict, op.stop), "malformed pickle: STOP with a stack that does not hold exactly one object"],
    ["undefined memo key", pickle(op.proto, [0x68, 9], op.stop), "memo key 9 is not defined"],
    ["not a dict", pickle(op.proto, op.emptyList, op.stop), "the pickle does not hold a dict of tensors (a state dict)"],
    ["a non-tensor entry", stateDict([["epoch", int(3)]]), "entry 'epoch' is not a tensor (tunekit reads state dicts: name → tensor)"],
    ["malformed persistent id", stateDict([["w", [...uni("x"), ...op.binpersid]]]), "persistent id is not ('storage', storage_type, key, location, numel)"],
    ["storage key with a path", stateDict([["w", tensor({ key: "../0" })]]), 'storage key "../0" is not a plain record name'],
    ["backward hooks", stateDict([["w", tensor({ hooks: [uni("k"), int(1), [0x73]] })]]), "_rebuild_tensor_v2: backward hooks are not allowed"],
    ["size/stride rank mismatch", stateDict([["w", tensor({ shape: [2], stride: [1, 1] })]]), "_rebuild_tensor_v2: size has 1 dims but stride has 2"],
    ["view past its storage", stateDict([["w", tensor({ numel: 2, offset: 1, shape: [2] })]]), "tensor 'w': size [2] stride [1] at offset 1 reaches past its storage of 2 elements"],
    ["storage record missing", stateDict([["w", tensor({ key: "7" })]]), "tensor 'w': storage record 'archive/data/7' is missing from the archive"],
    ["storage record of the wrong size", stateDict([["w", tensor({ numel: 3, shape: [3] })]]), "storage 'archive/data/0' is 8 bytes; 3 × F32 needs 12"],
    ["one storage with two types", stateDict([["a", tensor()], ["b", tensor({ storage: "HalfStorage" })]]), "storage '0' is referenced as F32[2] and as F16[2]"],
    ["BUILD on a tensor", stateDict([["w", [...tensor(), ...op.emptyDict, ...op.build]]]), "BUILD is only allowed to set the attributes of a dict"],
  ];
  test.each(evil)("%s", (_name, pkl, message) => {
    const bytes = archive(pkl);
    expect(() => parseTorchBin(bytes, "x.bin")).toThrow(CheckpointError);
    expect(() => parseTorchBin(bytes, "x.bin")).toThrow(`x.bin: ${message}`);
  });

  test("big-endian storages", () => {
    const bytes = makeZip([["a/data.pkl", stateDict([])], ["a/byteorder", "big"]]);
    expect(() => parseTorchBin(bytes, "x.bin")).toThrow("x.bin: storages are big-endian; only little-endian checkpoints are supported");
  });
});

describe("zip structure errors", () => {
  const good = () => new Uint8Array(fs.readFileSync(path.join(FIX, "state_dict.bin")));
  const eocdAt = (b: Uint8Array) => Buffer.from(b).lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));

  test("a bad central directory", () => {
    const b = good();
    const cd = new DataView(b.buffer).getUint32(eocdAt(b) + 16, true);
    b[cd] = 0; // break the signature of the first central-directory entry
    expect(() => parseTorchBin(b, "x.bin")).toThrow(`x.bin: bad central directory: entry 0 at byte ${cd} has no central-header signature`);
  });
  test("a central directory pointing past its end (ZIP64 record, as torch writes, and plain EOCD)", () => {
    const b = good();
    const z64 = Buffer.from(b).lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]));
    expect(z64).toBeGreaterThan(0);
    new DataView(b.buffer).setBigUint64(z64 + 48, BigInt(b.length), true);
    expect(() => parseTorchBin(b, "x.bin")).toThrow(`x.bin: bad central directory: offset ${b.length} + size 1335 runs past its end at byte ${z64}`);
    const plain = makeZip([["a/data.pkl", stateDict([])]]);
    new DataView(plain.buffer).setUint32(eocdAt(plain) + 16, plain.length, true);
    expect(() => parseTorchBin(plain, "x.bin")).toThrow(`x.bin: bad central directory: offset ${plain.length} + size 56 runs past its end at byte ${eocdAt(plain)}`);
  });
  test("a local header offset pointing at garbage", () => {
    const b = good();
    const cd = new DataView(b.buffer).getUint32(eocdAt(b) + 16, true);
    new DataView(b.buffer).setUint32(cd + 42, 7, true);
    expect(() => parseTorchBin(b, "x.bin")).toThrow("x.bin: bad zip: local header of 'state_dict/data.pkl' expected at byte 7");
  });
  test("a truncated archive", () => {
    expect(() => parseTorchBin(good().subarray(0, 3000), "x.bin")).toThrow("x.bin: not a zip archive (no end-of-central-directory record; truncated?)");
    expect(() => parseTorchBin(new Uint8Array(0), "x.bin")).toThrow("x.bin: not a zip archive");
  });
  test("unsupported compression, encryption, no data.pkl", () => {
    expect(() => parseTorchBin(makeZip([["a/data.pkl", "x"]], { method: 12 }), "x.bin")).toThrow("x.bin: zip entry 'a/data.pkl' uses compression method 12; only stored (0) and deflate (8) are supported");
    expect(() => parseTorchBin(makeZip([["a/data.pkl", "x"]], { flags: 1 }), "x.bin")).toThrow("x.bin: zip entry 'a/data.pkl' is encrypted");
    expect(() => parseTorchBin(makeZip([["a/other", "x"]]), "x.bin")).toThrow("x.bin: archive has no <name>/data.pkl record (not a torch.save file?)");
    expect(() => parseTorchBin(makeZip([["a/data.pkl", "x"], ["a/data.pkl", "y"]]), "x.bin")).toThrow("x.bin: bad central directory: duplicate entry 'a/data.pkl'");
  });
});

describe("sharded checkpoints and loadStateDict", () => {
  const want = golden.sharded as Record<string, Vals>;

  test.each([
    ["sharded_st", "safetensors", "model.safetensors.index.json", "model-0000"],
    ["sharded_bin", "pytorch", "pytorch_model.bin.index.json", "pytorch_model-0000"],
  ])("%s loads every shard", (dir, format, index, shard) => {
    const r = loadStateDict(path.join(FIX, dir));
    expect(r.format).toBe(format);
    expect(r.files.map((f) => path.basename(f))).toEqual([index, `${shard}1-of-00002.${format === "pytorch" ? "bin" : "safetensors"}`, `${shard}2-of-00002.${format === "pytorch" ? "bin" : "safetensors"}`]);
    expectValues(r.tensors, want);
  });

  test("loadStateDictAsync gives the same result, and the same errors", async () => {
    for (const dir of ["sharded_st", "sharded_bin"]) {
      const sync = loadStateDict(path.join(FIX, dir)), async_ = await loadStateDictAsync(path.join(FIX, dir));
      expect([async_.format, async_.files]).toEqual([sync.format, sync.files]);
      expectValues(async_.tensors, want);
    }
    await expect(loadStateDictAsync(path.join(FIX, "malicious.bin"))).rejects.toThrow("refusing to load global 'os.system'");
    await expect(loadStateDictAsync(path.join(tmp, "absent"))).rejects.toThrow("no such checkpoint directory or file");
  });

  test("reading a directory as a weights file", () => {
    expect(() => readTorchBin(FIX)).toThrow(new RegExp(`^cannot read ${FIX.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: EISDIR`));
  });

  function copyDir(name: string): string {
    const d = fs.mkdtempSync(path.join(tmp, `${name}-`));
    for (const f of fs.readdirSync(path.join(FIX, name))) fs.copyFileSync(path.join(FIX, name, f), path.join(d, f));
    return d;
  }
  const editIndex = (d: string, file: string, edit: (j: { weight_map: Record<string, string> }) => void) => {
    const j = JSON.parse(fs.readFileSync(path.join(d, file), "utf8"));
    edit(j);
    fs.writeFileSync(path.join(d, file), JSON.stringify(j));
  };

  test("a missing shard", () => {
    const d = copyDir("sharded_st");
    fs.rmSync(path.join(d, "model-00002-of-00002.safetensors"));
    expect(() => loadStateDict(d)).toThrow(`${path.join(d, "model.safetensors.index.json")}: missing shard file model-00002-of-00002.safetensors (listed in weight_map)`);
  });
  test("index and shards disagree", () => {
    const d = copyDir("sharded_bin");
    const index = path.join(d, "pytorch_model.bin.index.json");
    editIndex(d, "pytorch_model.bin.index.json", (j) => { j.weight_map["lin.bias"] = "pytorch_model-00002-of-00002.bin"; });
    expect(() => loadStateDict(d)).toThrow(`${index}: shard pytorch_model-00001-of-00002.bin holds 'lin.bias', which weight_map does not assign to it`);
    editIndex(d, "pytorch_model.bin.index.json", (j) => { j.weight_map["lin.bias"] = "pytorch_model-00001-of-00002.bin"; j.weight_map["ghost"] = "pytorch_model-00002-of-00002.bin"; });
    expect(() => loadStateDict(d)).toThrow(`${index}: weight_map assigns 'ghost' to pytorch_model-00002-of-00002.bin, but that shard does not hold it`);
    editIndex(d, "pytorch_model.bin.index.json", (j) => { j.weight_map["ghost"] = "../../etc/passwd"; });
    expect(() => loadStateDict(d)).toThrow(`${index}: weight_map['ghost'] must be a file name in the same directory, got "../../etc/passwd"`);
    fs.writeFileSync(index, "{\"weight_map\": 3}");
    expect(() => loadStateDict(d)).toThrow(`${index}: has no weight_map object`);
    fs.writeFileSync(index, "{");
    expect(() => loadStateDict(d)).toThrow(new RegExp(`^${index.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not valid JSON \\(`));
  });
  test("file preference and direct file paths", () => {
    const d = copyDir("sharded_bin");
    fs.copyFileSync(path.join(FIX, "state_dict.bin"), path.join(d, "pytorch_model.bin"));
    expect(loadStateDict(d).files).toEqual([path.join(d, "pytorch_model.bin")]); // single file before shards
    fs.copyFileSync(path.join(FIX, "mixed.safetensors"), path.join(d, "model.safetensors"));
    const st = loadStateDict(d);
    expect([st.format, st.files, st.metadata]).toEqual(["safetensors", [path.join(d, "model.safetensors")], { format: "pt", note: "golden" }]);
    expect(loadStateDict(path.join(d, "pytorch_model.bin")).format).toBe("pytorch");
    expect(() => loadStateDict(path.join(d, "pytorch_model.bin.index.json.x"))).toThrow("no such checkpoint directory or file");
    const empty = fs.mkdtempSync(path.join(tmp, "empty-"));
    expect(() => loadStateDict(empty)).toThrow(`${empty}: no weights found; expected one of model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json`);
    fs.writeFileSync(path.join(empty, "weights.npz"), "x");
    expect(() => loadStateDict(path.join(empty, "weights.npz"))).toThrow("weights.npz: unknown weights file type (expected .safetensors, .bin or .index.json)");
  });
});
