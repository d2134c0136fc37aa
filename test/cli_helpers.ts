// Running the `tunekit` command as a user does (a child process per call) for the CLI test files.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const root = path.resolve(__dirname, "..");
const bin = path.join(root, "bin", "tunekit.js");
export const fx = (f: string): string => path.join(root, "test", "fixtures", "data", f);

/** A scratch folder for one test file, removed after it. */
export function scratch(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tunekit-${name}-`));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Run { code: number; out: string; err: string }

export function tunekit(cwd: string, ...args: string[]): Run {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd, env: { ...process.env, TUNEKIT_DEBUG: "" }, timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** `tunekit … --json`: stdout must be exactly one JSON document. */
export function json(cwd: string, args: string[]): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = tunekit(cwd, ...args, "--json");
  if (r.code !== 0) throw new Error(`tunekit ${args.join(" ")} exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out);
}

/** A user error: the exit code, one line naming the problem, no stack trace. */
export function expectUserError(r: Run, pattern: RegExp, code = 1): void {
  expect({ code: r.code, err: r.err }).toEqual({ code, err: expect.stringMatching(pattern) });
  expect(r.err).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
}

/** Sentence pairs with an STS-B-like 0-5 score: near paraphrases high, opposites low. */
export function writePairs(file: string, n = 24): void {
  const pos = ["a gorgeous, witty film", "I loved every minute", "superb acting and a moving story", "funny, warm and wise", "a triumph"];
  const neg = ["a dull, lifeless mess", "boring and far too long", "the plot makes no sense", "I want my two hours back", "flat and tedious"];
  const rows = Array.from({ length: n }, (_, i) => `"${pos[i % 5]}","${i % 3 ? neg[(i + 2) % 5] : pos[(i + 1) % 5]}",${i % 3 ? (i % 4) * 0.4 : 4 + (i % 5) * 0.2}`);
  fs.writeFileSync(file, ["sentence1,sentence2,score", ...rows].join("\n") + "\n");
}
