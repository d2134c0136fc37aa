#!/usr/bin/env node
// npm run fuzz -- [--minutes N | --smoke] [--target NAME] [--replay DIR] [--seed S]
// Runs every fuzz target (scripts/fuzz/targets.mjs) in turn, each in a child process with a V8 heap
// limit, an RSS watchdog and a per-input timeout; crashes, hangs, runaway memory and untyped errors
// are saved under fuzz-findings/<target>/ with the input files and a meta.json. Exit code 1 when any
// target produced a finding. --replay DIR re-runs saved findings (any folder holding meta.json + files/).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawn } from "child_process";
import { fileURLToPath } from "url";
import { TARGETS, SHARED } from "./targets.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const smoke = args.includes("--smoke");
const minutes = Number(opt("--minutes", smoke ? "0" : "1"));
const only = opt("--target");
const replay = opt("--replay");
const seed0 = Number(opt("--seed", String(Date.now() % 1e9)));
const HEAP_MB = Number(opt("--heap-mb", "1024"));
const RSS_MB = Number(opt("--rss-mb", "2048"));
const TIMEOUT_MS = Number(opt("--timeout-ms", "10000"));
const findingsDir = path.resolve(opt("--out", path.join(ROOT, "fuzz-findings")));

// Real checkpoints and data seed most targets; as in the tests, CI must have them, elsewhere their absence is said.
if (!fs.existsSync(path.join(SHARED, "models"))) {
  const msg = `${SHARED}/models not found: seeding from test/fixtures only (set TUNEKIT_SHARED to the shared dir)`;
  if (process.env.CI && !replay) { console.error(`error: ${msg}`); process.exit(2); }
  console.log(`note: ${msg}`);
}
const targets = TARGETS.filter((t) => !only || t.name === only);
if (!targets.length) { console.error(`no target ${only}; targets: ${TARGETS.map((t) => t.name).join(", ")}`); process.exit(2); }

function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch { return 0; }
}

/** CPU seconds (user + system) the process has used: a hang is judged on CPU time, so a machine busy with
 *  other work does not make a slow-but-finite input look like a hang. */
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch { return 0; }
}

/** Runs one worker; resolves {execs, findings, death} where death names a crash/hang/memory kill. */
function runWorker(target, ms, seed, replayDir) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tk-fuzz-${target.name}-`));
  const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MB}`, "--stack-size=984", path.join(HERE, "worker.mjs"),
    target.name, String(ms), String(seed), tmp, findingsDir, replayDir ?? ""], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
  const timeout = target.timeoutMs ?? TIMEOUT_MS;
  let lastBeat = "", beatAt = Date.now(), beatCpu = 0, killed = null, peak = 0;
  const timer = setInterval(() => {
    const rss = rssMb(child.pid);
    peak = Math.max(peak, rss);
    let beat = "";
    try { beat = fs.readFileSync(path.join(tmp, "beat"), "utf8"); } catch { /* not started */ }
    const cpu = cpuSeconds(child.pid);
    if (beat !== lastBeat) { lastBeat = beat; beatAt = Date.now(); beatCpu = cpu; }
    const startup = beat === "" ? 30000 : 0; // loading the library and the seeds
    if (rss > RSS_MB) killed = `memory: RSS ${rss.toFixed(0)} MB > ${RSS_MB} MB`;
    else if ((cpu - beatCpu) * 1000 > timeout + startup) killed = `hang: one input used over ${timeout} ms of CPU`;
    else if (Date.now() - beatAt > 10 * timeout + startup) killed = `hang: one input ran over ${10 * timeout} ms (wall clock)`;
    if (killed) child.kill("SIGKILL");
  }, 100);
  return new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      clearInterval(timer);
      let result = { execs: Number(lastBeat || 0) + 1, findings: [] };
      try { result = JSON.parse(fs.readFileSync(path.join(tmp, "result.json"), "utf8")); } catch { /* died */ }
      let death = killed;
      if (!death && (code !== 0 || signal)) {
        const oom = /heap out of memory|Allocation failed/.test(stderr);
        death = `${oom ? "memory" : "crash"}: exit ${code ?? signal}${stderr ? ` — ${stderr.trim().split("\n").slice(-3).join(" | ")}` : ""}`;
      }
      if (death && !replayDir) {
        const kind = death.split(":")[0];
        const dir = path.join(findingsDir, target.name, `${kind}-${Date.now()}`);
        fs.mkdirSync(dir, { recursive: true });
        if (fs.existsSync(path.join(tmp, "cur"))) fs.cpSync(path.join(tmp, "cur"), path.join(dir, "files"), { recursive: true });
        fs.writeFileSync(path.join(dir, "meta.json"), JSON.stringify({ target: target.name, kind, error: death, stderr }, null, 2));
        result.findings.push({ kind, message: death });
      }
      fs.rmSync(tmp, { recursive: true, force: true });
      resolve({ ...result, death, peakRssMb: Math.round(peak) });
    });
  });
}

async function main() {
  if (replay) {
    const dirs = [];
    const walk = (d) => { if (fs.existsSync(path.join(d, "meta.json"))) dirs.push(d); else for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name)); };
    walk(path.resolve(replay));
    let bad = 0;
    for (const d of dirs) {
      const meta = JSON.parse(fs.readFileSync(path.join(d, "meta.json"), "utf8"));
      const target = TARGETS.find((t) => t.name === meta.target);
      const r = await runWorker(target, 0, 0, d);
      const ok = !r.death && r.ok;
      if (!ok) bad++;
      console.log(`${ok ? "fixed " : "STILL "} ${path.relative(process.cwd(), d)}  ${r.death ?? r.findings.map((f) => f.message).join("; ")}`);
    }
    console.log(`${dirs.length - bad}/${dirs.length} findings no longer reproduce`);
    process.exit(bad ? 1 : 0);
  }
  const perTarget = smoke ? 3000 : Math.max(2000, (minutes * 60000) / targets.length - 1500);
  console.log(`fuzzing ${targets.length} targets, ~${(perTarget / 1000).toFixed(0)} s each, seed ${seed0}; findings → ${path.relative(process.cwd(), findingsDir)}/`);
  const rows = [];
  let total = 0;
  for (const [i, t] of targets.entries()) {
    let left = perTarget, execs = 0, found = [], peak = 0, seed = seed0 + i * 100000;
    // A worker that died (crash, hang, memory) is restarted with a new seed until the target's time is used.
    while (left > 500) {
      const t0 = Date.now();
      const r = await runWorker(t, left, seed);
      seed += 1000;
      left -= Date.now() - t0;
      execs += r.execs;
      found.push(...r.findings);
      peak = Math.max(peak, r.peakRssMb);
      if (!r.death) break;
      if (smoke) break;
    }
    total += found.length;
    rows.push({ target: t.name, execs, findings: found.length, peakRssMb: peak });
    console.log(`${t.name.padEnd(20)} ${String(execs).padStart(8)} execs  ${found.length} findings  peak RSS ${peak} MB`);
    for (const f of found) console.log(`    ${f.kind}: ${f.message.split("\n")[0].slice(0, 200)}`);
  }
  const sum = rows.reduce((a, r) => a + r.execs, 0);
  console.log(`total ${sum} executions, ${total} findings`);
  process.exit(total ? 1 : 0);
}
main();
