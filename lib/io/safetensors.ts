// safetensors: 8-byte LE header length N, N bytes of JSON header, then the tensor bytes.
// The reader applies the checks of the reference Rust parser (safetensors/src/tensor.rs) with a
// message per failure; the writer produces the bytes that parser's serializer produces.
import { CheckpointError } from "../errors";
import { readFileWhole, writeFileAtomic, writeFileAtomicSync } from "./atomic";
import { parseJson } from "./json_safe";
import {
  ALL_DTYPES, DTYPE_SIZE, DType, FloatDType, StateDict, StateTensor,
  decodeTensorData, encodeTensorData, isDType, isFloatDType, isIntDType, isFloat32Array, isInt32Array, numel,
} from "./dtypes";

export const MAX_HEADER_SIZE = 100_000_000;

export interface SafetensorsEntry {
  dtype: DType;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Entries in data order. */
  entries: Map<string, SafetensorsEntry>;
  /** `__metadata__`, or null when the file has none. */
  metadata: Record<string, string> | null;
  /** File offset of the data section (8 + N). */
  dataStart: number;
}

export interface SafetensorsFile {
  tensors: StateDict;
  metadata: Record<string, string> | null;
}

const fail = (source: string, msg: string) => new CheckpointError(`${source}: ${msg}`);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Parses and validates the header of a whole safetensors file held in `bytes`. */
export function parseSafetensorsHeader(bytes: Uint8Array, source = "<safetensors buffer>"): SafetensorsHeader {
  if (bytes.length < 8) throw fail(source, `file is ${bytes.length} bytes, too small for the 8-byte header length (truncated?)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_SIZE)) throw fail(source, `header length ${n64} exceeds the ${MAX_HEADER_SIZE}-byte limit (not a safetensors file?)`);
  const n = Number(n64);
  if (8 + n > bytes.length) throw fail(source, `header length ${n} runs past the end of the ${bytes.length}-byte file (truncated?)`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw fail(source, "header is not valid UTF-8");
  }
  const json = parseJson(text, `${source}: header`, CheckpointError);
  if (!isObject(json)) throw fail(source, "header must be a JSON object of tensor entries");

  let metadata: Record<string, string> | null = null;
  const list: [string, SafetensorsEntry][] = [];
  const dataLen = bytes.length - 8 - n;
  for (const [name, v] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (!isObject(v)) throw fail(source, "__metadata__ must be an object of string values");
      for (const [k, s] of Object.entries(v)) if (typeof s !== "string") throw fail(source, `__metadata__ value for '${k}' must be a string, got ${JSON.stringify(s)}`);
      metadata = v as Record<string, string>;
      continue;
    }
    const what = `tensor '${name}'`;
    if (!isObject(v)) throw fail(source, `${what}: entry must be an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: off } = v;
    if (dtype === undefined || shape === undefined || off === undefined) {
      const missing = ["dtype", "shape", "data_offsets"].filter((k) => v[k] === undefined);
      throw fail(source, `${what}: entry lacks ${missing.join(", ")}`);
    }
    if (!isDType(dtype)) throw fail(source, `${what}: unknown dtype ${JSON.stringify(dtype)} (expected one of ${ALL_DTYPES.join(", ")})`);
    if (!Array.isArray(shape) || !shape.every(isCount)) throw fail(source, `${what}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount)) throw fail(source, `${what}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(off)}`);
    const [begin, end] = off as number[];
    if (begin > end) throw fail(source, `${what}: data_offsets [${begin}, ${end}] has begin > end`);
    if (end > dataLen) throw fail(source, `${what}: data_offsets [${begin}, ${end}] out of range: the data section is ${dataLen} bytes`);
    let count: number;
    try {
      count = numel(shape as number[]);
    } catch {
      throw fail(source, `${what}: shape [${shape.join(",")}] overflows`);
    }
    const need = count * DTYPE_SIZE[dtype];
    if (need !== end - begin) throw fail(source, `${what}: shape [${shape.join(",")}] of ${dtype} needs ${need} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    list.push([name, { dtype, shape: shape as number[], begin, end }]);
  }

  // The data section must be covered exactly: sorted by offsets, each tensor starts where the previous ended.
  list.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let at = 0;
  let prev = "";
  for (const [name, e] of list) {
    if (e.begin < at) throw fail(source, `tensor '${name}': data_offsets [${e.begin}, ${e.end}] overlap tensor '${prev}' (which ends at ${at})`);
    if (e.begin > at) throw fail(source, `tensor '${name}': data_offsets [${e.begin}, ${e.end}] leave a ${e.begin - at}-byte hole after ${prev ? `tensor '${prev}'` : "the header"}`);
    at = e.end;
    prev = name;
  }
  if (at !== dataLen) throw fail(source, `${dataLen - at} trailing bytes after the last tensor (the data section is ${dataLen} bytes, tensors cover ${at})`);
  return { entries: new Map(list), metadata, dataStart: 8 + n };
}

/**
 * Decodes a whole safetensors file held in memory. F32 tensors are views into `bytes` when aligned
 * (so `bytes` must not be reused); every other dtype is decoded into new memory (see dtypes.ts).
 */
export function parseSafetensors(bytes: Uint8Array, source = "<safetensors buffer>"): SafetensorsFile {
  const header = parseSafetensorsHeader(bytes, source);
  const tensors: StateDict = new Map();
  for (const [name, e] of header.entries) {
    const count = (e.end - e.begin) / DTYPE_SIZE[e.dtype];
    const data = decodeTensorData(e.dtype, bytes, header.dataStart + e.begin, count, `${source}: tensor '${name}'`);
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data } as StateTensor);
  }
  return { tensors, metadata: header.metadata };
}

/** Reads a .safetensors file: the file is read once into one buffer and each tensor decoded from it. */
export function readSafetensors(file: string): SafetensorsFile {
  return parseSafetensors(readFileWhole(file), file);
}

export interface SaveSafetensorsOptions {
  /** On-disk type of the float tensors (default F32). Integer tensors keep their own dtype. */
  dtype?: "F32" | "F16" | "BF16";
}

export type TensorsIn = ReadonlyMap<string, StateTensor> | Readonly<Record<string, StateTensor>>;

// The Rust writer orders tensors by dtype, largest alignment first (its enum order), then by name,
// which keeps every tensor aligned; for a single-dtype file this is plain sorted-name order.
const RUST_DTYPE_ORDER: DType[] = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"];

/**
 * Serialises tensors to safetensors bytes (header chunk + one chunk per tensor, F32 data not copied).
 * `metadata: null` omits `__metadata__`.
 */
export function encodeSafetensors(
  tensors: TensorsIn, metadata: Record<string, string> | null = { format: "pt" }, options: SaveSafetensorsOptions = {},
): Uint8Array[] {
  const floatType: FloatDType = options.dtype ?? "F32";
  if (!["F32", "F16", "BF16"].includes(floatType)) throw new CheckpointError(`saveSafetensors: option dtype must be F32, F16 or BF16, got ${JSON.stringify(floatType)}`);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, StateTensor>);
  const items = entries.map(([name, t]) => {
    const what = `saveSafetensors: tensor '${name}'`;
    if (name === "__metadata__" || name === "") throw new CheckpointError(`${what}: this name is not allowed`);
    if (!t || !Array.isArray(t.shape) || !t.shape.every(isCount)) throw new CheckpointError(`${what}: shape must be an array of non-negative integers`);
    const isFloat = isFloat32Array(t.data);
    if (!isFloat && !isInt32Array(t.data)) throw new CheckpointError(`${what}: data must be a Float32Array or an Int32Array`);
    if (isFloat ? !isFloatDType(t.dtype) : !isIntDType(t.dtype)) throw new CheckpointError(`${what}: dtype ${t.dtype} does not match its ${isFloat ? "Float32Array" : "Int32Array"} data`);
    if (numel(t.shape) !== t.data.length) throw new CheckpointError(`${what}: shape [${t.shape.join(",")}] has ${numel(t.shape)} elements but data has ${t.data.length}`);
    const dtype: DType = isFloat ? floatType : t.dtype;
    return { name, shape: t.shape, dtype, bytes: encodeTensorData(t, dtype, what) };
  });
  items.sort((a, b) => RUST_DTYPE_ORDER.indexOf(b.dtype) - RUST_DTYPE_ORDER.indexOf(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const parts: string[] = [];
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== "string") throw new CheckpointError(`saveSafetensors: metadata value for '${k}' must be a string`);
    parts.push(`"__metadata__":${JSON.stringify(Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : 1))))}`);
  }
  let offset = 0;
  for (const it of items) {
    const end = offset + it.bytes.byteLength;
    parts.push(`${JSON.stringify(it.name)}:{"dtype":"${it.dtype}","shape":[${it.shape.join(",")}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  let header = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const pad = (8 - (header.length % 8)) % 8;
  if (pad) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  if (header.length > MAX_HEADER_SIZE) throw new CheckpointError(`saveSafetensors: header of ${header.length} bytes exceeds the ${MAX_HEADER_SIZE}-byte limit`);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  return [prefix, header, ...items.map((it) => it.bytes)];
}

/**
 * Writes `tensors` to `file` atomically, as Hugging Face's save_pretrained does: names unchanged,
 * `__metadata__` {format: "pt"} (merged into `metadata`), header space-padded to a multiple of 8.
 */
export function saveSafetensors(
  file: string, tensors: TensorsIn, metadata: Record<string, string> = {}, options: SaveSafetensorsOptions = {},
): void {
  writeFileAtomicSync(file, encodeSafetensors(tensors, { format: "pt", ...metadata }, options));
}

/** Promise version of saveSafetensors (the write does not block the event loop). */
export async function saveSafetensorsAsync(
  file: string, tensors: TensorsIn, metadata: Record<string, string> = {}, options: SaveSafetensorsOptions = {},
): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, { format: "pt", ...metadata }, options));
}
