// The package loads both ways a user writes it: require("tunekit") and import ... from "tunekit".
import { execFileSync } from "child_process";
import * as path from "path";

const root = path.join(__dirname, "..");
const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: "utf8" }).trim();

describe("package entry points (built dist/)", () => {
  test("require('tunekit') gives the API", () => {
    const out = run(["-e", "const t = require('tunekit'); console.log(typeof t.native.gemm, t.native.isa().length > 0, typeof t.TunekitError)"]);
    expect(out).toBe("function true function");
  });
  test("import { native } from 'tunekit' gives the same API", () => {
    const out = run(["--input-type=module", "-e", "import { native, TunekitError } from 'tunekit'; import t from 'tunekit'; console.log(typeof native.gemm, native === t.native, typeof TunekitError)"]);
    expect(out).toBe("function true function");
  });
});

test("esm/index.mjs re-exports every named export of the CommonJS build", () => {
  const out = run(["--input-type=module", "-e", "import * as esm from 'tunekit'; import { createRequire } from 'module'; const cjs = createRequire(import.meta.url)('tunekit'); const missing = Object.keys(cjs).filter((k) => !(k in esm)); console.log(JSON.stringify(missing))"]);
  expect(JSON.parse(out)).toEqual([]);
});
