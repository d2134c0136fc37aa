// Finds and loads the weights of a Hugging Face checkpoint directory, in transformers' order of
// preference: model.safetensors, sharded safetensors, pytorch_model.bin, sharded pytorch_model.bin.
// Planning (which files, shard index checks) is separate from reading, so the sync and the async
// loader share everything but the file reads.
import * as fs from "fs";
import * as path from "path";
import { CheckpointError } from "../errors";
import { readFileWhole, readFileWholeAsync } from "./atomic";
import { readJson } from "./json_safe";
import { StateDict } from "./dtypes";
import { parseSafetensors } from "./safetensors";
import { TorchBinOptions, parseTorchBin } from "./torch_bin";

export const SAFETENSORS_NAME = "model.safetensors";
export const SAFETENSORS_INDEX_NAME = "model.safetensors.index.json";
export const BIN_NAME = "pytorch_model.bin";
export const BIN_INDEX_NAME = "pytorch_model.bin.index.json";

export type CheckpointFormat = "safetensors" | "pytorch";

export interface LoadedStateDict {
  tensors: StateDict;
  format: CheckpointFormat;
  /** Absolute paths of the files read: the weights file, or the index followed by its shards. */
  files: string[];
  /** `__metadata__` of a single safetensors file (null otherwise, or when it has none). */
  metadata: Record<string, string> | null;
}

export type LoadStateDictOptions = TorchBinOptions;

interface Plan {
  index: string | null;
  /** Weight files to read; for a sharded checkpoint, with the tensor names the index assigns to each. */
  files: { file: string; format: CheckpointFormat; names: Set<string> | null }[];
}

/**
 * Loads the weights in `dirOrFile`: a checkpoint directory (see the file order above), or directly
 * a .safetensors / .bin file or a *.index.json. Tensors come back under their names in the file;
 * see dtypes.ts for the in-memory types and which tensors share memory.
 */
export function loadStateDict(dirOrFile: string, options: LoadStateDictOptions = {}): LoadedStateDict {
  const p = plan(dirOrFile);
  return assemble(p, p.files.map((f) => decode(f.file, f.format, readFileWhole(f.file), options)));
}

/** loadStateDict with the file reads off the JS thread (decoding still runs on it). */
export async function loadStateDictAsync(dirOrFile: string, options: LoadStateDictOptions = {}): Promise<LoadedStateDict> {
  const p = plan(dirOrFile);
  const parts = [];
  for (const f of p.files) parts.push(decode(f.file, f.format, await readFileWholeAsync(f.file), options));
  return assemble(p, parts);
}

function formatOf(file: string): CheckpointFormat {
  if (file.endsWith(".safetensors")) return "safetensors";
  if (file.endsWith(".bin") || file.endsWith(".pt") || file.endsWith(".pth")) return "pytorch";
  throw new CheckpointError(`${file}: unknown weights file type (expected .safetensors, .bin or .index.json)`);
}

function plan(dirOrFile: string): Plan {
  const at = path.resolve(dirOrFile);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(at);
  } catch {
    throw new CheckpointError(`${at}: no such checkpoint directory or file`);
  }
  let file = at;
  if (stat.isDirectory()) {
    const found = [SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME, BIN_NAME, BIN_INDEX_NAME].map((n) => path.join(at, n)).find((f) => fs.existsSync(f));
    if (!found) throw new CheckpointError(`${at}: no weights found; expected one of ${SAFETENSORS_NAME}, ${SAFETENSORS_INDEX_NAME}, ${BIN_NAME}, ${BIN_INDEX_NAME}`);
    file = found;
  }
  if (file.endsWith(".index.json")) return planSharded(file);
  return { index: null, files: [{ file, format: formatOf(file), names: null }] };
}

/** Checks a shard index ({metadata, weight_map: {tensor: shard file}}) and that every shard it names exists. */
function planSharded(indexFile: string): Plan {
  const fail = (msg: string) => new CheckpointError(`${indexFile}: ${msg}`);
  const json = readJson(indexFile, indexFile, CheckpointError);
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw fail("has no weight_map object");
  const byShard = new Map<string, Set<string>>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== "string" || shard !== path.basename(shard) || shard === "." || shard === "..") {
      throw fail(`weight_map['${tensor}'] must be a file name in the same directory, got ${JSON.stringify(shard)}`);
    }
    if (!byShard.has(shard)) byShard.set(shard, new Set());
    byShard.get(shard)!.add(tensor);
  }
  if (byShard.size === 0) throw fail("weight_map is empty");
  const dir = path.dirname(indexFile);
  const missing = [...byShard.keys()].filter((s) => !fs.existsSync(path.join(dir, s)));
  if (missing.length) throw fail(`missing shard file${missing.length > 1 ? "s" : ""} ${missing.join(", ")} (listed in weight_map)`);
  const files = [...byShard].sort(([a], [b]) => (a < b ? -1 : 1)).map(([shard, names]) => ({ file: path.join(dir, shard), format: formatOf(shard), names }));
  if (new Set(files.map((f) => f.format)).size > 1) throw fail("mixes safetensors and pytorch shards");
  return { index: indexFile, files };
}

function decode(file: string, format: CheckpointFormat, bytes: Uint8Array, options: LoadStateDictOptions) {
  return format === "safetensors" ? parseSafetensors(bytes, file) : { tensors: parseTorchBin(bytes, file, options), metadata: null };
}

function assemble(p: Plan, parts: { tensors: StateDict; metadata: Record<string, string> | null }[]): LoadedStateDict {
  const format = p.files[0].format;
  if (!p.index) return { tensors: parts[0].tensors, format, files: [p.files[0].file], metadata: parts[0].metadata };
  const tensors: StateDict = new Map();
  p.files.forEach(({ file, names }, i) => {
    const shard = path.basename(file);
    for (const [name, t] of parts[i].tensors) {
      if (!names!.has(name)) throw new CheckpointError(`${p.index}: shard ${shard} holds '${name}', which weight_map does not assign to it`);
      tensors.set(name, t);
    }
    for (const name of names!) {
      if (!parts[i].tensors.has(name)) throw new CheckpointError(`${p.index}: weight_map assigns '${name}' to ${shard}, but that shard does not hold it`);
    }
  });
  return { tensors, format, files: [p.index, ...p.files.map((f) => f.file)], metadata: null };
}
