// `tunekit launch` (torchrun's role): starts --nproc-per-node processes of one command on this host
// with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR,
// MASTER_PORT), splits the host's cores among them, and watches them: when one fails, the others get
// a grace period to stop on their own (they notice at their next collective and say why), then
// SIGTERM. Multi-host: the same command on every host with --nnodes and its --node-rank.
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { spawn, ChildProcess } from "child_process";
import { TunekitError } from "../errors";
import { DEFAULT_MASTER_PORT, threadsPerRank } from "./env";

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  /** Seconds a collective may take (TUNEKIT_DIST_TIMEOUT of the processes). */
  timeout?: number;
  /** After -- : a tunekit command (train, pretrain, …) or a .js / .mjs / .cjs file run with node, and its arguments. */
  command: string[];
  /** Seconds the other processes get to stop by themselves after one failed (default 30). */
  grace?: number;
}

/** What each process ended with. */
export interface LaunchResult {
  code: number;
  ranks: { rank: number; pid: number; code: number | null; signal: string | null }[];
}

const TUNEKIT_COMMANDS = ["train", "eval", "curve", "pretrain", "predict", "embed", "info", "demo"];

/** The program line of one process: node + bin/tunekit.js + command, or node + the script. */
export function programOf(command: string[]): string[] {
  const [first, ...rest] = command;
  if (!first) throw new TunekitError("launch: give the command to run after -- (e.g. tunekit launch --nproc-per-node 2 -- train --data reviews.csv)");
  if (TUNEKIT_COMMANDS.includes(first)) return [process.execPath, path.join(__dirname, "..", "..", "bin", "tunekit.js"), first, ...rest];
  if (/\.(c|m)?js$/.test(first)) {
    if (!fs.existsSync(first)) throw new TunekitError(`launch: no such script '${first}'`);
    return [process.execPath, first, ...rest];
  }
  throw new TunekitError(`launch: after -- give a tunekit command (${TUNEKIT_COMMANDS.join(", ")}) or a .js / .mjs / .cjs file to run with node; got '${first}'`);
}

function portFree(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.listen(port, "0.0.0.0", () => s.close(() => resolve(null)));
  });
}

/** Starts the processes of this host and resolves when all have ended (code: 0, or the first failure's). */
export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  const nnodes = o.nnodes ?? 1, nodeRank = o.nodeRank ?? 0, port = o.masterPort ?? DEFAULT_MASTER_PORT;
  const check = (name: string, v: number, ok: boolean, expected: string) => {
    if (!ok) throw new TunekitError(`launch: ${name} must be ${expected}, got ${v}`);
  };
  check("--nproc-per-node", o.nprocPerNode, Number.isInteger(o.nprocPerNode) && o.nprocPerNode >= 1, "an integer >= 1");
  check("--nnodes", nnodes, Number.isInteger(nnodes) && nnodes >= 1, "an integer >= 1");
  check("--node-rank", nodeRank, Number.isInteger(nodeRank) && nodeRank >= 0 && nodeRank < nnodes, `an integer in 0..${nnodes - 1} (--nnodes ${nnodes})`);
  check("--master-port", port, Number.isInteger(port) && port >= 1 && port <= 65535, "in 1..65535");
  if (nnodes > 1 && !o.masterAddr) throw new TunekitError(`launch: --nnodes ${nnodes} needs --master-addr, the address of the host with --node-rank 0 (where rank 0 serves the rendezvous)`);
  const program = programOf(o.command);
  if (nodeRank === 0) {
    const busy = await portFree(port);
    if (busy) throw new TunekitError(`launch: --master-port ${port} is not free on this host (${busy}): another job or program uses it; choose another port`);
  }
  const world = nnodes * o.nprocPerNode;
  const children: ChildProcess[] = [];
  const result: LaunchResult = { code: 0, ranks: [] };
  let stopping: NodeJS.Timeout | null = null;
  const stopOthers = () => {
    if (stopping) return;
    const grace = (o.grace ?? 30) * 1000;
    stopping = setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
      setTimeout(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL"); }, 5000).unref();
    }, grace);
    stopping.unref();
  };
  const forward = (sig: NodeJS.Signals) => () => { for (const c of children) c.kill(sig); };
  const onInt = forward("SIGINT"), onTerm = forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    await Promise.all(Array.from({ length: o.nprocPerNode }, (_, local) => new Promise<void>((resolve) => {
      const rank = nodeRank * o.nprocPerNode + local;
      const env: NodeJS.ProcessEnv = {
        ...process.env, RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        GROUP_RANK: String(nodeRank), MASTER_ADDR: o.masterAddr ?? "127.0.0.1", MASTER_PORT: String(port),
        // torchrun sets OMP_NUM_THREADS=1; tunekit divides the host's cores among its processes.
        TUNEKIT_THREADS: process.env.TUNEKIT_THREADS ?? String(threadsPerRank(o.nprocPerNode)),
        ...(o.timeout !== undefined ? { TUNEKIT_DIST_TIMEOUT: String(o.timeout) } : {}),
      };
      const child = spawn(program[0], program.slice(1), { env, stdio: "inherit" });
      children.push(child);
      const entry = { rank, pid: child.pid ?? -1, code: null as number | null, signal: null as string | null };
      result.ranks.push(entry);
      child.on("error", (e) => {
        console.error(`tunekit launch: rank ${rank} could not start: ${e.message}`);
        entry.code = 1;
        if (!result.code) result.code = 1;
        stopOthers();
        resolve();
      });
      child.on("exit", (code, signal) => {
        entry.code = code;
        entry.signal = signal;
        if (code !== 0) {
          console.error(`tunekit launch: rank ${rank} (pid ${entry.pid}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`);
          if (!result.code) result.code = code && code > 0 ? code : 1;
          stopOthers();
        }
        resolve();
      });
    })));
  } finally {
    if (stopping) clearTimeout(stopping);
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
  result.ranks.sort((a, b) => a.rank - b.rank);
  return result;
}
