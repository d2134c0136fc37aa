// The real checkpoints in ../shared/models: every tensor against PyTorch's decoding (sha256 of the
// float32/int32 bytes, sum, first elements; test/fixtures/golden_io.py), tied storages, the .bin and
// .safetensors of bert-tiny-mlm agreeing, and load timings. Re-saving them: io_resave.test.ts.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { StateDict, StateTensor, loadStateDict, readTorchBin } from "../lib/io";
import { describeShared, modelDir, timings } from "./shared";

interface Digest { dtype: string; shape: number[]; sha256: string; sum: number; first: number[] }
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "io.json"), "utf8")).checkpoints as
  Record<string, { tensors: Record<string, Digest>; shared: string[][] }>;

/** dtype, shape and bit-exact data (compared as bytes: jest's deep equality is slow on millions of elements). */
function expectSame(name: string, a: StateTensor | undefined, b: StateTensor | undefined): void {
  expect([name, a?.dtype, a?.shape, a?.data.constructor.name]).toEqual([name, b?.dtype, b?.shape, b?.data.constructor.name]);
  const bytes = (t: StateTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  expect([name, bytes(a!).equals(bytes(b!))]).toEqual([name, true]);
}

function expectGolden(sd: StateDict, key: string): void {
  const want = golden[key];
  expect([...sd.keys()].sort()).toEqual(Object.keys(want.tensors).sort());
  for (const [name, w] of Object.entries(want.tensors)) {
    const t = sd.get(name)!;
    expect([name, t.dtype, t.shape]).toEqual([name, w.dtype, w.shape]);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    expect([name, crypto.createHash("sha256").update(bytes).digest("hex")]).toEqual([name, w.sha256]);
    let sum = 0;
    for (let i = 0; i < t.data.length; i++) sum += t.data[i];
    expect(Math.abs(sum - w.sum)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(w.sum)));
    expect([name, [...t.data.subarray(0, 4)]]).toEqual([name, w.first.map((v) => (t.data instanceof Float32Array ? Math.fround(v) : v))]);
  }
  // Names PyTorch sees sharing one storage come back as one tensor.
  for (const group of want.shared) for (const other of group.slice(1)) expect(sd.get(other)).toBe(sd.get(group[0]));
}

describeShared("real checkpoints in shared/models", () => {
  const timed = timings("checkpoint load timings");

  test("bert-tiny-mlm: model.safetensors (F32) and pytorch_model.bin match PyTorch and each other", () => {
    const dir = modelDir("bert-tiny-mlm");
    const st = timed("bert-tiny-mlm/model.safetensors (17.7 MB, F32)", () => loadStateDict(dir));
    expect([st.format, st.files, st.metadata]).toEqual(["safetensors", [path.join(dir, "model.safetensors")], { format: "pt" }]);
    expectGolden(st.tensors, "bert-tiny-mlm/model.safetensors");
    const bin = timed("bert-tiny-mlm/pytorch_model.bin (17.8 MB, F32)", () => readTorchBin(path.join(dir, "pytorch_model.bin")));
    expectGolden(bin, "bert-tiny-mlm/pytorch_model.bin");

    for (const [name, t] of st.tensors) expectSame(name, bin.get(name), t);
    const extra = [...bin.keys()].filter((k) => !st.tensors.has(k)).sort();
    expect(extra).toEqual(["bert.embeddings.position_ids", "cls.predictions.decoder.bias", "cls.predictions.decoder.weight"]);
    expect(bin.get("cls.predictions.decoder.weight")).toBe(bin.get("bert.embeddings.word_embeddings.weight"));
    expect(bin.get("cls.predictions.decoder.bias")).toBe(bin.get("cls.predictions.bias"));
    const ids = bin.get("bert.embeddings.position_ids")!;
    expect([ids.dtype, ids.shape, ids.data instanceof Int32Array, [...ids.data].every((v, i) => v === i)]).toEqual(["I64", [1, 512], true, true]);
  });

  test("bert-mini-random: BF16 safetensors decode exactly", () => {
    const r = timed("bert-mini-random/model.safetensors (22.3 MB, BF16)", () => loadStateDict(modelDir("bert-mini-random")));
    expectGolden(r.tensors, "bert-mini-random/model.safetensors");
    expect(r.tensors.get("encoder.layer.3.attention.self.query.weight")!.shape).toEqual([256, 256]);
  });

  test("distilbert-small-random: F16 safetensors decode exactly", () => {
    const r = timed("distilbert-small-random/model.safetensors (8.8 MB, F16)", () => loadStateDict(modelDir("distilbert-small-random")));
    expectGolden(r.tensors, "distilbert-small-random/model.safetensors");
    expect(r.tensors.get("distilbert.transformer.layer.1.ffn.lin1.weight")!.shape).toEqual([512, 128]);
  });

  test("gpt2-small-random: pytorch_model.bin with Conv1D weights, uint8 attn.bias, masked_bias, tied lm_head", () => {
    const r = timed("gpt2-small-random/pytorch_model.bin (27.6 MB, F32+U8)", () => loadStateDict(modelDir("gpt2-small-random")));
    expect(r.format).toBe("pytorch");
    const sd = r.tensors;
    expectGolden(sd, "gpt2-small-random/pytorch_model.bin");
    expect(sd.get("transformer.h.0.attn.c_attn.weight")!.shape).toEqual([128, 384]); // Conv1D: [in, out]
    expect(sd.get("transformer.h.1.mlp.c_proj.weight")!.shape).toEqual([512, 128]);
    expect(sd.get("lm_head.weight")).toBe(sd.get("transformer.wte.weight"));
    const mask = sd.get("transformer.h.0.attn.bias")!;
    expect([mask.dtype, mask.shape]).toEqual(["U8", [1, 1, 256, 256]]);
    let lowerTriangular = true;
    for (let i = 0; i < 256; i++) for (let j = 0; j < 256; j++) if (mask.data[i * 256 + j] !== (j <= i ? 1 : 0)) lowerTriangular = false;
    expect(lowerTriangular).toBe(true);
    const mb = sd.get("transformer.h.0.attn.masked_bias")!;
    expect([mb.dtype, mb.shape, mb.data[0]]).toEqual(["F32", [], -10000]);
  });
});
