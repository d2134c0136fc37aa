// Data-parallel training on loopback (2 ranks × 1 thread, Gloo): N ranks × batch B train like one
// process with batch N·B, loss by loss; resume across rank counts; a rank that dies, hangs or fails
// stops the others within the timeout with an error naming it, and the last checkpoint is intact;
// bad launch settings are one line each; the launcher and the mpirun / srun environments. Every rank
// is a child process (test/ddp-run.cjs, or the CLI). Needs the Gloo backend library (`npm run
// build:comm`, libgloo-dev): without it the suite is skipped saying so, except under CI, where it fails.
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { spawn, spawnSync } from "child_process";
import { native } from "../lib/native";
import { distributedFromEnv, threadsPerRank } from "../lib/distributed/env";
import { programOf } from "../lib/distributed/launch";
import { ProcessGroup } from "../lib/distributed/process_group";
import { checkpointProblem } from "../lib/train/checkpoints";

const root = path.join(__dirname, "..");
const worker = path.join(__dirname, "ddp-run.cjs");
const bin = path.join(root, "bin", "tunekit.js");
const reviews = path.join(__dirname, "fixtures", "data", "reviews.csv");
const info = native.commInfo("gloo");
const reason = `the Gloo backend is not available (${info.reason})`;
const TIMEOUT = 10; // seconds: TUNEKIT_DIST_TIMEOUT of the failure tests

interface Proc { code: number | null; signal: string | null; out: string; err: string; endedAt: number; pid: number }
interface Result {
  rank: number; worldSize: number; weights: string; steps: number; trainLoss: number;
  losses: { step: number; loss: number; gradNorm: number }[];
  evals: Record<string, number | number[][]>[]; final: Record<string, number | number[][]>;
  distributed: { worldSize: number; allReduceSecondsPerStep: number; waitSecondsPerStep: number } | null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function start(args: string[], env: NodeJS.ProcessEnv): { proc: Promise<Proc>; pid: number; kill(sig: NodeJS.Signals): void } {
  const child = spawn(process.execPath, args, { env: { ...process.env, TUNEKIT_DEBUG: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const proc = new Promise<Proc>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, out, err, endedAt: Date.now(), pid: child.pid ?? -1 })));
  return { proc, pid: child.pid ?? -1, kill: (sig) => child.kill(sig) };
}

const torchrunEnv = (rank: number, world: number, port: number): NodeJS.ProcessEnv =>
  ({ RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) });

/** One process with no launcher environment. */
async function single(c: object): Promise<Result> {
  const p = await start([worker, JSON.stringify(c)], { TUNEKIT_THREADS: "2" }).proc;
  if (p.code !== 0) throw new Error(`single process failed (${p.code}): ${p.err}`);
  return JSON.parse(p.out);
}

/** world ranks of ddp-run.cjs with torchrun's environment (or envOf's); each rank's process. */
async function ranks(world: number, c: object, envOf?: (rank: number, port: number) => NodeJS.ProcessEnv) {
  const port = await freePort();
  return Array.from({ length: world }, (_, r) => start([worker, JSON.stringify(c)],
    { TUNEKIT_THREADS: "1", TUNEKIT_DIST_TIMEOUT: String(TIMEOUT), ...(envOf ? envOf(r, port) : torchrunEnv(r, world, port)) }));
}

async function group(world: number, c: object, envOf?: (rank: number, port: number) => NodeJS.ProcessEnv): Promise<Result[]> {
  const ps = await Promise.all((await ranks(world, c, envOf)).map((p) => p.proc));
  ps.forEach((p, r) => { if (p.code !== 0) throw new Error(`rank ${r} failed (${p.code ?? p.signal}): ${p.err}`); });
  return ps.map((p) => JSON.parse(p.out));
}

const maxLossDiff = (a: Result, b: Result, from = 0) => {
  const bs = new Map(b.losses.map((l) => [l.step, l.loss]));
  const mine = a.losses.filter((l) => l.step > from);
  expect(mine.length).toBeGreaterThan(0);
  return Math.max(...mine.map((l) => { if (!bs.has(l.step)) throw new Error(`step ${l.step} missing`); return Math.abs(l.loss - bs.get(l.step)!); }));
};
const scratch: string[] = [];
const tmp = (name: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `tunekit-ddp-${name}-`));
  scratch.push(d);
  return d;
};
afterAll(() => scratch.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

// A run: 33 training examples (some labels ignored), 2 epochs, gradient accumulation 2, evaluation each
// epoch on 21 examples (batches of 4: ranks hold 3 and 3, the last batch 1). One process takes micro-
// batches of 8 (the last of an epoch: 1 example); 2 ranks take 4 each (the last: rank 0 one, rank 1 none).
const RUN = { n: 33, accum: 2, epochs: 2 };

const suite = info.available || process.env.CI ? describe : describe.skip;
suite(info.available ? "data-parallel training over Gloo, 2 ranks on loopback" : `data-parallel training [skipped: ${reason}; npm run build:comm]`, () => {
  let one: Result;
  beforeAll(async () => {
    if (!info.available) throw new Error(`${reason}; CI must build it (npm run build:comm, needs libgloo-dev)`);
    one = await single({ ...RUN, batchSize: 8 });
  }, 120_000);

  test("2 ranks × batch 4 equal 1 process × batch 8: every loss within 1e-6, the same evaluations, the same weights on both ranks", async () => {
    const [r0, r1] = await group(2, { ...RUN, batchSize: 4 });
    expect(r0.worldSize).toBe(2);
    expect(r0.losses.map((l) => l.step)).toEqual(one.losses.map((l) => l.step));
    expect(maxLossDiff(r0, one)).toBeLessThanOrEqual(1e-6);
    expect(r1.losses).toEqual(r0.losses); // the reduced loss, the same bits on both
    expect(r1.weights).toBe(r0.weights); // every rank applies the same reduced gradient
    // Sharded evaluation: the same batches as one process, so the same predictions and metrics.
    expect(r0.evals.map((e) => e.confusion_matrix)).toEqual(one.evals.map((e) => e.confusion_matrix));
    expect(Math.abs((r0.final.loss as number) - (one.final.loss as number))).toBeLessThanOrEqual(1e-6);
    expect(r1.final).toEqual(r0.final);
    expect(r0.distributed!.worldSize).toBe(2);
    expect(r0.distributed!.allReduceSecondsPerStep).toBeGreaterThan(0);
  }, 120_000);

  test("gradients reduced in place in many small buckets (no weight decay: one arena range per bucket) give the same losses", async () => {
    const ref = await single({ ...RUN, batchSize: 8, weightDecay: 0 });
    const [r0, r1] = await group(2, { ...RUN, batchSize: 4, weightDecay: 0, distributed: { bucketCapMb: 0.05 } });
    expect(maxLossDiff(r0, ref)).toBeLessThanOrEqual(1e-6);
    expect(r1.weights).toBe(r0.weights);
  }, 120_000);

  test("resume works with a different number of ranks: 2 ranks' checkpoint continued by 1 process, and the other way", async () => {
    const a = tmp("resume-a"), b = tmp("resume-b");
    try {
      await group(2, { ...RUN, batchSize: 4, outDir: a, saveSteps: 2 });
      expect(checkpointProblem(path.join(a, "checkpoint-2"))).toBeNull();
      const cont1 = await single({ ...RUN, batchSize: 8, resume: path.join(a, "checkpoint-2") });
      expect(cont1.losses[0].step).toBe(3);
      expect(maxLossDiff(cont1, one, 2)).toBeLessThanOrEqual(1e-6);
      await single({ ...RUN, batchSize: 8, outDir: b, saveSteps: 2 });
      const [cont2] = await group(2, { ...RUN, batchSize: 4, resume: path.join(b, "checkpoint-2") });
      expect(cont2.losses[0].step).toBe(3);
      expect(maxLossDiff(cont2, one, 2)).toBeLessThanOrEqual(1e-6);
    } finally {
      fs.rmSync(a, { recursive: true, force: true });
      fs.rmSync(b, { recursive: true, force: true });
    }
  }, 180_000);

  test("a rank killed mid-run ends the other within the timeout, naming it; the last checkpoint is intact and resumable", async () => {
    const dir = tmp("kill");
    try {
      const [p0, p1] = await ranks(2, { ...RUN, epochs: 3, batchSize: 4, outDir: dir, saveSteps: 2, killAtStep: { rank: 1, step: 5 } });
      const [r0, r1] = await Promise.all([p0.proc, p1.proc]);
      expect(r1.signal).toBe("SIGKILL");
      expect(r0.code).toBe(1);
      expect(r0.err.trim()).toMatch(/^ddp-run: rank 1 exited without leaving the group \(killed or crashed\); rank 0 stopped at all-reduce #\d+/);
      expect(r0.err.trim().split("\n")).toHaveLength(1);
      expect(r0.endedAt - r1.endedAt).toBeLessThan(TIMEOUT * 1000);
      expect(fs.readdirSync(dir).filter((d) => d.startsWith("checkpoint-")).sort()).toEqual(["checkpoint-2", "checkpoint-4"]);
      expect(checkpointProblem(path.join(dir, "checkpoint-4"))).toBeNull();
      const resumed = await single({ ...RUN, epochs: 3, batchSize: 8, resume: path.join(dir, "checkpoint-4") });
      expect(resumed.losses[0].step).toBe(5);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  test("a rank that stops (SIGSTOP) is named by the other after the timeout, never a silent hang", async () => {
    const [p0, p1] = await ranks(2, { ...RUN, epochs: 3, batchSize: 4, stallAtStep: { rank: 1, step: 3 } });
    try {
      const r0 = await p0.proc;
      expect(r0.code).toBe(1);
      expect(r0.err.trim()).toMatch(/^ddp-run: rank 1 stopped responding \(no heartbeat for \d+ s: the process is stopped or its host is down\); rank 0 stopped at all-reduce #\d+ \(gloo: Timed out waiting 10000ms/);
    } finally {
      p1.kill("SIGKILL");
      await p1.proc;
    }
  }, 120_000);

  test("an error on one rank stops the other at once with that rank's reason; rank 0's death is named by rank 1", async () => {
    const [t0, t1] = await Promise.all((await ranks(2, { ...RUN, epochs: 3, batchSize: 4, throwAtStep: { rank: 1, step: 3 } })).map((p) => p.proc));
    expect(t1.err.trim()).toBe("ddp-run: a callback failed on purpose");
    expect(t0.err.trim()).toMatch(/^ddp-run: rank 1 failed: a callback failed on purpose; rank 0 stopped at all-reduce #\d+/);
    const [k0, k1] = await Promise.all((await ranks(2, { ...RUN, epochs: 3, batchSize: 4, killAtStep: { rank: 0, step: 3 } })).map((p) => p.proc));
    expect(k0.signal).toBe("SIGKILL");
    expect(k1.err.trim()).toMatch(/^ddp-run: rank 0 exited, stopped, or became unreachable \(the rendezvous store it serves does not answer\); rank 1 stopped at all-reduce #\d+/);
    expect(k1.endedAt - k0.endedAt).toBeLessThan(TIMEOUT * 1000);
  }, 120_000);

  describe("bad launch settings: one line each, exit 1", () => {
    const train = ["train", "--data", reviews, "--epochs", "1", "--no-report", "--no-progress"];
    const cli = (env: NodeJS.ProcessEnv, args = train) => start([bin, ...args, "--out", tmp("cli")], { TUNEKIT_THREADS: "1", ...env }).proc;
    const oneLine = (p: Proc, re: RegExp) => {
      expect(p.code).toBe(1);
      expect(p.err.trim().split("\n")).toHaveLength(1);
      expect(p.err.trim()).toMatch(re);
    };

    test("port in use: the launcher refuses it; rank 0 started by hand says so", async () => {
      const busy = net.createServer();
      await new Promise<void>((r) => busy.listen(0, "0.0.0.0", () => r()));
      const port = (busy.address() as net.AddressInfo).port;
      try {
        oneLine(await cli({}, ["launch", "--nproc-per-node", "2", "--master-port", String(port), "--", ...train]),
          new RegExp(`^tunekit: launch: --master-port ${port} is not free on this host \\(EADDRINUSE\\)`));
        oneLine(await cli({ ...torchrunEnv(0, 2, port), TUNEKIT_DIST_TIMEOUT: "3" }),
          new RegExp(`^tunekit: rank 0: cannot serve the rendezvous store on MASTER_PORT ${port}: the port is in use`));
      } finally {
        busy.close();
      }
    }, 60_000);

    test("world size mismatch: both ranks name it", async () => {
      const port = await freePort();
      const [a, b] = await Promise.all([cli({ ...torchrunEnv(0, 2, port), TUNEKIT_DIST_TIMEOUT: "20" }), cli({ ...torchrunEnv(1, 3, port), TUNEKIT_DIST_TIMEOUT: "20" })]);
      oneLine(a, /^tunekit: rank 0: WORLD_SIZE mismatch: rank 1 has WORLD_SIZE=3, rank 0 has 2/);
      oneLine(b, /^tunekit: rank 1: WORLD_SIZE mismatch: rank 1 has WORLD_SIZE=3, rank 0 has 2/);
    }, 60_000);

    test("unreachable master: the rank gives up after the timeout, saying where it looked", async () => {
      const port = await freePort();
      const t0 = Date.now();
      oneLine(await cli({ ...torchrunEnv(1, 2, port), TUNEKIT_DIST_TIMEOUT: "2" }),
        new RegExp(`^tunekit: rank 1: could not reach the rendezvous store at MASTER_ADDR:MASTER_PORT 127.0.0.1:${port} within 2 s \\(last error: Connection refused\\)`));
      expect(Date.now() - t0).toBeLessThan(30_000);
    }, 60_000);

    test("without the library: one process trains as ever, a launched one says how to build it", async () => {
      const none = { TUNEKIT_COMM_LIB: path.join(os.tmpdir(), "no-such-dir", "libtunekit_gloo.so") };
      const solo = await cli(none);
      expect({ code: solo.code, err: solo.err }).toEqual({ code: 0, err: "" });
      oneLine(await cli({ ...none, ...torchrunEnv(1, 2, await freePort()) }),
        /^tunekit: \[rank 1\] distributed training unavailable: libtunekit_gloo\.so is not built .*npm run build:comm.*apt-get install libgloo-dev/);
    }, 120_000);
  });

  test("README's launch line: 2 processes, one report on stdout, one saved model, one log", async () => {
    // The first `npx tunekit launch` line of README.md's data-parallel section, on a small reviews.csv, with a free port.
    const line = fs.readFileSync(path.join(root, "README.md"), "utf8").split("\n").find((l) => l.startsWith("npx tunekit launch --nproc-per-node 2 -- train"))!;
    const args = line.replace(/\s+#.*$/, "").split(/\s+/).slice(2);
    expect(args.slice(0, 5)).toEqual(["launch", "--nproc-per-node", "2", "--", "train"]);
    const work = tmp("launch");
    try {
      fs.copyFileSync(reviews, path.join(work, "reviews.csv"));
      const out = path.join(work, args[args.indexOf("--out") + 1]);
      const r = spawnSync(process.execPath, [bin, "launch", "--master-port", String(await freePort()), ...args.slice(1),
        "--epochs", "2", "--batch-size", "2", "--json", "--no-progress"], { cwd: work, encoding: "utf8", timeout: 180_000 });
      expect({ code: r.status, err: r.stderr }).toEqual({ code: 0, err: expect.any(String) });
      const doc = JSON.parse(r.stdout); // exactly one JSON document: rank 1 prints nothing
      expect(path.resolve(work, doc.out)).toBe(out);
      expect(fs.existsSync(path.join(out, "model.safetensors"))).toBe(true);
      const log = fs.readFileSync(path.join(out, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      // 12 rows, validation 0.1 → 10 training examples; 2 processes × batch 2 = 4 per step → 3 steps per epoch, each logged once.
      expect(log.filter((l) => typeof l.loss === "number").map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 240_000);

  test("tunekit launch reports a killed process, and the survivor's own line names it", async () => {
    const c = JSON.stringify({ ...RUN, epochs: 3, batchSize: 4, killAtStep: { rank: 1, step: 3 } });
    const r = spawnSync(process.execPath, [bin, "launch", "--nproc-per-node", "2", "--master-port", String(await freePort()), "--timeout", String(TIMEOUT), "--", worker, c],
      { encoding: "utf8", timeout: 120_000 });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^tunekit launch: rank 1 \(pid \d+\) was killed by SIGKILL$/),
      expect.stringMatching(/^ddp-run: rank 1 exited without leaving the group \(killed or crashed\); rank 0 stopped at all-reduce #\d+/),
      expect.stringMatching(/^tunekit launch: rank 0 \(pid \d+\) exited with code 1$/),
    ]));
    expect(lines).toHaveLength(3);
  }, 120_000);

  test("the same program under mpirun's (Open MPI) and srun's environments trains as under torchrun's", async () => {
    const [torch] = await group(2, { ...RUN, batchSize: 4, maxSteps: 2 });
    const [ompi] = await group(2, { ...RUN, batchSize: 4, maxSteps: 2 }, (r, port) => ({ OMPI_COMM_WORLD_RANK: String(r), OMPI_COMM_WORLD_SIZE: "2",
      OMPI_COMM_WORLD_LOCAL_RANK: String(r), OMPI_COMM_WORLD_LOCAL_SIZE: "2", MASTER_PORT: String(port) }));
    const [slurm] = await group(2, { ...RUN, batchSize: 4, maxSteps: 2 }, (r, port) => ({ SLURM_PROCID: String(r), SLURM_NTASKS: "2", SLURM_STEP_NUM_TASKS: "2",
      SLURM_LOCALID: String(r), SLURM_STEP_ID: "0", SLURM_NNODES: "1", MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) }));
    expect(ompi.worldSize).toBe(2);
    expect(slurm.worldSize).toBe(2);
    expect(ompi.weights).toBe(torch.weights);
    expect(slurm.weights).toBe(torch.weights);
  }, 120_000);
});

describe("a checkpoint's data position in another global batch size", () => {
  test("exact when it falls on a micro-batch boundary of the new size, else the micro-batch is restarted with a warning", async () => {
    const dir = tmp("position");
    const run = async (c: object) => {
      const p = await start([worker, JSON.stringify({ ...RUN, accum: 1, evalStrategy: "no", ...c })], { TUNEKIT_THREADS: "1" }).proc;
      if (p.code !== 0) throw new Error(p.err);
      return { ...(JSON.parse(p.out) as Result), err: p.err };
    };
    await run({ batchSize: 6, maxSteps: 2, outDir: dir, saveSteps: 2 }); // 12 examples into the epoch
    const exact = await run({ batchSize: 4, resume: path.join(dir, "checkpoint-2") });
    expect(exact.err).toMatch(/6 examples per micro-batch over all processes in the checkpoint, 4 here/);
    expect(exact.err).not.toMatch(/seen twice/);
    expect(exact.steps).toBe(2 + (9 - 3) + 9); // epoch 1: micro-batches 4..9 of 9 (33 / 4), then epoch 2
    const inside = await run({ batchSize: 5, resume: path.join(dir, "checkpoint-2") });
    expect(inside.err).toMatch(/this run restarts the epoch at example 10: 2 examples are seen twice this epoch/);
    expect(inside.steps).toBe(2 + (7 - 2) + 7); // 33 / 5 → 7 micro-batches; restart at the 3rd
  }, 60_000);
});

describe("where a process stands, from its launcher's environment", () => {
  test("torchrun / tunekit launch", () => {
    expect(distributedFromEnv({ RANK: "3", WORLD_SIZE: "4", LOCAL_RANK: "1", MASTER_ADDR: "10.0.0.1", MASTER_PORT: "1234" }))
      .toEqual({ launcher: "torchrun", rank: 3, worldSize: 4, localRank: 1, masterAddr: "10.0.0.1", masterPort: 1234 });
    expect(distributedFromEnv({ RANK: "1", WORLD_SIZE: "2", LOCAL_WORLD_SIZE: "2" })).toMatchObject({ masterAddr: "127.0.0.1", masterPort: 29500 });
    expect(() => distributedFromEnv({ RANK: "0" })).toThrow("RANK is set but WORLD_SIZE is not");
    expect(() => distributedFromEnv({ RANK: "0", WORLD_SIZE: "8", LOCAL_WORLD_SIZE: "4" })).toThrow(/MASTER_ADDR is not set: under torchrun across hosts/);
    expect(() => distributedFromEnv({ RANK: "x", WORLD_SIZE: "2" })).toThrow('RANK must be an integer >= 0, got "x"');
  });
  test("mpirun (Open MPI, MPICH) and srun; a batch script's own SLURM_PROCID is no rank", () => {
    expect(distributedFromEnv({ OMPI_COMM_WORLD_RANK: "1", OMPI_COMM_WORLD_SIZE: "2", OMPI_COMM_WORLD_LOCAL_RANK: "1", OMPI_COMM_WORLD_LOCAL_SIZE: "2" }))
      .toEqual({ launcher: "mpirun", rank: 1, worldSize: 2, localRank: 1, masterAddr: "127.0.0.1", masterPort: 29500 });
    expect(() => distributedFromEnv({ OMPI_COMM_WORLD_RANK: "1", OMPI_COMM_WORLD_SIZE: "16", OMPI_COMM_WORLD_LOCAL_SIZE: "8" })).toThrow(/export MASTER_ADDR/);
    expect(distributedFromEnv({ PMI_RANK: "2", PMI_SIZE: "4", MPI_LOCALRANKID: "0", MASTER_ADDR: "n1" })).toMatchObject({ launcher: "mpirun", rank: 2, worldSize: 4, localRank: 0, masterAddr: "n1" });
    expect(distributedFromEnv({ SLURM_PROCID: "5", SLURM_NTASKS: "8", SLURM_STEP_NUM_TASKS: "6", SLURM_LOCALID: "1", SLURM_STEP_ID: "0", MASTER_ADDR: "n0", MASTER_PORT: "29600" }))
      .toEqual({ launcher: "srun", rank: 5, worldSize: 6, localRank: 1, masterAddr: "n0", masterPort: 29600 });
    expect(distributedFromEnv({ SLURM_PROCID: "0", SLURM_NTASKS: "8", SLURM_JOB_ID: "7" })).toBeNull();
    expect(distributedFromEnv({})).toBeNull();
  });
  test("a rank outside the world is refused before anything starts", () => {
    expect(() => new ProcessGroup({ rank: 2, worldSize: 2 })).toThrow("distributed: rank 2 is not in 0..1 (world size 2)");
    expect(() => new ProcessGroup({ rank: 0, worldSize: 0 })).toThrow("distributed: worldSize must be an integer >= 1, got 0");
  });
  test("the launcher's program line and thread split", () => {
    expect(programOf(["train", "--data", "x.csv"]).slice(1)).toEqual([bin, "train", "--data", "x.csv"]);
    expect(programOf([worker, "{}"]).slice(1)).toEqual([worker, "{}"]);
    expect(() => programOf(["python", "train.py"])).toThrow(/after -- give a tunekit command .* got 'python'/);
    expect(() => programOf([])).toThrow("give the command to run after --");
    expect(threadsPerRank(1)).toBeGreaterThanOrEqual(threadsPerRank(2));
    expect(threadsPerRank(1024)).toBe(1);
  });
});
