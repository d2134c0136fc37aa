// What the Trainer does differently under data parallelism (torch DDP + HF Trainer semantics), kept
// here so trainer.ts stays one loop: which group it trains in, the parameters broadcast from rank 0,
// each rank's share of a global micro-batch, and the check that every rank resumed at the same place.
import { TunekitError } from "../errors";
import type { Device } from "../tensor/storage";
import type { Parameter } from "../nn/module";
import { DistributedOptions, distributedFromEnv } from "./env";
import { ProcessGroup, getProcessGroup, initProcessGroup } from "./process_group";

/**
 * The Trainer's `distributed` option → its group: a ProcessGroup as given; settings → the default
 * group made from them; false → none; absent → the default group, else one from the launcher's
 * environment when it starts more than one process, else none (a single process).
 */
export function trainerGroup(option: DistributedOptions | ProcessGroup | false | undefined, device: Device): ProcessGroup | null {
  if (option === false) return null;
  let group: ProcessGroup | null;
  if (option instanceof ProcessGroup) group = option;
  else if (option !== undefined) {
    if (typeof option !== "object" || option === null) throw new TunekitError(`Trainer: distributed must be a ProcessGroup, { rank, worldSize, … } or false, got ${JSON.stringify(option)}`);
    group = initProcessGroup(option);
  } else group = getProcessGroup() ?? ((distributedFromEnv()?.worldSize ?? 1) > 1 ? initProcessGroup() : null);
  if (group?.destroyed) throw new TunekitError("Trainer: the process group given as distributed was destroyed");
  if (group && device !== "cpu")
    throw new TunekitError(`Trainer: distributed training on ${device} needs the NCCL backend, which is not written yet; data-parallel training runs on CPUs (Gloo)`);
  return group;
}

/** Every rank starts from rank 0's weights (DDP's broadcast of the module state at construction). */
export function broadcastParameters(group: ProcessGroup, params: Iterable<Parameter>): void {
  for (const p of params) group.broadcast(p.storage.handle as ArrayBufferView, 0);
}

/**
 * This rank's examples of global micro-batch `indices` (world size × batchSize positions of the epoch's
 * permutation): every world-size-th from its rank on (DistributedSampler's interleave), so the ranks'
 * shares together are exactly the batch one process would take. The last one of an epoch may leave a
 * rank fewer examples, or none.
 */
export function shareOf(indices: number[], group: ProcessGroup | null): number[] {
  if (!group || group.worldSize === 1) return indices;
  return indices.filter((_, k) => k % group.worldSize === group.rank);
}

/** Fails on every rank unless all of them resumed at the same step and data position (one checkpoint seen by all). */
export function checkSameStart(group: ProcessGroup, s: { step: number; epoch: number; batchInEpoch: number }): void {
  const mine = Float64Array.of(s.step, s.epoch, s.batchInEpoch);
  const root = Float64Array.from(mine);
  group.broadcast(root, 0);
  const off = new Float64Array(group.worldSize);
  off[group.rank] = root.some((v, i) => v !== mine[i]) ? 1 : 0;
  group.allReduce(off);
  const ranks = [...off.keys()].filter((r) => off[r] > 0);
  if (ranks.length)
    throw new TunekitError(`distributed: rank${ranks.length > 1 ? "s" : ""} ${ranks.join(", ")} resumed elsewhere than rank 0 (step ${root[0]}, epoch ${root[1]}, ` +
      `micro-batch ${root[2]}${off[group.rank] ? `; this rank: step ${s.step}, epoch ${s.epoch}, micro-batch ${s.batchInEpoch}` : ""}): ` +
      "every rank must see the same checkpoint (outputDir on a file system all of them share)");
}
