// readJson / parseJson / tryParseJson (lib/io/json_safe.ts): the one guarded way tunekit reads JSON.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readJson, parseJson, tryParseJson, MAX_JSON_DEPTH } from "../lib/io/json_safe";
import { TunekitError, ConfigError, DatasetError } from "../lib/errors";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tk-json-"));
const write = (name: string, text: string) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
};
const errorOf = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
};
const deep = (n: number) => "[".repeat(n) + "]".repeat(n);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("readJson", () => {
  test("parses a file", () => {
    expect(readJson(write("ok.json", '{"a": [1, {"b": null}]}'))).toEqual({ a: [1, { b: null }] });
  });

  test("a syntax error names the file and, across lines, the line", () => {
    const f = write("bad.json", '{\n  "a": 1,\n  "b": }\n');
    const e = errorOf(() => readJson(f));
    expect(e).toBeInstanceOf(TunekitError);
    expect(e.message).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3: not valid JSON \\(`));
    expect(errorOf(() => readJson(write("one.json", "{x}"))).message).toMatch(/one\.json: not valid JSON \(/);
  });

  test("nesting past MAX_JSON_DEPTH is refused before parsing; at the limit it parses", () => {
    expect(errorOf(() => readJson(write("deep.json", deep(MAX_JSON_DEPTH + 1)))).message)
      .toMatch(/deep\.json: JSON nests deeper than 512 levels \(at character 512\); expected a flat document/);
    expect(readJson(write("limit.json", deep(MAX_JSON_DEPTH)))).toBeInstanceOf(Array);
  });

  test("an unreadable file, `what` and the error class the caller asks for", () => {
    const missing = path.join(tmp, "absent.json");
    const e = errorOf(() => readJson(missing, missing, ConfigError));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/^cannot read .*absent\.json: ENOENT/);
    const bad = write("state.json", "{");
    expect(errorOf(() => readJson(bad, `resumeFrom: ${bad}`)).message).toMatch(/^resumeFrom: .*state\.json: not valid JSON/);
  });
});

describe("parseJson / tryParseJson", () => {
  test("parseJson names `what` and throws the class given", () => {
    expect(parseJson('{"k": "v"}', "header")).toEqual({ k: "v" });
    const e = errorOf(() => parseJson("[1,", "x.safetensors: header", DatasetError));
    expect(e).toBeInstanceOf(DatasetError);
    expect(e.message).toMatch(/^x\.safetensors: header: not valid JSON \(/);
  });

  test("tryParseJson returns the value or the problem, never throws", () => {
    expect(tryParseJson("[1, 2]")).toEqual({ value: [1, 2] });
    const r = tryParseJson('{"a": tru}');
    expect("problem" in r && r.problem).toMatch(/^not valid JSON \(/);
    expect("at" in r && r.at).toBe(6);
    expect(tryParseJson(deep(100_000))).toEqual({ problem: expect.stringMatching(/^JSON nests deeper than 512/), at: -1 });
  });
});
