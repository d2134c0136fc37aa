// Re-saving checkpoints: tunekit's safetensors writer reproduces the files Hugging Face wrote (the real
// checkpoints in ../shared/models) byte for byte in each dtype, and a pytorch_model.bin written by torch.save
// (test/fixtures/models/gpt2-tiny-random) converts to safetensors losslessly.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { StateTensor, readSafetensors, readTorchBin, saveSafetensors } from "../lib/io";
import { modelDir, testShared, timings } from "./shared";
import { fixtureModel } from "./helpers";

/** dtype, shape and bit-exact data (compared as bytes: jest's deep equality is slow on millions of elements). */
function expectSame(name: string, a: StateTensor | undefined, b: StateTensor | undefined): void {
  expect([name, a?.dtype, a?.shape, a?.data.constructor.name]).toEqual([name, b?.dtype, b?.shape, b?.data.constructor.name]);
  const bytes = (t: StateTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  expect([name, bytes(a!).equals(bytes(b!))]).toEqual([name, true]);
}

describe("re-saving checkpoints", () => {
  const timed = timings("checkpoint save timings");
  let tmp: string;
  beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-resave-")); });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const [model, dtype] of [["bert-tiny-mlm", "F32"], ["bert-mini-random", "BF16"], ["distilbert-small-random", "F16"]] as const) testShared(
    `${model} (../shared/models) re-saved as ${dtype} is byte-identical to the file Hugging Face wrote`, () => {
    const src = path.join(modelDir(model), "model.safetensors");
    const { tensors, metadata } = readSafetensors(src);
    const out = path.join(tmp, `${model}.safetensors`);
    timed(`save ${model} as ${dtype}`, () => saveSafetensors(out, tensors, metadata ?? {}, { dtype }));
    expect(fs.readFileSync(out).equals(fs.readFileSync(src))).toBe(true);
  });

  test("a torch.save .bin (GPT-2: Conv1D, uint8 masks, tied lm_head) re-saved as safetensors reads back bit-exact", () => {
    const bin = readTorchBin(path.join(fixtureModel("gpt2-tiny-random"), "pytorch_model.bin"));
    expect(bin.get("transformer.h.0.attn.bias")?.dtype).toBe("U8");
    const out = path.join(tmp, "gpt2.safetensors");
    timed("save gpt2-tiny-random (from .bin) as F32", () => saveSafetensors(out, bin));
    const back = readSafetensors(out).tensors;
    for (const [name, t] of bin) expectSame(name, back.get(name), t);
  });
});
