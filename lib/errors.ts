/** Every error tunekit throws on purpose is a TunekitError; the message names what was wrong and what was expected. */
export class TunekitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TunekitError";
  }
}

// ---- io (lib/io): checkpoint and config errors ----
/** A checkpoint file (safetensors, pytorch_model.bin, shard index) is missing, malformed, hostile or unsupported. */
export class CheckpointError extends TunekitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    this.name = "CheckpointError";
    if (options && "cause" in options) (this as { cause?: unknown }).cause = options.cause;
  }
}

/** A config.json is missing, malformed, or describes a model tunekit does not support. */
export class ConfigError extends TunekitError {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
// ---- end io ----

// ---- data (lib/data) ----
/** A dataset file is missing, malformed, or does not hold what the task needs; the message names the file and line. */
export class DatasetError extends TunekitError {
  constructor(message: string) {
    super(message);
    this.name = "DatasetError";
  }
}
// ---- end data ----

// ---- numerics (lib/tensor/finite.ts) ----
/** A tensor holds NaN or ±Infinity where only finite values may go (a checkpoint, a saved model). */
export class NonFiniteError extends TunekitError {
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteError";
  }
}
// ---- end numerics ----
