// Checkpoint IO: safetensors, restricted pytorch_model.bin reader, sharded checkpoints, config.json as a file
// (its meaning per model_type: lib/models/config_json.ts).
export * from "./dtypes";
export { writeFileAtomic, writeFileAtomicSync, readFileWhole, readFileWholeAsync } from "./atomic";
export type { Chunks } from "./atomic";
export * from "./safetensors";
export { ZipArchive } from "./zip";
export type { ZipEntry } from "./zip";
export { parseTorchBin, readTorchBin } from "./torch_bin";
export type { TorchBinOptions } from "./torch_bin";
export * from "./state_dict";
export * from "./config";
