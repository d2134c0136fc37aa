// tunekit info / bench.
import { Command } from "commander";
import { readConfig } from "../../models/config_json";
import { native } from "../../native";
import { AutoModelForSequenceClassification } from "../../models/auto";
import { applyMethod, chooseMethod, FineTuneMethod } from "../../train/method";
import { freeze, trainableCount, parameterCount } from "../../train/strategies";
import { AdamW, paramGroups } from "../../train/optimizer";
import { Tensor } from "../../tensor/tensor";
import { int, methodOptions, MethodFlags, Action } from "../args";
import { resolveModel } from "../models";
import { output, table, fmt } from "../print";

async function info(flags: MethodFlags & { model: string; examples?: number; json?: boolean }): Promise<void> {
  const out = output(!!flags.json);
  const dir = resolveModel(flags.model);
  const c = readConfig(dir);
  const model = await AutoModelForSequenceClassification.fromPretrained(dir, { warn: null, ...(c.numLabels >= 2 ? {} : { numLabels: 2 }) });
  const choice = flags.method === "auto"
    ? chooseMethod(flags.examples ?? 1000)
    : { method: flags.method as FineTuneMethod, rule: `--method ${flags.method}` };
  const total = parameterCount(model);
  const extra = applyMethod(model, choice.method, { freezeLayers: flags.freezeLayers, lora: { r: flags.loraR, alpha: flags.loraAlpha, targetModules: flags.loraTargets, bias: flags.loraBias } });
  if (extra.freeze) freeze(model, extra.freeze);
  const trainable = trainableCount(model);
  const rows: [string, string | number][] = [
    ["architecture", c.architectures.join(", ") || "(none)"], ["model type", c.modelType], ["layers", c.numLayers], ["hidden size", c.hiddenSize],
    ["attention heads", c.numHeads], ["feed-forward size", c.intermediateSize], ["vocabulary", c.vocabSize], ["max positions", c.maxPositions],
    ["labels", c.numLabels >= 2 && Object.keys(c.id2label).length ? Object.values(c.id2label).join(", ") : "(none: a new head gets them)"],
    ["parameters (with a 2-label head)", total.toLocaleString("en-US")],
    [`trainable under ${choice.method}`, `${trainable.toLocaleString("en-US")} (${fmt((100 * trainable) / total)}%)`],
  ];
  out.line(`${dir}\n` + table(rows));
  if (flags.method === "auto") out.line(`rule: ${choice.rule}`);
  out.result({ model: dir, config: { modelType: c.modelType, architectures: c.architectures, layers: c.numLayers, hidden: c.hiddenSize, heads: c.numHeads,
    intermediate: c.intermediateSize, vocab: c.vocabSize, maxPositions: c.maxPositions }, parameters: total, method: choice, trainable });
}

/** GFLOP/s of a GEMM, the FMA peak, and a training step of the model: is this machine set up right? */
async function bench(flags: { model: string; batchSize: number; seqLen: number; steps: number; json?: boolean }): Promise<void> {
  const out = output(!!flags.json);
  const peak = native.peakGflops();
  const M = 1024, N = 768, K = 768;
  const A = new Float32Array(M * K).fill(0.01), B = new Float32Array(N * K).fill(0.02), C = new Float32Array(M * N);
  native.gemm({ M, N, K, A, B, C, transB: true });
  const reps = 10, t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) native.gemm({ M, N, K, A, B, C, transB: true });
  const gemm = (2 * M * N * K * reps) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e9;
  const dir = resolveModel(flags.model);
  const model = await AutoModelForSequenceClassification.fromPretrained(dir, { warn: null, numLabels: 2 });
  const opt = new AdamW(paramGroups(model, { lr: 1e-5, weightDecay: 0.01 }));
  const { batchSize: Bn, seqLen: T } = flags;
  const V = readConfig(dir).vocabSize;
  const ids = Int32Array.from({ length: Bn * T }, (_, i) => 1 + ((i * 7919) % (V - 1)));
  const batch = { inputIds: ids, attentionMask: new Uint8Array(Bn * T).fill(1), batchSize: Bn, seqLen: T, labels: Int32Array.from({ length: Bn }, (_, i) => i % 2) };
  const step = () => {
    const o = model.forward(batch);
    (o.loss as Tensor).backward();
    opt.update(1);
    model.zeroGrad();
  };
  step();
  const t1 = Date.now();
  for (let i = 0; i < flags.steps; i++) step();
  const ms = (Date.now() - t1) / flags.steps;
  const rows = [["isa", native.isa()], ["threads", native.numThreads()], ["FMA peak GFLOP/s", fmt(peak)], [`GEMM ${M}×${N}×${K} GFLOP/s`, `${fmt(gemm)} (${fmt((100 * gemm) / peak)}% of peak)`],
    [`training step B${Bn}×T${T} (${dir.split("/").pop()})`, `${fmt(ms)} ms, ${fmt((1000 * Bn) / ms)} samples/s`]];
  out.line(table(rows));
  out.result({ isa: native.isa(), threads: native.numThreads(), peakGflops: peak, gemmGflops: gemm, stepMs: ms, samplesPerSecond: (1000 * Bn) / ms });
}

export function registerInfo(program: Command, run: (fn: Action) => Action): void {
  methodOptions(program.command("info").description("architecture, size and trainable parameters under a fine-tuning method"))
    .option("-m, --model <dir>", "a checkpoint folder, or 'embedded'", "embedded")
    .option("--examples <n>", "with --method auto: the number of labelled examples the rule sees", int(1))
    .option("--json", "one JSON document on stdout (everything else on stderr)")
    .addHelpText("after", `
Examples:
  $ tunekit info
  $ tunekit info --model ./bert-base-uncased --method lora --lora-r 16
  $ tunekit info --method auto --examples 250`)
    .action(run(info));
  program.command("bench").description("this machine: FMA peak, GEMM rate, and a training step of a model")
    .option("-m, --model <dir>", "a checkpoint folder, or 'embedded'", "embedded")
    .option("--batch-size <n>", "batch size", int(1), 16)
    .option("--seq-len <n>", "tokens per example", int(2), 128)
    .option("--steps <n>", "timed steps", int(1), 5)
    .option("--json", "one JSON document on stdout (everything else on stderr)")
    .addHelpText("after", `
Examples:
  $ tunekit bench
  $ tunekit bench --model ./bert-base-uncased --batch-size 8`)
    .action(run(bench));
}
