// `npm run bench:ddp`: data-parallel scaling on this host. The same global batch (32 × 128 tokens) of a
// random-weight BERT trained by the Trainer two ways: 1 process × 2 threads, and 2 ranks × 1 thread
// over Gloo on loopback (each rank batch 16); samples/s, and per step the gradient all-reduce time (on
// the communication thread, overlapping the backward; over the timed steps) and the time the step waited
// for it (TrainResult.distributed: over all steps, the warm-up ones included). Needs the
// Gloo library (`npm run build:comm`). Prints the load average around the runs: on a shared machine
// the figures move with it.
//   node bench/ddp.mjs            BERT-tiny (2 × 128) and BERT-mini (4 × 256) → bench/results/ddp.json
//   node bench/ddp.mjs --quick    tiny shapes, a few steps: checks that both setups run (numbers mean nothing)
//   node bench/ddp.mjs --steps 12 timed steps per run (after 3 warm-up steps)
import { spawn } from "node:child_process";
import * as net from "node:net";
import * as os from "node:os";
import { fileURLToPath } from "node:url";
import * as tk from "../dist/index.js";
import { machine, table, saveResults, fmt } from "./common.mjs";
import { randomBert } from "./bert_step.mjs";

const here = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const numArg = (name, dflt) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);

const TINY = { layers: 2, hidden: 128, heads: 2, inter: 512, vocab: 30522 };
const MINI = { layers: 4, hidden: 256, heads: 4, inter: 1024, vocab: 30522 };
const QUICK = { layers: 2, hidden: 64, heads: 2, inter: 128, vocab: 1000 };
const CASES = quick ? [["quick", QUICK, 8, 16, 2, 2]] : [["bert-tiny", TINY, 32, 128, 3, numArg("--steps", 30)], ["bert-mini", MINI, 32, 128, 3, numArg("--steps", 10)]];

/** Child: trains `warm + steps` steps in whatever group the environment says; prints the timed steps' figures. */
async function worker(c) {
  const model = randomBert(c.model);
  const n = c.batch * (c.warm + c.steps);
  const features = Array.from({ length: n }, (_, i) => ({ ids: Array.from({ length: c.seq }, (_, t) => 1000 + ((i * 7919 + t * 104729) % (c.model.vocab - 1000))), label: i % 2 }));
  const collate = (f) => ({
    inputIds: Int32Array.from(f.flatMap((e) => e.ids)), attentionMask: new Uint8Array(f.length * c.seq).fill(1),
    batchSize: f.length, seqLen: c.seq, labels: Int32Array.from(f.map((e) => e.label)),
  });
  let t0 = 0, s0 = 0, wait = 0;
  const group = () => tk.getProcessGroup();
  const timer = {
    onStepBegin: (_a, state) => {
      if (state.step === c.warm) { t0 = performance.now(); s0 = group()?.stats().seconds ?? 0; }
    },
  };
  const trainer = new tk.Trainer({ model, train: features, collate, batchSize: c.batch, maxSteps: c.warm + c.steps, learningRate: 1e-5,
    evalStrategy: "no", progress: false, callbacks: [timer], seed: 1 });
  const r = await trainer.train();
  const seconds = (performance.now() - t0) / 1000 / c.steps;
  const comm = group() ? (group().stats().seconds - s0) / c.steps : 0;
  wait = r.distributed ? r.distributed.waitSecondsPerStep : 0;
  const world = group()?.worldSize ?? 1;
  const gradBytes = model.parameters().reduce((b, p) => b + p.size * 4, 0);
  tk.destroyProcessGroup();
  return { seconds, samplesPerSecond: (c.batch * world) / seconds, allReduce: comm, wait, gradMB: gradBytes / 2 ** 20, threads: tk.native.numThreads(), world };
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function runChild(c, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [here, "--worker", JSON.stringify(c)], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop())) : reject(new Error(`worker exited ${code}`))));
  });
}

async function main() {
  if (!tk.distributedInfo("gloo").available) {
    console.error(`bench:ddp: ${tk.distributedInfo("gloo").reason}`);
    process.exit(1);
  }
  const load0 = os.loadavg();
  console.log(`${os.cpus()[0]?.model} (${os.cpus().length} cores), load average ${load0.map((l) => l.toFixed(2)).join(" ")}`);
  const rows = [];
  for (const [name, model, batch, seq, warm, steps] of CASES) {
    const base = { model, seq, warm, steps };
    const one = await runChild({ ...base, batch }, { TUNEKIT_THREADS: "2" });
    const port = await freePort();
    const env = (r) => ({ TUNEKIT_THREADS: "1", RANK: String(r), WORLD_SIZE: "2", LOCAL_RANK: String(r), LOCAL_WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) });
    const [two] = await Promise.all([0, 1].map((r) => runChild({ ...base, batch: batch / 2 }, env(r))));
    for (const [setup, r] of [["1 process × 2 threads", one], ["2 ranks × 1 thread", two]])
      rows.push({ model: name, setup, "batch (global)": batch, "samples/s": fmt(r.samplesPerSecond), "s/step": fmt(r.seconds, 3),
        "all-reduce s/step": r.world > 1 ? fmt(r.allReduce, 3) : "-", "waited s/step": r.world > 1 ? fmt(r.wait, 3) : "-", "gradients MB": fmt(r.gradMB), raw: r });
  }
  const load1 = os.loadavg();
  table(rows, ["model", "setup", "batch (global)", "samples/s", "s/step", "all-reduce s/step", "waited s/step", "gradients MB"]);
  console.log(`load average after: ${load1.map((l) => l.toFixed(2)).join(" ")}`);
  if (!quick) saveResults("ddp", { machine: machine(tk.native), date: new Date().toISOString(), loadBefore: load0, loadAfter: load1, rows });
}

if (argv[0] === "--worker") worker(JSON.parse(argv[1])).then((r) => process.stdout.write(JSON.stringify(r) + "\n"));
else main().catch((e) => { console.error(e); process.exit(1); });
