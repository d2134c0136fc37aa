// Finds and loads the weights of a Hugging Face checkpoint directory, in transformers' order of
// preference: model.safetensors, sharded safetensors, pytorch_model.bin, sharded pytorch_model.bin.
import * as fs from "fs";
import * as path from "path";
import { CheckpointError } from "../errors";
import { StateDict } from "./dtypes";
import { readSafetensors } from "./safetensors";
import { TorchBinOptions, readTorchBin } from "./torch_bin";

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

/**
 * Loads the weights in `dirOrFile`: a checkpoint directory (see the file order above), or directly
 * a .safetensors / .bin file or a *.index.json. Tensors come back under their names in the file.
 */
export function loadStateDict(dirOrFile: string, options: LoadStateDictOptions = {}): LoadedStateDict {
  const at = path.resolve(dirOrFile);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(at);
  } catch {
    throw new CheckpointError(`${at}: no such checkpoint directory or file`);
  }
  if (stat.isDirectory()) {
    for (const name of [SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME, BIN_NAME, BIN_INDEX_NAME]) {
      const file = path.join(at, name);
      if (fs.existsSync(file)) return loadFile(file, options);
    }
    throw new CheckpointError(`${at}: no weights found; expected one of ${SAFETENSORS_NAME}, ${SAFETENSORS_INDEX_NAME}, ${BIN_NAME}, ${BIN_INDEX_NAME}`);
  }
  return loadFile(at, options);
}

function loadFile(file: string, options: LoadStateDictOptions): LoadedStateDict {
  if (file.endsWith(".index.json")) return loadSharded(file, options);
  if (file.endsWith(".safetensors")) {
    const { tensors, metadata } = readSafetensors(file);
    return { tensors, format: "safetensors", files: [file], metadata };
  }
  if (file.endsWith(".bin") || file.endsWith(".pt") || file.endsWith(".pth")) {
    return { tensors: readTorchBin(file, options), format: "pytorch", files: [file], metadata: null };
  }
  throw new CheckpointError(`${file}: unknown weights file type (expected .safetensors, .bin or .index.json)`);
}

/** Reads a shard index ({metadata, weight_map: {tensor: shard file}}) and loads every shard it names. */
function loadSharded(indexFile: string, options: LoadStateDictOptions): LoadedStateDict {
  const fail = (msg: string) => new CheckpointError(`${indexFile}: ${msg}`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexFile, "utf8"));
  } catch (e) {
    throw fail(`not a readable JSON shard index (${(e as Error).message})`);
  }
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

  const tensors: StateDict = new Map();
  const files = [indexFile];
  let format: CheckpointFormat | null = null;
  for (const [shard, names] of [...byShard].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const loaded = loadFile(path.join(dir, shard), options);
    if (format && loaded.format !== format) throw fail("mixes safetensors and pytorch shards");
    format = loaded.format;
    files.push(loaded.files[0]);
    for (const [name, t] of loaded.tensors) {
      if (!names.has(name)) throw fail(`shard ${shard} holds '${name}', which weight_map does not assign to it`);
      tensors.set(name, t);
    }
    for (const name of names) if (!loaded.tensors.has(name)) throw fail(`weight_map assigns '${name}' to ${shard}, but that shard does not hold it`);
  }
  return { tensors, format: format!, files, metadata: null };
}
