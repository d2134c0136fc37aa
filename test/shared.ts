// Location of the shared test material (real checkpoints and datasets, ../shared beside the repo) and
// describe() / test() for what needs it. TUNEKIT_SHARED overrides the location (git worktrees live
// elsewhere). Only tests that need the real files go through these: PyTorch-made checkpoints whose parity
// goldens are committed, and the real datasets; everything else runs on the embedded models/brown-bert and
// test/fixtures. Without the material such a test is skipped with the reason in its name, except under
// CI, where it fails instead: in CI the real-checkpoint tests must run.
import * as fs from "fs";
import * as path from "path";

export function sharedDir(): string {
  return process.env.TUNEKIT_SHARED ? path.resolve(process.env.TUNEKIT_SHARED) : path.resolve(__dirname, "..", "..", "shared");
}

export const modelDir = (name: string): string => path.join(sharedDir(), "models", name);

/** What of ../shared is missing ("" when models/ and data/ are both there). */
function missing(): string {
  const dir = sharedDir();
  return ["models", "data"].map((d) => path.join(dir, d)).filter((d) => !fs.existsSync(d)).join(", ");
}

const skipNote = (gone: string) => `[skipped: needs ../shared, ${gone} not found; set TUNEKIT_SHARED to the shared dir]`;
const ciFailure = (gone: string) => () => {
  throw new Error(`${gone} missing; CI must provide ../shared (or set TUNEKIT_SHARED)`);
};

/** A suite whose every test needs ../shared. */
export function describeShared(name: string, fn: () => void): void {
  const gone = missing();
  if (!gone) describe(name, fn);
  else if (process.env.CI) describe(name, () => test("shared test material is present", ciFailure(gone)));
  else describe.skip(`${name} ${skipNote(gone)}`, fn);
}

/** One test that needs ../shared, in a suite whose other tests do not. */
export function testShared(name: string, fn: jest.ProvidesCallback, timeout?: number): void {
  const gone = missing();
  if (!gone) test(name, fn, timeout);
  else if (process.env.CI) test(`${name}: shared test material is present`, ciFailure(gone));
  else test.skip(`${name} ${skipNote(gone)}`, fn, timeout);
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
