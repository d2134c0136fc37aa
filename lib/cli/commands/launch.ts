// tunekit launch: data-parallel training on several processes (torchrun's flags and environment).
import { Command } from "commander";
import { int, above, Action } from "../args";
import { launch } from "../../distributed/launch";
import { DEFAULT_MASTER_PORT } from "../../distributed/env";

type LaunchFlags = { nprocPerNode: number; nnodes: number; nodeRank: number; masterAddr?: string; masterPort: number; timeout?: number };

async function launchCmd(command: string[], flags: LaunchFlags): Promise<void> {
  const r = await launch({ ...flags, command });
  process.exitCode = r.code;
}

export function registerLaunch(program: Command, run: (fn: Action) => Action): void {
  program.command("launch").description("data-parallel training: run a command as --nproc-per-node processes (per host) that train as one, like torchrun")
    .argument("<command...>", "after --: a tunekit command (train, pretrain, eval, …) or a .js file, with its arguments")
    .option("--nproc-per-node <n>", "processes on this host (each gets the host's cores divided by n, TUNEKIT_THREADS)", int(1), 1)
    .option("--nnodes <n>", "hosts taking part", int(1), 1)
    .option("--node-rank <r>", "this host's index, 0 .. nnodes-1 (rank 0 runs on --node-rank 0)", int(0), 0)
    .option("--master-addr <host>", "address of the --node-rank 0 host, reachable from every host (default 127.0.0.1: one host)")
    .option("--master-port <port>", "port of the rendezvous on that host", int(1), DEFAULT_MASTER_PORT)
    .option("--timeout <seconds>", "how long a collective (or the rendezvous) may take before the job stops naming the rank at fault (default 300)", above(0))
    .addHelpText("after", `
Each process gets torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); the
same program also runs under mpirun or srun. --batch-size is per process: N processes train like one
with batch N × batch size. Only rank 0 prints, logs and saves.

Examples:
  $ tunekit launch --nproc-per-node 2 -- train --data reviews.csv --out ./out
  $ tunekit launch --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --nproc-per-node 8 -- train --data reviews.csv   # on host 10.0.0.1
  $ tunekit launch --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --nproc-per-node 8 -- train --data reviews.csv   # on the other host`)
    .action(run(launchCmd as Action));
}
