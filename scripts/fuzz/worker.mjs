// One fuzz target in a child process: run inputs until the time is up, writing a heartbeat before each
// so the parent (run.mjs) can tell a hang from slow progress. An input is written as files into
// <tmp>/cur before it runs, so whatever kills this process, the parent can save the input that did it.
// A rejection that is not a TunekitError is saved here as a finding, and the loop goes on.
import * as fs from "fs";
import * as path from "path";
import * as crypto from "crypto";
import fc from "fast-check";
import { TARGETS, loadLib } from "./targets.mjs";
import { planArb, mutate } from "./mutate.mjs";

const [, , targetName, msArg, seedArg, tmp, findingsDir, replayDir] = process.argv;
const target = TARGETS.find((t) => t.name === targetName);
if (!target) throw new Error(`unknown target ${targetName}`);
const lib = loadLib();
const cur = path.join(tmp, "cur");
const beatFile = path.join(tmp, "beat");
const SLOW_MS = Number(process.env.FUZZ_SLOW_MS ?? 5000);

function writeInput(files) {
  fs.rmSync(cur, { recursive: true, force: true });
  fs.mkdirSync(cur, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(cur, name), bytes);
}

/** A finding's signature: its kind, error class and the first tunekit frame (so one bug is saved a few times, not thousands). */
function signature(kind, e) {
  const frame = String(e?.stack ?? "").split("\n").find((l) => l.includes("/dist/")) ?? "";
  return `${kind}:${e?.name ?? typeof e}:${frame.replace(/:\d+\)?$/, "").trim()}:${String(e?.message ?? e).replace(/\d+/g, "N").slice(0, 80)}`;
}
const seen = new Map();
const findings = [];
function saveFinding(kind, e, files) {
  const sig = signature(kind, e);
  const count = seen.get(sig) ?? 0;
  seen.set(sig, count + 1);
  if (count === 0) findings.push({ kind, sig, message: String(e?.message ?? e).slice(0, 500) });
  if (count >= 2) return; // keep up to two examples of each
  const hash = crypto.createHash("sha1").update(sig).digest("hex").slice(0, 10);
  const dir = path.join(findingsDir, target.name, `${kind}-${hash}-${count}`);
  fs.mkdirSync(path.join(dir, "files"), { recursive: true });
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, "files", name), bytes);
  fs.writeFileSync(path.join(dir, "meta.json"), JSON.stringify({ target: target.name, kind, error: `${e?.name}: ${e?.message}`.slice(0, 2000), stack: String(e?.stack ?? "").slice(0, 4000) }, null, 2));
}

async function runOne(files, n) {
  writeInput(files);
  fs.writeFileSync(beatFile, String(n));
  const c0 = process.cpuUsage(); // CPU time, not wall time: other work on the machine must not make an input "slow"
  try {
    await target.run(cur, lib, files);
  } catch (e) {
    if (!(e instanceof lib.errors.TunekitError)) { saveFinding("untyped", e, files); return false; }
  }
  const c = process.cpuUsage(c0), ms = Math.round((c.user + c.system) / 1000);
  if (ms > SLOW_MS) saveFinding("slow", new Error(`input used ${ms} ms of CPU`), files);
  return true;
}

async function main() {
  if (replayDir) {
    const files = {};
    for (const name of fs.readdirSync(path.join(replayDir, "files"))) files[name] = fs.readFileSync(path.join(replayDir, "files", name));
    const ok = await runOne(files, 0);
    fs.writeFileSync(path.join(tmp, "result.json"), JSON.stringify({ execs: 1, findings, ok }));
    return;
  }
  const ms = Number(msArg);
  let seed = Number(seedArg);
  const seeds = target.seeds().filter((s) => Object.values(s).every(Boolean));
  const t0 = Date.now();
  let n = 0;
  for (const s of seeds) await runOne(s, n++); // the seeds themselves must load or be refused cleanly
  let plans = [], gens = [];
  while (Date.now() - t0 < ms) {
    const structured = target.gen && (seeds.length === 0 || (n & 3) === 0);
    let files;
    if (structured) {
      if (!gens.length) gens = fc.sample(target.gen, { seed: seed++, numRuns: 50 });
      files = gens.pop();
    } else {
      if (!seeds.length) break;
      if (!plans.length) plans = fc.sample(planArb, { seed: seed++, numRuns: 200 });
      files = mutate(seeds, plans.pop());
    }
    await runOne(files, n++);
  }
  fs.writeFileSync(path.join(tmp, "result.json"), JSON.stringify({ execs: n, findings, seeds: seeds.length }));
}

main().catch((e) => { console.error(e); process.exit(3); });
