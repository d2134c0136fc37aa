// fromPretrained / savePretrained: what tunekit writes has HF's names, shapes and files, reloads to
// identical outputs, and bad checkpoints are refused with one clear error each. On the embedded
// models/brown-bert (F16 safetensors) and test/fixtures/models/gpt2-tiny-random (a torch.save .bin).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM } from "../lib/models/auto";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { readSafetensors, saveSafetensors } from "../lib/io/safetensors";
import { loadStateDict } from "../lib/io/state_dict";
import { CheckpointError, ConfigError } from "../lib/errors";
import { noGrad } from "../lib/tensor/autograd";
import { BROWN_BERT, fixtureModel } from "./helpers";

/** Bit-for-bit equality of two typed arrays (jest's toEqual is far too slow on millions of floats). */
const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const sameBits = (a: ArrayBufferView, b: ArrayBufferView) => bytes(a).equals(bytes(b));

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-pre-"));
const quiet = { warn: null };
const batch = { inputIds: Int32Array.from([2, 8064, 936, 3, 0, 0, 2, 700, 701, 702, 703, 3]), attentionMask: [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1], batchSize: 2, seqLen: 6 };

function copyDir(src: string, dst: string) {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dst, f));
}

describe("savePretrained / fromPretrained", () => {
  test("BERT MLM: HF file layout, tied decoder omitted, identical logits after reload, tokenizer saved too", async () => {
    const src = BROWN_BERT;
    const model = await AutoModelForMaskedLM.fromPretrained(src, quiet);
    const tok = await AutoTokenizer.fromPretrained(src);
    const out = tmp();
    await model.savePretrained(out, { tokenizer: tok });
    expect(fs.readdirSync(out).sort()).toEqual(expect.arrayContaining(["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]));
    const cfg = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
    expect(cfg.architectures).toEqual(["BertForMaskedLM"]);
    expect(cfg.model_type).toBe("bert");
    const file = readSafetensors(path.join(out, "model.safetensors"));
    expect(file.metadata).toEqual({ format: "pt" });
    const original = readSafetensors(path.join(src, "model.safetensors"));
    // Same key set as transformers' own save_pretrained (pooler included: BertForMaskedLM has none, so it is dropped).
    const want = [...original.tensors.keys()].filter((k) => !k.startsWith("bert.pooler.")).sort();
    expect([...file.tensors.keys()].sort()).toEqual(want);
    for (const k of want) expect([k, sameBits(file.tensors.get(k)!.data, original.tensors.get(k)!.data)]).toEqual([k, true]);
    const again = await AutoModelForMaskedLM.fromPretrained(out, quiet);
    const [a, b] = noGrad(() => [model.forward(batch).logits, again.forward(batch).logits]);
    expect(sameBits(a.toHost(), b.toHost())).toBe(true);
    const tok2 = await AutoTokenizer.fromPretrained(out);
    expect((await tok2.encode("Hello world")).input_ids).toEqual((await tok.encode("Hello world")).input_ids);
  });

  test("GPT-2: Conv1D weights go back to [in, out], lm_head stays tied and unsaved, reload is exact", async () => {
    const src = fixtureModel("gpt2-tiny-random");
    const model = await AutoModelForCausalLM.fromPretrained(src, quiet);
    const out = tmp();
    model.savePretrained(out);
    const file = readSafetensors(path.join(out, "model.safetensors"));
    expect(file.tensors.get("transformer.h.0.attn.c_attn.weight")!.shape).toEqual([16, 48]);
    expect(file.tensors.has("lm_head.weight")).toBe(false);
    const bin = loadStateDict(src).tensors;
    expect(sameBits(file.tensors.get("transformer.h.1.mlp.c_fc.weight")!.data, bin.get("transformer.h.1.mlp.c_fc.weight")!.data)).toBe(true);
    const again = await AutoModelForCausalLM.fromPretrained(out, quiet);
    const x = { inputIds: Int32Array.from([39, 68, 297, 78, 556]), attentionMask: [1, 1, 1, 1, 0], batchSize: 1, seqLen: 5 };
    const [a, b] = noGrad(() => [model.forward(x).logits, again.forward(x).logits]);
    expect(sameBits(a.toHost(), b.toHost())).toBe(true);
  });

  test("a head missing from the checkpoint is initialised and reported; unused weights are reported", async () => {
    const warnings: string[] = [];
    // A BertModel checkpoint (no "bert." prefix, no MLM head), as bert-mini ships: brown-bert's body saved that way.
    const body = tmp();
    const st = readSafetensors(path.join(BROWN_BERT, "model.safetensors")).tensors;
    saveSafetensors(path.join(body, "model.safetensors"), new Map([...st].filter(([k]) => k.startsWith("bert.")).map(([k, t]) => [k.slice(5), t])), { format: "pt" });
    const cfg = JSON.parse(fs.readFileSync(path.join(BROWN_BERT, "config.json"), "utf8"));
    fs.writeFileSync(path.join(body, "config.json"), JSON.stringify({ ...cfg, architectures: ["BertModel"] }));
    const mlm = await AutoModelForMaskedLM.fromPretrained(body, { warn: (m) => warnings.push(m) });
    expect(mlm.loadReport!.initialized.sort()).toEqual([
      "cls.predictions.bias", "cls.predictions.transform.LayerNorm.bias", "cls.predictions.transform.LayerNorm.weight",
      "cls.predictions.transform.dense.bias", "cls.predictions.transform.dense.weight",
    ]);
    expect(warnings.join("\n")).toMatch(/Some weights of BertForMaskedLM were not in .* and are newly initialized: .*cls\.predictions\.transform\.dense\.weight/);
    const base = await AutoModel.fromPretrained(BROWN_BERT, { warn: (m) => warnings.push(m) });
    expect(base.loadReport!.unexpected).toEqual(expect.arrayContaining(["cls.predictions.bias", "cls.predictions.transform.dense.weight"]));
    expect(warnings.join("\n")).toMatch(/were not used by BertModel: .*cls\.predictions\.bias/);
  });

  test("bad checkpoints: one clear error each", async () => {
    const src = BROWN_BERT;
    // Unknown model_type.
    const d1 = tmp();
    copyDir(src, d1);
    const cfg = JSON.parse(fs.readFileSync(path.join(d1, "config.json"), "utf8"));
    fs.writeFileSync(path.join(d1, "config.json"), JSON.stringify({ ...cfg, model_type: "t5" }));
    await expect(AutoModel.fromPretrained(d1, quiet)).rejects.toThrow(ConfigError);
    await expect(AutoModel.fromPretrained(d1, quiet)).rejects.toThrow(/model_type 't5'.*bert, distilbert, roberta, gpt2, llama, mistral, qwen2, qwen3/);
    // A weight with the wrong shape for the config.
    fs.writeFileSync(path.join(d1, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 256 }));
    await expect(AutoModel.fromPretrained(d1, quiet)).rejects.toThrow(CheckpointError);
    await expect(AutoModel.fromPretrained(d1, quiet)).rejects.toThrow(
      `${path.join(d1, "model.safetensors")}: weight 'bert.encoder.layer.0.intermediate.dense.weight' has shape [512, 128], expected [256, 128] for this model`,
    );
    // A required body weight missing.
    const d2 = tmp();
    copyDir(src, d2);
    fs.rmSync(path.join(d2, "pytorch_model.bin"), { force: true });
    const t = readSafetensors(path.join(src, "model.safetensors")).tensors;
    t.delete("bert.encoder.layer.1.output.dense.bias");
    saveSafetensors(path.join(d2, "model.safetensors"), t);
    await expect(AutoModelForMaskedLM.fromPretrained(d2, quiet)).rejects.toThrow(/required weight 'bert\.encoder\.layer\.1\.output\.dense\.bias' is missing/);
    // No weights at all.
    const d3 = tmp();
    fs.copyFileSync(path.join(src, "config.json"), path.join(d3, "config.json"));
    await expect(AutoModel.fromPretrained(d3, quiet)).rejects.toThrow(CheckpointError);
  });

  test("input checks name what was wrong", async () => {
    const model = await AutoModel.fromPretrained(BROWN_BERT, quiet);
    expect(() => model.forward({ inputIds: Int32Array.from([1, 2, 3]), batchSize: 2, seqLen: 2 })).toThrow(/inputIds has 3 ids, expected batchSize × seqLen = 4/);
    expect(() => model.forward({ inputIds: Int32Array.from([1, 8192]), batchSize: 1, seqLen: 2 })).toThrow(/input id 8192 at position 1 is outside the vocabulary \(size 8192\)/);
    expect(() => model.forward({ inputIds: new Int32Array(129), batchSize: 1, seqLen: 129 })).toThrow(/sequence length 129 exceeds max_position_embeddings 128/);
  });
});
