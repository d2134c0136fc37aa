#!/usr/bin/env node
// Crash safety, measured: a training run (bert-tiny-mlm, synthetic token ids, dropout on, saveSteps 2,
// saveTotalLimit 2, seed fixed, TUNEKIT_THREADS fixed) runs in a child process that is killed with
// SIGKILL at N moments: half of them the instant a checkpoint's temporary directory appears (so the
// kill lands inside a checkpoint write), the others at a random time after a training step. After
// every kill each `checkpoint-N` on disk must be complete, and the run resumes from the newest one
// (resumeFrom: "latest"). At the end the final weights must equal an uninterrupted run's bit for bit.
//   node scripts/crash-resume.mjs [--kills 20] [--steps 60] [--seed 1] [--json]
// Needs `npx tsc -p .` (dist/). Uses ../shared/models/bert-tiny-mlm (TUNEKIT_SHARED overrides); without it,
// random weights in bert-tiny's shapes (its config.json, committed in test/fixtures/configs), as leak-check does.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { createRequire } from "module";
import { fileURLToPath } from "url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const shared = process.env.TUNEKIT_SHARED ? path.resolve(process.env.TUNEKIT_SHARED) : path.resolve(root, "..", "shared");
const modelDir = path.join(shared, "models", "bert-tiny-mlm");
const modelName = fs.existsSync(modelDir) ? "bert-tiny-mlm" : "random weights, bert-tiny shapes";

/** The model every run starts from: the same weights in each child (random ones are seeded). */
async function startModel(AutoModelForSequenceClassification) {
  if (fs.existsSync(modelDir)) return AutoModelForSequenceClassification.fromPretrained(modelDir, { warn: null, numLabels: 2 });
  const { configFrom } = require(path.join(root, "dist/models/pretrained.js"));
  return AutoModelForSequenceClassification.fromConfig(configFrom(path.join(root, "test/fixtures/configs/bert-tiny-mlm.json")), { numLabels: 2, seed: 1 });
}

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

// ---- the child: one (resumed) training run -------------------------------------------------------
async function child(outputDir, steps) {
  const { AutoModelForSequenceClassification } = require(path.join(root, "dist/models/auto.js"));
  const { Trainer } = require(path.join(root, "dist/train/trainer.js"));
  const { saveSafetensors } = require(path.join(root, "dist/io/safetensors.js"));
  const model = await startModel(AutoModelForSequenceClassification);
  const { examples, collate } = require(path.join(root, "scripts/synthetic.cjs"));
  const train = examples(64);
  const trainer = new Trainer({
    model, train, collate, learningRate: 5e-4, maxSteps: steps, batchSize: 8, seed: 11, progress: false,
    saveSteps: 2, saveTotalLimit: 2, outputDir, resumeFrom: "latest",
    events: { onStep: ({ step }) => process.stdout.write(`step ${step}\n`) },
  });
  await trainer.train();
  saveSafetensors(path.join(outputDir, "final.safetensors"), model.stateDict());
  process.stdout.write("done\n");
}

// ---- the parent ----------------------------------------------------------------------------------
function run(outputDir, steps, killer) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child", outputDir, "--steps", String(steps)], {
      env: { ...process.env, TUNEKIT_THREADS: "2" }, stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "", lastStep = 0, killedAt = null;
    p.stdout.on("data", (d) => {
      out += d;
      const m = /step (\d+)\n(?![\s\S]*step)/.exec(out);
      if (m) lastStep = Number(m[1]);
    });
    const kill = (why) => {
      if (killedAt || p.exitCode !== null) return;
      killedAt = why;
      p.kill("SIGKILL");
    };
    killer?.(p, kill, () => lastStep);
    p.on("error", reject);
    p.on("exit", (code, signal) => resolve({ code, signal, killedAt, lastStep, pid: p.pid, done: out.includes("done\n") }));
  });
}

/**
 * Kills `delay` ms after the child's `nth` checkpoint write began (its `.tmp-PID` directory appeared;
 * polled every ~1 ms). Whether the kill really landed inside the write is read from the disk afterwards.
 */
function killDuringWrite(outputDir, nth, delay) {
  return (p, kill) => {
    const seen = new Set();
    const poll = () => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const mine = (fs.existsSync(outputDir) ? fs.readdirSync(outputDir) : []).filter((n) => n.endsWith(`.tmp-${p.pid}`));
      mine.forEach((n) => seen.add(n));
      if (seen.size >= nth) return void setTimeout(() => kill("write"), delay);
      setTimeout(poll, 1);
    };
    poll();
  };
}

/** Kills `delay` ms after the child reports step `step`. */
function killAfterStep(step, delay) {
  return (p, kill, lastStep) => {
    const wait = () => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      if (lastStep() >= step) return void setTimeout(() => kill("random"), delay);
      setTimeout(wait, 2);
    };
    wait();
  };
}

async function parent() {
  const { checkpointProblem, listCheckpoints, latestCheckpoint, checkpointStep } = require(path.join(root, "dist/train/checkpoints.js"));
  const { readSafetensors } = require(path.join(root, "dist/io/safetensors.js"));
  const kills = arg("kills", 20), steps = arg("steps", 60);
  let seed = arg("seed", 1);
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-crash-"));
  const t0 = Date.now();

  const refDir = path.join(base, "reference");
  const ref = await run(refDir, steps);
  if (!ref.done) throw new Error(`the uninterrupted run failed (exit ${ref.code})`);

  const dir = path.join(base, "crashed");
  const log = [];
  let survived = 0, duringWrite = 0, restarts = 0;
  while (survived < kills) {
    const write = survived % 2 === 0;
    const latest = latestCheckpoint(dir);
    const from = latest ? checkpointStep(path.basename(latest)) : 0;
    const killer = write ? killDuringWrite(dir, 1 + Math.floor(rand() * 3), Math.floor(rand() * 30)) : killAfterStep(from + 1 + Math.floor(rand() * 6), Math.floor(rand() * 100));
    const r = await run(dir, steps, killer);
    if (r.done) {
      // The run finished before the kill: start over in a fresh directory (kills so far still count).
      fs.rmSync(dir, { recursive: true, force: true });
      restarts++;
      continue;
    }
    if (r.signal !== "SIGKILL") throw new Error(`child exited by itself with code ${r.code} (not killed)`);
    const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    const inWrite = names.some((n) => n.endsWith(`.tmp-${r.pid}`));
    const incomplete = listCheckpoints(dir).map((d) => [path.basename(d), checkpointProblem(d)]).filter(([, p]) => p);
    if (incomplete.length) throw new Error(`after kill ${survived + 1}: half-written checkpoint ${JSON.stringify(incomplete)}`);
    survived++;
    if (inWrite) duringWrite++;
    log.push({ kill: survived, mode: r.killedAt, resumedFrom: from, lastStep: r.lastStep, inWrite, leftover: names.filter((n) => /\.(tmp|trash)-/.test(n)), checkpoints: names.filter((n) => /^checkpoint-\d+$/.test(n)) });
    if (!process.argv.includes("--json")) console.log(`kill ${String(survived).padStart(2)} (${r.killedAt.padEnd(6)}) resumed from ${String(from).padStart(3)}, killed after step ${String(r.lastStep).padStart(3)}${inWrite ? ", inside a checkpoint write" : ""}; on disk: ${names.join(" ")}`);
  }
  const fin = await run(dir, steps);
  if (!fin.done) throw new Error(`the final resumed run failed (exit ${fin.code})`);
  const a = readSafetensors(path.join(refDir, "final.safetensors")).tensors, b = readSafetensors(path.join(dir, "final.safetensors")).tensors;
  const differing = [...a].filter(([n, t]) => !Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(b.get(n).data.buffer, b.get(n).data.byteOffset, b.get(n).data.byteLength))).map(([n]) => n);
  const summary = { model: modelName, kills: survived, duringWrite, restarts, steps, tensors: a.size, bitIdentical: differing.length === 0 && a.size === b.size, differing, seconds: (Date.now() - t0) / 1000, log };
  if (process.argv.includes("--json")) console.log(JSON.stringify(summary));
  else console.log(`${survived} kills survived (${duringWrite} inside checkpoint writes, ${restarts} restarts); final weights ${summary.bitIdentical ? "bit-identical" : `DIFFER in ${differing.length} tensors`} to the uninterrupted run (${a.size} tensors); ${summary.seconds.toFixed(1)} s`);
  fs.rmSync(base, { recursive: true, force: true });
  if (!summary.bitIdentical) process.exit(1);
}

if (process.argv[2] === "--child") child(process.argv[3], arg("steps", 60)).catch((e) => { console.error(e); process.exit(3); });
else parent().catch((e) => { console.error(e); process.exit(1); });
