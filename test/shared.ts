// Location of the shared test material (real checkpoints and datasets, ../shared beside the repo) and
// a describe() that needs it. TUNEKIT_SHARED overrides the location (git worktrees live elsewhere).
// Without the material a suite is skipped with its reason in the name, except under CI, where
// the suite fails instead: in CI the real-checkpoint tests must run.
import * as fs from "fs";
import * as path from "path";

export function sharedDir(): string {
  return process.env.TUNEKIT_SHARED ? path.resolve(process.env.TUNEKIT_SHARED) : path.resolve(__dirname, "..", "..", "shared");
}

export const modelDir = (name: string): string => path.join(sharedDir(), "models", name);

export function describeShared(name: string, fn: () => void): void {
  const dir = sharedDir();
  if (fs.existsSync(path.join(dir, "models"))) {
    describe(name, fn);
  } else if (process.env.CI) {
    describe(name, () => {
      test("shared test material is present", () => {
        throw new Error(`${dir}/models is missing; CI must provide ../shared (or set TUNEKIT_SHARED)`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${dir}/models not found; set TUNEKIT_SHARED to the shared dir]`, fn);
  }
}

/** Wall-clock timings of a test file's steps, printed together once the file is done. */
export function timings(title: string): <T>(label: string, fn: () => T) => T {
  const lines: string[] = [];
  afterAll(() => {
    if (lines.length) console.log(`${title} (this machine, one run each):\n${lines.join("\n")}`);
  });
  return (label, fn) => {
    const t0 = process.hrtime.bigint();
    const out = fn();
    lines.push(`${label.padEnd(56)} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1).padStart(8)} ms`);
    return out;
  };
}
