// The one loader writes into device-resident parameters: an adapter file loaded into a model on the
// device gives the CPU's logits (before, adapter files wrote into a host copy of each device parameter,
// so modules_to_save kept their old values there without a word), and so does a resumed state dict.
// Runs the emulator build of the CUDA library (npm run build:cuda-emu) without a GPU, in a child process.
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";

const emulator = path.join(__dirname, "..", "build-cuda-emu", "plain", "libtunekit_cuda.so");
const lib = process.env.TUNEKIT_CUDA_LIB || emulator;
const have = fs.existsSync(lib);
const suite = have || process.env.CI ? describe : describe.skip;

suite(have ? "loading into parameters on the device" : `loading into parameters on the device [skipped: no CUDA library at ${lib}: npm run build:cuda-emu]`, () => {
  let r: { error?: string; adapter: { onDevice: boolean; maxDiff: number; changed: number }; resume: { maxDiff: number } };
  beforeAll(() => {
    if (!have) throw new Error(`no CUDA library at ${lib} (CI must build it)`);
    const out = execFileSync(process.execPath, [path.join(__dirname, "loader_device-run.cjs")], { env: { ...process.env, TUNEKIT_CUDA_LIB: lib }, encoding: "utf8", timeout: 600_000 });
    r = JSON.parse(out.trim().split("\n").pop()!);
    if (r.error) throw new Error(r.error);
  }, 660_000);
  test("an adapter (LoRA factors, a Conv1D module to save, the score head) loaded on the device gives the CPU's logits", () => {
    expect(r.adapter.onDevice).toBe(true);
    expect(r.adapter.changed).toBeGreaterThan(1e-3); // the adapter changes the logits at all
    expect(r.adapter.maxDiff).toBeLessThan(1e-5);
  });
  test("a state dict resumed into a model on the device gives the trained model's logits", () => {
    expect(r.resume.maxDiff).toBeLessThan(1e-5);
  });
});
