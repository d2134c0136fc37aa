// The device path end to end — model.to("cuda"), training steps of BERT, GPT-2 and LoRA, inference
// through a pipeline, saving from the device and loading on the CPU, the bytes that cross per step, an
// out-of-memory error, repeatability — against the CPU. Without a GPU the CUDA library is the CPU
// emulator build of cuda/*.cu (`npm run build:cuda-emu`: the real kernels, run on the CPU), so CI
// tests the device logic on every run and a first real GPU run tests speed, not logic. The checks run
// in a child process (test/device-run.cjs) because the CUDA library is opened once per process.
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";

const root = path.join(__dirname, "..");
const emulator = path.join(root, "build-cuda-emu", "plain", "libtunekit_cuda.so");
const lib = process.env.TUNEKIT_CUDA_LIB || emulator;
const have = fs.existsSync(lib);
const reason = `no CUDA library at ${lib}: run npm run build:cuda-emu (the emulator build) or set TUNEKIT_CUDA_LIB`;

interface Results {
  error?: string;
  device: string;
  bert: { lossesCpu: number[]; lossesCuda: number[]; maxWeightDiff: number; onDevice: boolean };
  gpt2: { lossesCpu: number[]; lossesCuda: number[]; maxWeightDiff: number };
  lora: { lossesCpu: number[]; lossesCuda: number[]; maxWeightDiff: number };
  decoders: Record<string, { lossesCpu: number[]; lossesCuda: number[]; maxGradRelDiff: number; greedy: { cpu: number[][]; cuda: number[][]; golden: number[][]; maxLogitDiff: number } }>;
  inference: { maxScoreDiff: number; reloadedMaxScoreDiff: number };
  transfers: { h2d: number; d2h: number; batchBytes: number; logitsBytes: number; parameterBytes: number };
  oom: { message: string; worksAfter: boolean };
  checkOps: { op: string; name: string; maxAbsDiff: number; refMaxAbs: number; tolerance: number }[];
  repeat: { sameLosses: boolean; maxWeightDiff: number };
  fp16: { precision: string; losses: number[]; lossScale: number | null; onCpu: string };
  bf16: { cpuBf16: boolean; precision: string; lossesF32: number[]; lossesBf16: number[]; processPrecisionAfter: string };
}

const suite = have ? describe : process.env.CI ? describe : describe.skip;
suite(have ? "the device path (CUDA backend)" : `the device path [skipped: ${reason}]`, () => {
  let r: Results;
  beforeAll(() => {
    if (!have) throw new Error(`${reason} (CI must build it)`);
    const out = execFileSync(process.execPath, [path.join(__dirname, "device-run.cjs")], {
      env: { ...process.env, TUNEKIT_CUDA_LIB: lib }, encoding: "utf8", maxBuffer: 1 << 24, timeout: 600_000,
    });
    r = JSON.parse(out.trim().split("\n").pop()!);
    if (r.error) throw new Error(r.error);
  }, 660_000);

  test("every op's CPU-vs-CUDA cases agree within each case's tolerance, and every CUDA op has a case", () => {
    expect(r.checkOps.length).toBeGreaterThan(100);
    const bad = r.checkOps.filter((c) => !(c.maxAbsDiff <= c.tolerance * Math.max(1, c.refMaxAbs)));
    expect(bad).toEqual([]);
  });
  const close = (a: number[], b: number[], tol: number) => a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(tol));
  // Weights after two AdamW steps: Adam divides by √v, so a gradient that differs in its last bits moves
  // a weight by up to a fraction of lr (1e-3); the losses agree to float precision.
  test("BERT fine-tuning steps equal the CPU's (dropout on), with every parameter on the device", () => {
    expect(r.bert.onDevice).toBe(true);
    close(r.bert.lossesCuda, r.bert.lossesCpu, 1e-5);
    expect(r.bert.maxWeightDiff).toBeLessThan(1e-4);
  });
  test("GPT-2 causal-LM steps equal the CPU's", () => {
    close(r.gpt2.lossesCuda, r.gpt2.lossesCpu, 1e-5);
    expect(r.gpt2.maxWeightDiff).toBeLessThan(1e-4);
  });
  test("LoRA steps equal the CPU's", () => {
    close(r.lora.lossesCuda, r.lora.lossesCpu, 1e-5);
    expect(r.lora.maxWeightDiff).toBeLessThan(1e-4);
  });
  test("Llama, Mistral, Qwen2, Qwen3: causal-LM gradients and steps equal the CPU's; greedy through the KV cache gives the CPU's (and PyTorch's) tokens", () => {
    expect(Object.keys(r.decoders).sort()).toEqual(["llama-gqa", "llama3-rope-bias", "mistral-window", "qwen2-bias", "qwen3-qknorm"]);
    for (const [name, d] of Object.entries(r.decoders)) {
      close(d.lossesCuda, d.lossesCpu, 1e-5);
      expect([name, d.maxGradRelDiff < 1e-4]).toEqual([name, true]);
      expect([name, d.greedy.cuda]).toEqual([name, d.greedy.cpu]);
      expect([name, d.greedy.cpu]).toEqual([name, d.greedy.golden]);
      expect([name, d.greedy.maxLogitDiff < 1e-4]).toEqual([name, true]);
    }
  });
  test("inference through classify() and a model saved from the device give the CPU's scores", () => {
    expect(r.inference.maxScoreDiff).toBeLessThan(1e-5);
    expect(r.inference.reloadedMaxScoreDiff).toBeLessThan(1e-5);
  });
  test("a training step copies only the batch in and the loss and logits out", () => {
    expect(r.transfers.h2d).toBe(r.transfers.batchBytes);
    expect(r.transfers.d2h).toBe(4 + r.transfers.logitsBytes);
  });
  test("running out of device memory is a TunekitError that says what, how much and what to try; the process keeps working", () => {
    expect(r.oom.message).toMatch(/^TunekitError: out of cuda memory allocating a \[268435456, 2\] tensor \(2147483648 bytes, f32\): tunekit holds .* GiB of .* GiB/);
    expect(r.oom.message).toMatch(/smaller batch size .* bf16 weights .* LoRA/);
    expect(r.oom.worksAfter).toBe(true);
  });
  test("the CLI trains, evaluates and predicts with --device cuda as it does on the CPU", () => {
    const bin = path.join(root, "bin", "tunekit.js"), data = path.join(__dirname, "fixtures", "data", "reviews.csv");
    const cli = (args: string[]) => JSON.parse(execFileSync(process.execPath, [bin, ...args, "--json"], {
      env: { ...process.env, TUNEKIT_CUDA_LIB: lib }, encoding: "utf8", maxBuffer: 1 << 24, stdio: ["ignore", "pipe", "ignore"], timeout: 300_000,
    }));
    const out = fs.mkdtempSync(path.join(require("os").tmpdir(), "tk-cli-device-"));
    const train = (device: string) => cli(["train", "--data", data, "--max-steps", "3", "--batch-size", "4", "--no-progress", "--no-report", "--device", device, "--out", path.join(out, device)]);
    const cpu = train("cpu"), cuda = train("cuda");
    expect(Math.abs(cuda.metrics.loss - cpu.metrics.loss)).toBeLessThan(1e-4);
    expect(cuda.metrics.confusion_matrix).toEqual(cpu.metrics.confusion_matrix);
    const evalCuda = cli(["eval", "--model", path.join(out, "cuda"), "--data", data, "--device", "cuda"]);
    const evalCpu = cli(["eval", "--model", path.join(out, "cuda"), "--data", data]);
    expect(Math.abs(evalCuda.metrics.loss - evalCpu.metrics.loss)).toBeLessThan(1e-5);
    const p = (device: string) => cli(["predict", "--model", path.join(out, "cuda"), "a gorgeous, witty film", "--device", device])[0].scores[0].score;
    expect(Math.abs(p("cuda") - p("cpu"))).toBeLessThan(1e-5);
    fs.rmSync(out, { recursive: true, force: true });
  }, 600_000);

  test("the Trainer's bf16 option runs the device's GEMMs in bf16 (tensor cores) whatever the CPU has: near the float32 run, not equal to it", () => {
    expect(r.bf16.cpuBf16).toBe(false); // the CPU side ran its AVX2 kernels
    expect(r.bf16.precision).toBe("bf16");
    expect(r.bf16.lossesBf16.length).toBe(r.bf16.lossesF32.length);
    expect(r.bf16.lossesF32.length).toBeGreaterThan(2);
    expect(r.bf16.lossesBf16.some((l, i) => l !== r.bf16.lossesF32[i])).toBe(true);
    r.bf16.lossesBf16.forEach((l, i) => expect(Math.abs(l - r.bf16.lossesF32[i])).toBeLessThan(2e-2 * Math.max(1, Math.abs(r.bf16.lossesF32[i]))));
    expect(r.bf16.processPrecisionAfter).toBe("fp32");
  });
  test("fp16 on the device: half-precision GEMMs with loss scaling on by default, near the float32 run; on the CPU a clear error", () => {
    expect(r.fp16.precision).toBe("fp16");
    expect(r.fp16.lossScale).toBe(65536); // torch's GradScaler default, no overflow in 4 steps
    expect(r.fp16.losses.length).toBe(r.bf16.lossesF32.length);
    expect(r.fp16.losses.some((l, i) => l !== r.bf16.lossesF32[i])).toBe(true);
    r.fp16.losses.forEach((l, i) => expect(Math.abs(l - r.bf16.lossesF32[i])).toBeLessThan(5e-3 * Math.max(1, Math.abs(r.bf16.lossesF32[i]))));
    expect(r.fp16.onCpu).toMatch(/fp16 runs on a CUDA device only .* on the CPU use bf16/);
  });
  test("two runs on the device are bit-identical", () => {
    expect(r.repeat.sameLosses).toBe(true);
    expect(r.repeat.maxWeightDiff).toBe(0);
  });
});
