// Numerics: dynamic loss scaling (torch.amp.GradScaler's rule) and the guarantee that NaN or
// Infinity never reaches a saved checkpoint or a savePretrained directory.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForSequenceClassification } from "../lib/models/auto";
import { ModelForSequenceClassification, TaskBatch } from "../lib/models/heads";
import { Trainer, TrainerOptions } from "../lib/train/trainer";
import { LossScaler } from "../lib/train/loss_scaler";
import { listCheckpoints } from "../lib/train/checkpoints";
import { readSafetensors } from "../lib/io/safetensors";
import { NonFiniteError, TunekitError } from "../lib/errors";
import { firstNonFinite } from "../lib/tensor/finite";
import { BROWN_BERT } from "./helpers";
import { Example, brownExamples, collate } from "./synthetic";

const noDropout = { hiddenDropout: 0, attentionDropout: 0, classifierDropout: 0, embeddingDropout: 0 };
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe("LossScaler follows torch.amp.GradScaler", () => {
  // torch/amp/grad_scaler.py and aten/src/ATen/native/cuda/AmpKernels.cu (_amp_update_scale_):
  // found inf → scale *= backoff_factor, growth_tracker = 0; else growth_tracker += 1 and when it
  // reaches growth_interval → scale *= growth_factor (if the result is finite), growth_tracker = 0.
  test("defaults are torch's: 2^16, growth 2.0, backoff 0.5, interval 2000", () => {
    const s = new LossScaler();
    expect([s.scale, s.growthFactor, s.backoffFactor, s.growthInterval]).toEqual([65536, 2, 0.5, 2000]);
    for (let i = 0; i < 1999; i++) s.update(false);
    expect(s.scale).toBe(65536);
    s.update(false);  // the 2000th good step in a row
    expect(s.state()).toEqual({ scale: 131072, growthTracker: 0 });
  });

  test("backoff/growth sequence, written out by hand from the rule", () => {
    const s = new LossScaler({ initScale: 1024, growthInterval: 3 });
    const steps: [boolean, number, number][] = [
      // [found inf, scale after, tracker after]
      [false, 1024, 1], [false, 1024, 2], [false, 2048, 0],  // 3 good steps: grow
      [true, 1024, 0],                                        // overflow: back off, tracker reset
      [false, 1024, 1], [false, 1024, 2], [true, 512, 0],     // an overflow just before growing resets the count
      [true, 256, 0], [true, 128, 0],                         // consecutive overflows halve each time
      [false, 128, 1], [false, 128, 2], [false, 256, 0], [false, 256, 1],
    ];
    const got = steps.map(([inf]) => (s.update(inf), [inf, s.scale, s.state().growthTracker]));
    expect(got).toEqual(steps);
  });

  test("growth stops where the float32 scale would become infinite; state round-trips; bad options are refused", () => {
    // torch's scale is a float32 tensor: 2^127 · 2 would be inf there, so the scale stays.
    const s = new LossScaler({ initScale: 2 ** 127, growthInterval: 1 });
    s.update(false);
    expect(s.state()).toEqual({ scale: 2 ** 127, growthTracker: 0 });
    expect(() => new LossScaler({ initScale: 2 ** 128 })).toThrow(/finite in float32/);
    const u = new LossScaler();
    u.load({ scale: 8, growthTracker: 5 });
    expect(u.state()).toEqual({ scale: 8, growthTracker: 5 });
    expect(() => new LossScaler({ backoffFactor: 1.5 })).toThrow(TunekitError);
    expect(() => new LossScaler({ growthInterval: 0 })).toThrow(/growthInterval/);
    expect(() => u.load({ scale: -1, growthTracker: 0 })).toThrow(/bad saved state/);
  });
});

const weights = (m: ModelForSequenceClassification) => new Map([...m.namedParameters()].map(([n, p]) => [n, Float32Array.from(p.toHost())]));

describe("Trainer numerics (the embedded brown-bert, synthetic ids)", () => {
  const data = brownExamples(48);
  const load = () => AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { warn: null, numLabels: 2, config: noDropout });
  const opts = (model: ModelForSequenceClassification, o: Partial<TrainerOptions<Example, TaskBatch>> = {}): TrainerOptions<Example, TaskBatch> =>
    ({ model, train: data, collate, learningRate: 1e-3, batchSize: 8, progress: false, seed: 3, maxSteps: 6, ...o });
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-numerics-"));

  test("loss scaling by a power of two is exact: the weights equal unscaled training bit for bit", async () => {
    const plain = await load(), scaled = await load();
    await new Trainer(opts(plain)).train();
    const t = new Trainer(opts(scaled, { lossScaling: { initScale: 2 ** 16, growthInterval: 4 } }));
    const r = await t.train();
    expect(r.skippedSteps).toBe(0);
    expect(t.scaler!.scale).toBe(2 ** 17);  // 6 good steps, interval 4: grew once
    const wp = weights(plain);
    for (const [n, w] of weights(scaled)) expect([n, sameBits(w, wp.get(n)!)]).toEqual([n, true]);
  });

  test("an overflowing scale skips steps and backs off until the gradients fit, silently", async () => {
    const model = await load();
    const before = weights(model);
    // float32 gradients overflow only near 3.4e38: a loss 2^16 times larger (the divisor shrunk) with the
    // largest float32 scale, 2^127, stands in for fp16's 65504 ceiling.
    const f = model.forward.bind(model);
    model.forward = (b, o) => f(b, { ...o, lossDivisor: (o?.lossDivisor ?? 8) / 2 ** 16 });
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    const scales: number[] = [], overflowed: boolean[] = [];
    const onStep = ({ gradNorm }: { gradNorm: number }) => (scales.push(t.scaler!.scale), overflowed.push(!Number.isFinite(gradNorm)));
    const t = new Trainer(opts(model, { maxSteps: 30, lossScaling: { initScale: 2 ** 127 }, events: { onStep } }));
    const r = await t.train();
    const warned = warn.mock.calls.length;
    warn.mockRestore();
    expect(warned).toBe(0);
    // Each overflowing step is skipped and halves the scale; a good step keeps it (growth needs 2000).
    const skips = overflowed.filter(Boolean).length;
    expect([overflowed[0], skips]).toEqual([true, r.skippedSteps]);
    expect(skips).toBeLessThan(25);
    expect(scales).toEqual(overflowed.map((_, i) => 2 ** (127 - overflowed.slice(0, i + 1).filter(Boolean).length)));
    expect(firstNonFinite(model.namedParameters() as Iterable<[string, Float32Array]> as never)).toBeNull();
    let moved = false;
    for (const [n, w] of weights(model)) moved ||= !sameBits(w, before.get(n)!);
    expect(moved).toBe(true);
  });

  test("loss scale state survives a checkpoint and resume", async () => {
    const dir = tmp();
    const a = await load();
    const f = a.forward.bind(a);
    a.forward = (x, o) => f(x, { ...o, lossDivisor: (o?.lossDivisor ?? 8) / 2 ** 16 });  // overflows at first, as above
    await new Trainer(opts(a, { saveSteps: 3, outputDir: dir, lossScaling: { initScale: 2 ** 127, growthInterval: 2 } })).train();
    const st = JSON.parse(fs.readFileSync(path.join(dir, "checkpoint-3", "trainer_state.json"), "utf8"));
    expect(st.lossScaler.scale).toBeLessThan(2 ** 127);
    const b = await load();
    const g = b.forward.bind(b);
    b.forward = (x, o) => g(x, { ...o, lossDivisor: (o?.lossDivisor ?? 8) / 2 ** 16 });
    const t = new Trainer(opts(b, { resumeFrom: path.join(dir, "checkpoint-3"), lossScaling: { initScale: 2 ** 127, growthInterval: 2 } }));
    expect(t.scaler!.state()).toEqual(st.lossScaler);
    await t.train();
    const wa = weights(a);
    for (const [n, w] of weights(b)) expect([n, sameBits(w, wa.get(n)!)]).toEqual([n, true]);
  });

  test("a NaN loss is skipped, and every checkpoint written around it is finite", async () => {
    const dir = tmp();
    const model = await load();
    const f = model.forward.bind(model);
    let calls = 0;
    // Calls 3 and 4 (steps 3 and 4, batch 8, no accumulation) report a NaN loss.
    model.forward = (b, o) => {
      const out = f(b, o);
      calls++;
      if (out.loss && (calls === 3 || calls === 4)) out.loss.toHost()[0] = NaN;
      return out;
    };
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    const r = await new Trainer(opts(model, { saveSteps: 2, outputDir: dir })).train();
    const warned = warn.mock.calls.map((c) => String(c[0]));
    warn.mockRestore();
    expect(r.skippedSteps).toBe(2);
    expect(warned).toEqual([expect.stringMatching(/step 3 skipped: non-finite loss NaN/), expect.stringMatching(/step 4 skipped: non-finite loss NaN/)]);
    const dirs = listCheckpoints(dir).map((d) => path.basename(d));
    expect(dirs).toEqual(["checkpoint-2", "checkpoint-4", "checkpoint-6"]);
    // Steps 3 and 4 changed nothing: checkpoint-4 holds checkpoint-2's weights.
    const w2 = readSafetensors(path.join(dir, "checkpoint-2", "model.safetensors")).tensors;
    const w4 = readSafetensors(path.join(dir, "checkpoint-4", "model.safetensors")).tensors;
    for (const [n, t] of w2) expect([n, sameBits(t.data as Float32Array, w4.get(n)!.data as Float32Array)]).toEqual([n, true]);
    for (const d of dirs) {
      for (const file of ["model.safetensors", "optimizer.safetensors"])
        expect([d, file, firstNonFinite(readSafetensors(path.join(dir, d, file)).tensors as never)]).toEqual([d, file, null]);
    }
  });

  test("a NaN weight stops the checkpoint (error names the tensor), the earlier checkpoint stays finite, nothing half-written", async () => {
    const dir = tmp();
    const model = await load();
    const target = "bert.encoder.layer.1.output.dense.weight";
    const p = new Map(model.namedParameters()).get(target)!;
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    const run = new Trainer(opts(model, { saveSteps: 2, outputDir: dir, events: { onStep: ({ step }) => { if (step === 3) p.toHost()[17] = NaN; } } })).train();
    await expect(run).rejects.toThrow(NonFiniteError);
    await expect(run).rejects.toThrow(`saveCheckpoint(${path.join(dir, "checkpoint-4")}): tensor '${target}' holds a non-finite value (element 17 is NaN)`);
    warn.mockRestore();
    expect(fs.readdirSync(dir)).toEqual(["checkpoint-2"]);
    expect(firstNonFinite(readSafetensors(path.join(dir, "checkpoint-2", "model.safetensors")).tensors as never)).toBeNull();
  });

  test("savePretrained refuses Infinity before creating anything", async () => {
    const model = await load();
    new Map(model.namedParameters()).get("classifier.bias")!.toHost()[1] = -Infinity;
    const out = path.join(tmp(), "out");
    await expect(model.savePretrained(out)).rejects.toThrow(/savePretrained\(.*\): tensor 'classifier.bias' holds a non-finite value \(element 1 is -Infinity\)/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
