// Every config.json tunekit writes beside weights states the dtype the weights file holds, under both keys that
// name it: "dtype" (transformers 5 reads it first: PreTrainedConfig keeps `dtype` when both are given) and
// "torch_dtype" (what transformers 4 reads) — whatever the checkpoint it was loaded from said (transformers 5 writes
// "dtype", 4.x wrote "torch_dtype"). The truth is read from the safetensors header itself.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForMaskedLM } from "../lib/models/auto";
import { readSafetensors, saveSafetensors } from "../lib/io/safetensors";
import { TORCH_DTYPE_NAMES } from "../lib/io/config";
import { configToJson, parseConfig, readConfig, saveConfig } from "../lib/models/config_json";
import type { WeightsDtype } from "../lib/io/config";
import { applyLora, mergeAndUnload } from "../lib/peft/lora";
import { saveAdapter } from "../lib/peft/adapter_files";
import { Trainer } from "../lib/train/trainer";
import { ConfigError, TunekitError } from "../lib/errors";

const ROBERTA = path.join(__dirname, "fixtures", "models", "roberta-tiny-random");
const DTYPES: WeightsDtype[] = ["F32", "F16", "BF16"];
const quiet = { warn: null };
let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-dtype-")); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The one float dtype of every tensor in a safetensors file, read from its header (8-byte length, then JSON). */
function fileDtype(file: string): string {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string }>;
  const dtypes = new Set(Object.entries(header).filter(([k]) => k !== "__metadata__").map(([, t]) => t.dtype));
  expect(dtypes.size).toBe(1);
  return [...dtypes][0];
}

/** The config's dtype keys must both name what the weights file beside it holds. */
function expectTruth(dir: string, weights = "model.safetensors"): string {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  const held = TORCH_DTYPE_NAMES[fileDtype(path.join(dir, weights)) as WeightsDtype];
  expect(held).toBeDefined();
  expect({ dtype: cfg.dtype, torch_dtype: cfg.torch_dtype }).toEqual({ dtype: held, torch_dtype: held });
  // What each transformers reads: 5 takes dtype (torch_dtype only when dtype is absent), 4.x torch_dtype.
  expect([cfg.dtype ?? cfg.torch_dtype, cfg.torch_dtype]).toEqual([held, held]);
  return held;
}

/** A copy of the RoBERTa fixture whose config carries `keys` and whose weights are stored as `stored`. */
function source(name: string, keys: Record<string, string>, stored: WeightsDtype): string {
  const dir = path.join(tmp, `src-${name}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(ROBERTA)) if (f !== "config.json" && f !== "model.safetensors") fs.copyFileSync(path.join(ROBERTA, f), path.join(dir, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(ROBERTA, "config.json"), "utf8"));
  delete cfg.torch_dtype;
  delete cfg.dtype;
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...cfg, ...keys }, null, 2));
  saveSafetensors(path.join(dir, "model.safetensors"), readSafetensors(path.join(ROBERTA, "model.safetensors")).tensors, { format: "pt" }, { dtype: stored });
  return dir;
}

// Inputs as each transformers writes them: 5 ("dtype" only), 4.x ("torch_dtype" only), both (also disagreeing), neither.
const INPUTS: [string, Record<string, string>, WeightsDtype][] = [
  ["dtype-only", { dtype: "bfloat16" }, "BF16"],
  ["torch_dtype-only", { torch_dtype: "float16" }, "F16"],
  ["both", { dtype: "bfloat16", torch_dtype: "bfloat16" }, "BF16"],
  ["both-disagreeing", { dtype: "float16", torch_dtype: "bfloat16" }, "F16"],
  ["neither", {}, "F32"],
];

describe("savePretrained: config.json says what model.safetensors holds", () => {
  test.each(INPUTS)("loaded config with %s, saved as F32 / F16 / BF16", async (name, keys, stored) => {
    const src = source(name, keys, stored);
    expect(fileDtype(path.join(src, "model.safetensors"))).toBe(stored);
    const model = await AutoModelForMaskedLM.fromPretrained(src, quiet);
    for (const dtype of DTYPES) {
      const out = path.join(tmp, `out-${name}-${dtype}`);
      await model.savePretrained(out, { dtype });
      expect(expectTruth(out)).toBe(TORCH_DTYPE_NAMES[dtype]);
      // The default is F32, and the config says so.
      if (dtype === "F32") {
        const plain = path.join(tmp, `out-${name}-default`);
        await model.savePretrained(plain);
        expect(expectTruth(plain)).toBe("float32");
      }
      // Saved again from what was saved: still the truth.
      const again = path.join(tmp, `again-${name}-${dtype}`);
      await (await AutoModelForMaskedLM.fromPretrained(out, quiet)).savePretrained(again, { dtype: dtype === "F32" ? "BF16" : "F32" });
      expectTruth(again);
    }
  });

  test("a bad dtype is refused before anything is written", async () => {
    const model = await AutoModelForMaskedLM.fromPretrained(ROBERTA, quiet);
    const out = path.join(tmp, "bad");
    await expect(model.savePretrained(out, { dtype: "F64" as WeightsDtype })).rejects.toThrow(/savePretrained: dtype must be F32, F16 or BF16, got "F64"/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe("the other writers of config.json", () => {
  test("saveConfig / configToJson with the weights' dtype write both keys; without it the file's keys stay", () => {
    const c = parseConfig({ model_type: "bert", vocab_size: 99, dtype: "bfloat16" });
    for (const dtype of DTYPES) {
      const json = configToJson(c, { dtype });
      expect([json.dtype, json.torch_dtype]).toEqual([TORCH_DTYPE_NAMES[dtype], TORCH_DTYPE_NAMES[dtype]]);
      const dir = fs.mkdtempSync(path.join(tmp, "cfg-"));
      saveConfig(dir, c, { dtype });
      expect(readConfig(dir).raw).toMatchObject({ dtype: TORCH_DTYPE_NAMES[dtype], torch_dtype: TORCH_DTYPE_NAMES[dtype] });
    }
    expect(configToJson(c)).toEqual({ model_type: "bert", vocab_size: 99, dtype: "bfloat16" });
    expect(() => configToJson(c, { dtype: "float32" as WeightsDtype })).toThrow(ConfigError);
    expect(() => configToJson(c, { dtype: "float32" as WeightsDtype })).toThrow(/dtype must be one of F32, F16, BF16 \(the weights file's\), got "float32"/);
  });

  test("a Trainer checkpoint of a model loaded from BF16 says float32, as its weights are", async () => {
    const model = await AutoModelForMaskedLM.fromPretrained(source("trainer", { dtype: "bfloat16" }, "BF16"), quiet);
    const trainer = new Trainer({ model, train: [{}], collate: (f: object[]) => f as never, progress: false });
    const dir = path.join(tmp, "checkpoint-1");
    trainer.saveCheckpoint(dir);
    expect(expectTruth(dir)).toBe("float32");
  });

  test("a merged LoRA model saves like any model; the adapter's files carry no dtype key and F32 factors", async () => {
    const model = await AutoModelForMaskedLM.fromPretrained(source("lora", { dtype: "bfloat16", torch_dtype: "bfloat16" }, "BF16"), quiet);
    applyLora(model, { r: 2, targetModules: ["query", "value"] });
    const adapter = path.join(tmp, "adapter");
    saveAdapter(model, adapter);
    const ac = JSON.parse(fs.readFileSync(path.join(adapter, "adapter_config.json"), "utf8"));
    expect([ac.dtype, ac.torch_dtype]).toEqual([undefined, undefined]);
    expect(fileDtype(path.join(adapter, "adapter_model.safetensors"))).toBe("F32");
    await expect(model.savePretrained(path.join(tmp, "unmerged"))).rejects.toThrow(TunekitError);
    const merged = mergeAndUnload(model);
    for (const dtype of DTYPES) {
      const out = path.join(tmp, `merged-${dtype}`);
      await merged.savePretrained(out, { dtype });
      expect(expectTruth(out)).toBe(TORCH_DTYPE_NAMES[dtype]);
    }
  });
});
