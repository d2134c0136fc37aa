export { TunekitError } from "./errors";
export { native } from "./native";
export type { NativeAddon, Isa, GemmArgs } from "./native";
