// `tunekit train --task sft`: JSON lines of prompt/completion in, a model that answers held-out prompts
// out (exact match of greedy generation in the result), LoRA on every linear layer of the body saved
// as PEFT's adapter, and the flags that do not fit the task refused before any work.
import * as fs from "fs";
import * as path from "path";
import { json, scratch, tunekit, expectUserError, root } from "./cli_helpers";

const tmp = scratch("sft-cli");
const GPT2 = path.join(root, "test/fixtures/models/gpt2-tiny-random");
const data = path.join(tmp, "parity.jsonl");
const numbers = Array.from({ length: 200 }, (_, i) => 100 + i * 3 + (i % 7));
fs.writeFileSync(data, numbers.map((n) => JSON.stringify({ prompt: `Is ${n} odd or even?\nA:`, completion: n % 2 ? " odd" : " even" })).join("\n") + "\n");
const quick = ["--no-progress", "--no-report", "--batch-size", "4"];

test("full fine-tuning with --packing learns the made-for-the-test task: exact match on the 40 held-out prompts", () => {
  const out = path.join(tmp, "full");
  const r = json(tmp, ["train", "--task", "sft", "--model", GPT2, "--data", data, "--validation", "40", "--packing", "--lr", "1e-2", "--epochs", "30", "--out", out, ...quick]);
  expect(r.features).toEqual({ train: expect.any(Number), validation: 40 });
  expect(r.features.train).toBeLessThan(160 / 2); // packed rows
  expect(r.analysis.generations).toHaveLength(40);
  expect(r.analysis.exactMatch).toBeGreaterThanOrEqual(0.9);
  expect(fs.existsSync(path.join(out, "model.safetensors"))).toBe(true);
}, 120_000);

test("--method lora: every linear layer of the body, the adapter in PEFT's format beside the merged model", () => {
  const out = path.join(tmp, "lora");
  const r = json(tmp, ["train", "--task", "sft", "--model", GPT2, "--data", data, "--validation", "40", "--method", "lora", "--epochs", "1", "--out", out, ...quick]);
  expect(r.method.method).toBe("lora");
  const cfg = JSON.parse(fs.readFileSync(path.join(out, "adapter", "adapter_config.json"), "utf8"));
  expect(cfg).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM" });
  expect([...cfg.target_modules].sort()).toEqual(["c_attn", "c_fc", "c_proj"]);
  expect(typeof r.analysis.exactMatch).toBe("number");
}, 120_000);

test("flags that do not fit --task sft are refused by name before any work", () => {
  expectUserError(tunekit(tmp, "train", "--task", "sft", "--data", data), /--task sft trains a causal language model; .* is a bert model/);
  expectUserError(tunekit(tmp, "train", "--task", "sft", "--model", GPT2, "--data", data, "--method", "frozen"), /--method frozen: a causal LM's head is its \(tied\) embedding table/);
  expectUserError(tunekit(tmp, "train", "--task", "classification", "--model", GPT2, "--data", data, "--packing"), /--packing applies to --task sft/);
  expectUserError(tunekit(tmp, "train", "--task", "sft", "--model", GPT2, "--data", data, "--text", "prompt"), /--text names a column of a table file; --task sft reads JSON lines/);
  const bad = path.join(tmp, "bad.jsonl");
  fs.writeFileSync(bad, JSON.stringify({ prompt: "p", completion: "c" }) + "\n" + JSON.stringify({ question: "q" }) + "\n");
  expectUserError(tunekit(tmp, "train", "--task", "sft", "--model", GPT2, "--data", bad), new RegExp(`bad.jsonl:2: expected \\{"prompt", "completion"\\}`));
});
