// Crash safety in the suite: scripts/crash-resume.mjs with 3 SIGKILLs (the first inside a checkpoint
// write). Every checkpoint left on disk must be complete and the resumed run must end bit-identical
// to an uninterrupted one. The full measurement (20 kills) is `npm run crash-resume`. It trains
// bert-tiny-mlm from ../shared, or without it random weights in bert-tiny's shapes.
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import { modelDir, sharedDir } from "./shared";

describe("crash safety (SIGKILL during training and checkpoint writes)", () => {
  test("3 kills: checkpoints stay whole, the resumed run ends bit-identical", () => {
    const script = path.join(__dirname, "..", "scripts", "crash-resume.mjs");
    const r = spawnSync(process.execPath, [script, "--kills", "3", "--steps", "16", "--seed", "7", "--json"], {
      encoding: "utf8", timeout: 300_000, env: { ...process.env, TUNEKIT_SHARED: sharedDir() },
    });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(summary.model).toBe(fs.existsSync(modelDir("bert-tiny-mlm")) ? "bert-tiny-mlm" : "random weights, bert-tiny shapes");
    expect(summary.kills).toBe(3);
    expect(summary.duringWrite).toBeGreaterThanOrEqual(1);  // the first kill waits for a checkpoint's temporary directory
    expect(summary.bitIdentical).toBe(true);
    expect(summary.differing).toEqual([]);
    expect(summary.tensors).toBeGreaterThan(30);
  });
});
