// Where the shared test material (../shared: real checkpoints and data sets) lives, and a describe()
// that skips visibly only when it is missing outside CI (in CI a missing ../shared must fail).
import * as fs from "fs";
import * as path from "path";

export function sharedDir(): string {
  return process.env.TUNEKIT_SHARED ?? path.resolve(__dirname, "..", "..", "shared");
}

export function describeShared(name: string, fn: () => void): void {
  const dir = sharedDir();
  if (!fs.existsSync(dir) && !process.env.CI) {
    console.warn(`SKIPPED "${name}": shared test material not found at ${dir} (set TUNEKIT_SHARED to its path)`);
    describe.skip(name, fn);
    return;
  }
  describe(name, fn);
}
