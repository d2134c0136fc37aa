// Data-parallel training over a collective library (Gloo on CPUs): process groups, the launcher, and
// what the Trainer uses to train as one across processes.
export { ProcessGroup, initProcessGroup, getProcessGroup, destroyProcessGroup, isWorldProcessZero, worldRank, distributedInfo } from "./process_group";
export { distributedFromEnv, DEFAULT_MASTER_PORT } from "./env";
export type { DistributedOptions, LaunchedAs, CommBackendName } from "./env";
export { launch } from "./launch";
export type { LaunchOptions, LaunchResult } from "./launch";
