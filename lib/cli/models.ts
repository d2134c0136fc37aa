// Where models come from: a checkpoint folder the user names, or the embedded encoder that ships in
// the package (models/brown-bert, built by scripts/build-embedded-model.mjs).
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";

import { EMBEDDED_MODEL } from "../models/embedded";

export { EMBEDDED_MODEL };

/** "embedded" (or nothing) → the embedded model; otherwise a folder with a config.json. */
export function resolveModel(m: string | undefined, flag = "--model"): string {
  const dir = !m || m === "embedded" ? EMBEDDED_MODEL : path.resolve(m);
  if (!fs.existsSync(dir)) throw new TunekitError(`${flag}: no such folder '${m ?? dir}'`);
  if (!fs.statSync(dir).isDirectory()) throw new TunekitError(`${flag}: '${m}' is a file; expected a checkpoint folder (config.json + weights + tokenizer files)`);
  if (!fs.existsSync(path.join(dir, "config.json"))) {
    const hint = fs.existsSync(path.join(dir, "adapter_config.json")) ? " (it is a LoRA adapter folder: use the folder above it, where tunekit saved the merged model)" : "";
    throw new TunekitError(`${flag}: '${m}' has no config.json; expected a Hugging Face checkpoint folder${hint}`);
  }
  return dir;
}
