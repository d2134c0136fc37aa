// Where a process stands in a data-parallel job, from what its launcher put in the environment:
// torchrun's variables (as `tunekit launch` sets them), Open MPI's or MPICH's under mpirun, Slurm's
// inside an srun step. The same program runs under any of them.
import * as os from "os";
import { TunekitError } from "../errors";

export type CommBackendName = "gloo" | "nccl";

/** A process group's settings (torch.distributed.init_process_group's, under tunekit's names). */
export interface DistributedOptions {
  /** "gloo" (CPUs, TCP; the default) or "nccl" (GPUs: not written yet). */
  backend?: CommBackendName;
  /** This process's rank, 0 .. worldSize − 1. */
  rank: number;
  /** How many processes train together. */
  worldSize: number;
  /** The rank among the processes of this host (LOCAL_RANK). */
  localRank?: number;
  /** Host of rank 0, which serves the rendezvous (default 127.0.0.1). */
  masterAddr?: string;
  /** Its port (default 29500, torchrun's). */
  masterPort?: number;
  /**
   * Seconds the rendezvous and each collective may take before the group fails with an error naming
   * the rank at fault (default: TUNEKIT_DIST_TIMEOUT, else 300). A rank that exits is noticed at once.
   */
  timeout?: number;
  /** Gradient bytes per all-reduce bucket in MB (torch DDP's bucket_cap_mb, default 25; the first bucket holds 1 MB). */
  bucketCapMb?: number;
  /** Network interface of the collectives' sockets (GLOO_SOCKET_IFNAME); default: the one that routes to masterAddr. */
  ifname?: string;
}

/** The settings a launcher left in the environment, and which launcher it was. */
export type LaunchedAs = Required<Pick<DistributedOptions, "rank" | "worldSize" | "localRank" | "masterAddr" | "masterPort">> & {
  launcher: "torchrun" | "mpirun" | "srun";
};

export const DEFAULT_MASTER_PORT = 29500;

function int(env: NodeJS.ProcessEnv, name: string, min: number): number {
  const v = env[name];
  if (v === undefined || !/^\d+$/.test(v.trim()) || Number(v) < min) throw new TunekitError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/**
 * The rank, world size, local rank and rendezvous address of this process from its environment, or
 * null when no launcher started it (a single process). In order:
 *   RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (torchrun, `tunekit launch`);
 *   OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK (Open MPI's mpirun), PMI_RANK / PMI_SIZE / MPI_LOCALRANKID (MPICH, Intel MPI);
 *   SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS), SLURM_LOCALID inside an srun step (SLURM_STEP_ID set:
 *   a batch script's own SLURM_PROCID is not a rank).
 * Under mpirun or srun MASTER_ADDR comes from the environment; when every rank is on this host it
 * defaults to 127.0.0.1, across hosts it must be set (the host of rank 0).
 */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): LaunchedAs | null {
  const port = () => (env.MASTER_PORT !== undefined ? int(env, "MASTER_PORT", 1) : DEFAULT_MASTER_PORT);
  const masterAddr = (oneHost: boolean, launcher: string): string => {
    if (env.MASTER_ADDR) return env.MASTER_ADDR;
    if (oneHost) return "127.0.0.1";
    throw new TunekitError(`MASTER_ADDR is not set: under ${launcher} across hosts, export MASTER_ADDR=<the host of rank 0> (and MASTER_PORT, default ${DEFAULT_MASTER_PORT}) before starting the job`);
  };
  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) {
    if (env.RANK === undefined || env.WORLD_SIZE === undefined)
      throw new TunekitError(`${env.RANK === undefined ? "WORLD_SIZE" : "RANK"} is set but ${env.RANK === undefined ? "RANK" : "WORLD_SIZE"} is not: a launcher sets both (tunekit launch, torchrun)`);
    const rank = int(env, "RANK", 0), worldSize = int(env, "WORLD_SIZE", 1);
    return { launcher: "torchrun", rank, worldSize, localRank: env.LOCAL_RANK !== undefined ? int(env, "LOCAL_RANK", 0) : rank,
      masterAddr: masterAddr(worldSize === 1 || env.LOCAL_WORLD_SIZE === String(worldSize), "torchrun"), masterPort: port() };
  }
  if (env.OMPI_COMM_WORLD_RANK !== undefined || env.PMI_RANK !== undefined) {
    const ompi = env.OMPI_COMM_WORLD_RANK !== undefined;
    const rank = int(env, ompi ? "OMPI_COMM_WORLD_RANK" : "PMI_RANK", 0), worldSize = int(env, ompi ? "OMPI_COMM_WORLD_SIZE" : "PMI_SIZE", 1);
    const local = ompi ? "OMPI_COMM_WORLD_LOCAL_RANK" : "MPI_LOCALRANKID";
    const oneHost = ompi ? env.OMPI_COMM_WORLD_LOCAL_SIZE === String(worldSize) : worldSize === 1;
    return { launcher: "mpirun", rank, worldSize, localRank: env[local] !== undefined ? int(env, local, 0) : rank,
      masterAddr: masterAddr(oneHost, "mpirun"), masterPort: port() };
  }
  if (env.SLURM_PROCID !== undefined && (env.SLURM_STEP_ID !== undefined || env.SLURM_STEPID !== undefined)) {
    const rank = int(env, "SLURM_PROCID", 0);
    const worldSize = int(env, env.SLURM_STEP_NUM_TASKS !== undefined ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS", 1);
    const nodes = env.SLURM_STEP_NUM_NODES ?? env.SLURM_NNODES;
    return { launcher: "srun", rank, worldSize, localRank: env.SLURM_LOCALID !== undefined ? int(env, "SLURM_LOCALID", 0) : rank,
      masterAddr: masterAddr(worldSize === 1 || nodes === "1", "srun"), masterPort: port() };
  }
  return null;
}

/** The timeout in seconds: the option, else TUNEKIT_DIST_TIMEOUT, else 300. */
export function timeoutSeconds(option: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const v = option ?? (env.TUNEKIT_DIST_TIMEOUT !== undefined ? Number(env.TUNEKIT_DIST_TIMEOUT) : 300);
  if (!(typeof v === "number" && Number.isFinite(v) && v > 0))
    throw new TunekitError(`the distributed timeout must be a number of seconds > 0, got ${option !== undefined ? JSON.stringify(option) : `TUNEKIT_DIST_TIMEOUT=${JSON.stringify(env.TUNEKIT_DIST_TIMEOUT)}`}`);
  return v;
}

/** Threads per rank when n ranks share this host: its cores divided among them (torchrun sets OMP_NUM_THREADS=1). */
export function threadsPerRank(n: number): number {
  const cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.floor(cores / n));
}
