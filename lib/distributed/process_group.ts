// A process group (torch.distributed's): the ranks of one data-parallel job and the collectives among
// them, over the communication backend library (native/comm/, Gloo). One default group per process,
// as torch's init_process_group makes; the Trainer uses it.
import { TunekitError } from "../errors";
import { native } from "../native";
import type { CommInfo } from "../native";
import { CommBackendName, DistributedOptions, DEFAULT_MASTER_PORT, distributedFromEnv, timeoutSeconds } from "./env";

export class ProcessGroup {
  readonly backend: CommBackendName;
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly timeout: number;
  readonly bucketCapMb: number;
  private id: number | null;

  /** Joins the group (every rank must); use initProcessGroup() for the process's default group. */
  constructor(o: DistributedOptions) {
    const backend = o.backend ?? "gloo";
    if (backend !== "gloo" && backend !== "nccl") throw new TunekitError(`distributed: backend must be "gloo" or "nccl", got ${JSON.stringify(backend)}`);
    const intIn = (name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number => {
      if (!(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max))
        throw new TunekitError(`distributed: ${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`}, got ${JSON.stringify(v)}`);
      return v as number;
    };
    this.worldSize = intIn("worldSize", o.worldSize, 1);
    if (!(Number.isSafeInteger(o.rank) && o.rank >= 0 && o.rank < this.worldSize))
      throw new TunekitError(`distributed: rank ${JSON.stringify(o.rank)} is not in 0..${this.worldSize - 1} (world size ${this.worldSize})`);
    this.rank = o.rank;
    this.localRank = o.localRank === undefined ? this.rank : intIn("localRank", o.localRank, 0);
    this.timeout = timeoutSeconds(o.timeout);
    this.bucketCapMb = o.bucketCapMb ?? 25;
    if (!(typeof this.bucketCapMb === "number" && this.bucketCapMb > 0)) throw new TunekitError(`distributed: bucketCapMb must be > 0, got ${JSON.stringify(o.bucketCapMb)}`);
    this.backend = backend;
    const info = native.commInfo(backend);
    if (!info.available) throw new TunekitError(info.reason);
    this.id = native.commInit({
      backend, rank: this.rank, worldSize: this.worldSize, masterAddr: o.masterAddr ?? "127.0.0.1", timeoutMs: Math.round(this.timeout * 1000),
      masterPort: intIn("masterPort", o.masterPort ?? DEFAULT_MASTER_PORT, 1, 65535), ifname: o.ifname ?? process.env.GLOO_SOCKET_IFNAME ?? "",
    });
  }

  private get group(): number {
    if (this.id === null) throw new TunekitError("distributed: the process group was destroyed");
    return this.id;
  }

  /** x = the sum of x over the ranks, in place (the same bits on every rank). */
  allReduce(x: Float32Array | Float64Array): void {
    native.commAllReduce({ group: this.group, x });
  }
  /** The same, started on the library's thread: returns a ticket for wait(); x must stay untouched until then. */
  allReduceStart(x: Float32Array): number {
    return native.commAllReduceStart({ group: this.group, x });
  }
  /** Waits for a started all-reduce (and every collective before it); returns the seconds waited. */
  wait(ticket: number): number {
    return native.commWait({ group: this.group, ticket });
  }
  /** root's x copied into x on every rank (any typed array: f32, bf16, int weights). */
  broadcast(x: ArrayBufferView, root = 0): void {
    native.commBroadcast({ group: this.group, x, root });
  }
  /** Every rank's bytes, indexed by rank (torch's all_gather_object, for bytes). */
  allGather(bytes: Uint8Array): Uint8Array[] {
    // Sizes first, so that every rank knows where each rank's bytes go; an empty message sends one byte.
    const sizes = new Float64Array(this.worldSize);
    sizes[this.rank] = bytes.length;
    this.allReduce(sizes);
    const counts = Array.from(sizes, (n) => Math.max(1, n));
    const all = native.commAllGather({ group: this.group, x: bytes.length ? bytes : new Uint8Array(1), counts });
    const out: Uint8Array[] = [];
    let at = 0;
    counts.forEach((c, r) => {
      out.push(all.subarray(at, at + sizes[r]));
      at += c;
    });
    return out;
  }
  barrier(): void {
    native.commBarrier({ group: this.group });
  }
  /** Seconds spent inside collectives (on the library's thread) and how many ran, since the group began. */
  stats(): { seconds: number; collectives: number } {
    return native.commStats({ group: this.group });
  }
  /**
   * Gives up after an error of this rank: the others are told (their error names this rank and the
   * reason) and stop at their next collective. The group is unusable afterwards.
   */
  abort(reason: string): void {
    if (this.id !== null) native.commAbort({ group: this.id, reason });
  }
  /** Leaves the group after a barrier with the other ranks (none once the group failed). */
  destroy(): void {
    if (this.id === null) return;
    const id = this.id;
    this.id = null;
    if (defaultGroup === this) defaultGroup = null;
    native.commDestroy({ group: id });
  }
  get destroyed(): boolean {
    return this.id === null;
  }
}

let defaultGroup: ProcessGroup | null = null;

/**
 * Joins the process's default group (torch.distributed.init_process_group): from `options`, else from
 * what the launcher put in the environment (distributedFromEnv). Returns the group already made when
 * there is one with the same rank and world size.
 */
export function initProcessGroup(options: Partial<DistributedOptions> = {}): ProcessGroup {
  const env = distributedFromEnv();
  const o = { ...(env ?? {}), ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Partial<DistributedOptions>;
  if (o.rank === undefined || o.worldSize === undefined)
    throw new TunekitError("distributed: no rank and world size: start the processes with `tunekit launch` (or torchrun, mpirun, srun), or pass { rank, worldSize, masterAddr, masterPort }");
  if (defaultGroup) {
    if (defaultGroup.rank !== o.rank || defaultGroup.worldSize !== o.worldSize)
      throw new TunekitError(`distributed: this process already belongs to a group as rank ${defaultGroup.rank} of ${defaultGroup.worldSize}; destroyProcessGroup() it first`);
    return defaultGroup;
  }
  defaultGroup = new ProcessGroup(o as DistributedOptions);
  return defaultGroup;
}

/** The default group, or null before initProcessGroup (or after destroyProcessGroup). */
export function getProcessGroup(): ProcessGroup | null {
  return defaultGroup;
}

/** Leaves the default group, if any (after a barrier with the other ranks). */
export function destroyProcessGroup(): void {
  defaultGroup?.destroy();
  defaultGroup = null;
}

/** This process's rank in the job: the default group's, else the launcher's (RANK, ...), else 0. */
export function worldRank(): number {
  if (defaultGroup) return defaultGroup.rank;
  try {
    return distributedFromEnv()?.rank ?? 0;
  } catch {
    return 0;
  }
}

/** Whether this process reports, logs and saves for the job (HF's is_world_process_zero). */
export function isWorldProcessZero(): boolean {
  return worldRank() === 0;
}

/** Whether the communication backend library loads here, and why not (built with `npm run build:comm`). */
export function distributedInfo(backend: CommBackendName = "gloo"): CommInfo {
  return native.commInfo(backend);
}
