// pytorch_model.bin without Python: torch.save's zip archive (torch >= 1.6) holds `<prefix>/data.pkl`,
// a pickle of the state dict whose tensors point, through persistent ids, at raw storages in
// `<prefix>/data/<key>`. The pickle runs on the allow-list unpickler: only the globals that rebuild
// tensors and OrderedDicts are accepted, so a hostile file is refused instead of executed.
import { CheckpointError } from "../errors";
import { readFileWhole } from "./atomic";
import { DTYPE_SIZE, DType, StateDict, StateTensor, decodeTensorData, isFloatDType, numel } from "./dtypes";
import { PyDict, PyGlobal, PyTuple, unpickle } from "./pickle";
import { ZipArchive } from "./zip";

/** torch storage class → element type. */
const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: "F32", HalfStorage: "F16", BFloat16Storage: "BF16", DoubleStorage: "F64",
  LongStorage: "I64", IntStorage: "I32", ShortStorage: "I16", CharStorage: "I8", ByteStorage: "U8", BoolStorage: "BOOL",
};

const ALLOWED_CALLS = new Set(["torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "collections.OrderedDict"]);

class StorageRef {
  data: Float32Array | Int32Array | null = null;
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number) {}
}

class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}

export interface TorchBinOptions {
  /** Check each storage's CRC-32 against the zip directory (torch itself does not; off by default). */
  verifyCrc?: boolean;
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

function intTuple(v: unknown, what: string, fail: (m: string) => Error): number[] {
  if (!(v instanceof PyTuple) || !v.items.every(isInt)) throw fail(`${what} must be a tuple of non-negative integers`);
  return v.items as number[];
}

/** Reads the state dict of a torch.save zip archive held in `bytes`. */
export function parseTorchBin(bytes: Uint8Array, source = "<pytorch_model.bin buffer>", options: TorchBinOptions = {}): StateDict {
  const fail = (msg: string) => new CheckpointError(`${source}: ${msg}`);
  const isTar = bytes.length >= 262 && Buffer.from(bytes.buffer, bytes.byteOffset + 257, 5).toString("latin1") === "ustar";
  if (bytes[0] === 0x80 || isTar) {
    throw fail("this is a legacy (non-zip) torch.save file, written by torch < 1.6 or with _use_new_zipfile_serialization=False; " +
      "tunekit reads only the zip format. Re-save it with torch>=1.6: torch.save(torch.load(path), path), or convert it to model.safetensors");
  }
  const zip = new ZipArchive(bytes, source);
  const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) throw fail(pkls.length ? `archive holds ${pkls.length} data.pkl records` : "archive has no <name>/data.pkl record (not a torch.save file?)");
  const prefix = pkls[0].slice(0, -"data.pkl".length);
  const order = zip.entries.get(`${prefix}byteorder`);
  if (order) {
    const o = Buffer.from(zip.read(order.name)).toString("latin1");
    if (o !== "little") throw fail(`storages are ${o}-endian; only little-endian checkpoints are supported`);
  }

  const storages = new Map<string, StorageRef>();
  const root = unpickle(zip.read(pkls[0], options), {
    checkGlobal(module, name) {
      const q = `${module}.${name}`;
      if (ALLOWED_CALLS.has(q) || (module === "torch" && name in STORAGE_DTYPES)) return null;
      return `refusing to load global '${q}'; only torch tensor-rebuilding globals are allowed`;
    },
    persistentLoad(pid) {
      const p = pid instanceof PyTuple ? pid.items : [];
      const [kind, cls, key, , count] = p;
      if (p.length !== 5 || kind !== "storage" || !(cls instanceof PyGlobal) || typeof key !== "string" || !isInt(count)) {
        throw fail("persistent id is not ('storage', storage_type, key, location, numel)");
      }
      const dtype = STORAGE_DTYPES[cls.name];
      if (cls.module !== "torch" || !dtype) throw fail(`persistent id names '${cls.qualified}', which is not a torch storage type`);
      if (!/^[A-Za-z0-9_.-]+$/.test(key) || key.includes("..")) throw fail(`storage key ${JSON.stringify(key)} is not a plain record name`);
      const seen = storages.get(key);
      if (seen) {
        if (seen.dtype !== dtype || seen.numel !== count) throw fail(`storage '${key}' is referenced as ${seen.dtype}[${seen.numel}] and as ${dtype}[${count}]`);
        return seen;
      }
      const ref = new StorageRef(key, dtype, count);
      storages.set(key, ref);
      return ref;
    },
    reduce(fn, args) {
      const a = args.items;
      switch (fn.qualified) {
        case "collections.OrderedDict":
          if (a.length) throw fail("OrderedDict is only allowed with no arguments");
          return new PyDict();
        case "torch._utils._rebuild_parameter":
          if (a.length !== 3 || !(a[0] instanceof TensorRef)) throw fail("_rebuild_parameter expects (tensor, requires_grad, backward_hooks)");
          return a[0];
        case "torch._utils._rebuild_tensor_v2": {
          if (a.length !== 6 && a.length !== 7) throw fail(`_rebuild_tensor_v2 expects 6 or 7 arguments, got ${a.length}`);
          const [storage, offset, size, stride, , hooks] = a;
          if (!(storage instanceof StorageRef)) throw fail("_rebuild_tensor_v2: first argument is not a storage");
          if (!isInt(offset)) throw fail("_rebuild_tensor_v2: storage offset must be a non-negative integer");
          const shape = intTuple(size, "_rebuild_tensor_v2: size", fail);
          const strides = intTuple(stride, "_rebuild_tensor_v2: stride", fail);
          if (shape.length !== strides.length) throw fail(`_rebuild_tensor_v2: size has ${shape.length} dims but stride has ${strides.length}`);
          if (!(hooks instanceof PyDict) || hooks.map.size) throw fail("_rebuild_tensor_v2: backward hooks are not allowed");
          return new TensorRef(storage, offset, shape, strides);
        }
        default:
          throw fail(`global '${fn.qualified}' cannot be called`);
      }
    },
    build(obj, state) {
      // The only BUILD torch.save emits for a state dict sets an OrderedDict's `_metadata` attribute.
      if (!(obj instanceof PyDict) || !(state instanceof PyDict || state === null)) throw fail("BUILD is only allowed to set the attributes of a dict");
      obj.state = state;
    },
  }, source);

  if (!(root instanceof PyDict)) throw fail("the pickle does not hold a dict of tensors (a state dict)");
  const out: StateDict = new Map();
  const built = new Map<TensorRef, StateTensor>();
  for (const [key, value] of root.map) {
    if (typeof key !== "string") throw fail(`state dict key ${JSON.stringify(key)} is not a string`);
    if (!(value instanceof TensorRef)) throw fail(`entry '${key}' is not a tensor (tunekit reads state dicts: name → tensor)`);
    let t = built.get(value); // the same tensor object under two names (tied weights) stays one tensor
    if (!t) {
      t = materialise(value, key);
      built.set(value, t);
    }
    out.set(key, t);
  }
  return out;

  function storageData(s: StorageRef, key: string): Float32Array | Int32Array {
    if (s.data) return s.data;
    const record = `${prefix}data/${s.key}`;
    if (!zip.entries.has(record)) throw fail(`tensor '${key}': storage record '${record}' is missing from the archive`);
    const raw = zip.read(record, options);
    const need = s.numel * DTYPE_SIZE[s.dtype];
    if (raw.length !== need) throw fail(`storage '${record}' is ${raw.length} bytes; ${s.numel} × ${s.dtype} needs ${need}`);
    return (s.data = decodeTensorData(s.dtype, raw, 0, s.numel, `${source}: tensor '${key}'`));
  }

  function materialise(t: TensorRef, key: string): StateTensor {
    const data = storageData(t.storage, key);
    const n = numel(t.shape);
    const shape = [...t.shape];
    let span = 1; // highest element index touched + 1, relative to the offset
    for (let d = 0; d < shape.length; d++) if (shape[d] > 0) span += (shape[d] - 1) * t.stride[d];
    if (n > 0 && t.offset + span > data.length) {
      throw fail(`tensor '${key}': size [${shape}] stride [${t.stride}] at offset ${t.offset} reaches past its storage of ${data.length} elements`);
    }
    let contiguous = true;
    for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
      if (shape[d] !== 1 && t.stride[d] !== expect) contiguous = false;
      expect *= shape[d];
    }
    // A view with stride 0 or overlapping strides can name far more elements than its storage holds; copying
    // it would allocate that many. Real state dicts never do this, so views are bounded by the file's size.
    if (!contiguous && n > 4 * bytes.length) {
      throw fail(`tensor '${key}': size [${shape}] stride [${t.stride}] is a view of ${n} elements over a storage of ${data.length}; ` +
        `expected at most ${4 * bytes.length} (4 × the file's ${bytes.length} bytes)`);
    }
    let values: Float32Array | Int32Array;
    if (n === 0) values = data.subarray(0, 0);
    else if (contiguous) values = data.subarray(t.offset, t.offset + n); // shares the storage, as torch does
    else values = gather(data, t.offset, shape, t.stride, n);
    const dtype = t.storage.dtype;
    return (isFloatDType(dtype) ? { dtype, shape, data: values as Float32Array } : { dtype, shape, data: values as Int32Array }) as StateTensor;
  }
}

/** Copies a strided view into a new row-major array. */
function gather<T extends Float32Array | Int32Array>(src: T, offset: number, shape: number[], stride: number[], n: number): T {
  const out = new (src.constructor as { new (n: number): T })(n);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let at = offset;
  for (let i = 0; i < n; i++) {
    out[i] = src[at];
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) { at += stride[d]; break; }
      at -= (shape[d] - 1) * stride[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Reads a pytorch_model.bin (torch.save zip format) into a state dict; nothing in it is executed. */
export function readTorchBin(file: string, options: TorchBinOptions = {}): StateDict {
  return parseTorchBin(readFileWhole(file), file, options);
}
