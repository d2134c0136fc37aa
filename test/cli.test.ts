// The `tunekit` command end to end, as a user runs it (a child process per call), on the committed
// tiny fixtures and the embedded model: every command, --json, and the one-line errors.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { native } from "../lib/native";

const root = path.resolve(__dirname, "..");
const bin = path.join(root, "bin", "tunekit.js");
const fx = (f: string) => path.join(root, "test", "fixtures", "data", f);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-cli-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tunekit(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd: tmp, env: { ...process.env, TUNEKIT_DEBUG: "" }, timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function json(args: string[]): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = tunekit(...args, "--json");
  if (r.code !== 0) throw new Error(`tunekit ${args.join(" ")} exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out);
}

/** A user error: non-zero exit, one line naming the problem, no stack trace. */
function expectUserError(r: { code: number; err: string }, pattern: RegExp, code = 1): void {
  expect(r.code).toBe(code);
  expect(r.err).toMatch(pattern);
  expect(r.err).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
}

const quick = ["--max-steps", "3", "--batch-size", "4", "--no-progress", "--max-length", "32"];

describe("tunekit CLI", () => {
  const out = path.join(tmp, "out");

  test("--help lists every command, and each command's help has examples", () => {
    const r = tunekit("--help");
    expect(r.code).toBe(0);
    for (const c of ["train", "eval", "predict", "pretrain", "embed", "info", "bench", "curve", "demo"]) {
      expect(r.out).toContain(c);
      expect(tunekit(c, "--help").out).toMatch(/Examples:\n\s+\$ /);
    }
  });

  test("train → eval → predict on a CSV with quoted fields and embedded newlines", () => {
    const t = json(["train", "--data", fx("reviews.csv"), "--validation", "0.3", "--out", out, ...quick]);
    expect(t.steps).toBe(3);
    expect(Object.keys(t.metrics)).toEqual(expect.arrayContaining(["accuracy", "f1", "loss"]));
    expect(t.analysis.confusion.labels).toEqual(["negative", "positive"]);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "log.jsonl", "report.html"]) expect(fs.existsSync(path.join(out, f))).toBe(true);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
    expect(cfg.architectures).toEqual(["BertForSequenceClassification"]);
    expect(cfg.id2label).toEqual({ 0: "negative", 1: "positive" });

    const e = json(["eval", "--model", out, "--data", fx("reviews.csv")]);
    expect(e.examples).toBeGreaterThan(5);
    expect(e.metrics.accuracy).toBeGreaterThanOrEqual(0);
    const p = json(["predict", "--model", out, "a wonderful film", "dull"]);
    expect(p.map((x: { label: string }) => x.label).every((l: string) => ["negative", "positive"].includes(l))).toBe(true);
    expect(p[0].scores.reduce((s: number, x: { score: number }) => s + x.score, 0)).toBeCloseTo(1, 5);
  });

  test("bad input: one clear line and a non-zero exit", () => {
    expectUserError(tunekit("train", "--data", "missing.csv"), /--data: no such file 'missing.csv'/);
    expectUserError(tunekit("train", "--data", fx("reviews.csv"), "--text", "body"), /column.*body.*text/i);
    expectUserError(tunekit("train", "--data", fx("reviews.csv"), "--epochs", "many"), /--epochs.*'many'/, 2);
    expectUserError(tunekit("train", "--data", fx("reviews.csv"), "--bogus"), /unknown option '--bogus'/, 2);
    expectUserError(tunekit("train", "--data", fx("bad_rows.csv")), /bad_rows\.csv:\d+/);
    const empty = path.join(tmp, "empty.csv");
    fs.writeFileSync(empty, "text,label\n");
    expectUserError(tunekit("train", "--data", empty), /empty|no rows|no examples/i);
    const unknown = path.join(tmp, "unknown-label.csv");
    fs.writeFileSync(unknown, "text,label\nfine,positive\nodd,sideways\n");
    expectUserError(tunekit("eval", "--model", out, "--data", unknown), /sideways/);
    expectUserError(tunekit("predict", "--model", path.join(tmp, "nope"), "x"), /--model: no such folder/);
  });

  test("--method auto prints the rule it applied; LoRA saves the PEFT adapter and the merged model", () => {
    const r = json(["train", "--data", fx("reviews.csv"), "--method", "auto", "--out", path.join(tmp, "auto"), "--no-report", ...quick]);
    expect(r.method.method).toBe("frozen");
    expect(r.method.rule).toMatch(/labelled examples < 300/);
    expect(r.trainable).toBeLessThan(r.parameters / 10);
    const lora = path.join(tmp, "lora");
    const l = json(["train", "--data", fx("reviews.jsonl"), "--method", "lora", "--lora-r", "4", "--out", lora, "--no-report", "--bf16", "--loss-scaling", "1024", ...quick]);
    expect(l.precision).toBe(native.bf16Available() ? "bf16" : "fp32"); // --bf16 reaches the Trainer; fp32 where the CPU lacks bf16
    expect(JSON.parse(fs.readFileSync(path.join(lora, "adapter", "adapter_config.json"), "utf8")).r).toBe(4);
    expect(fs.existsSync(path.join(lora, "model.safetensors"))).toBe(true);
    expect(json(["predict", "--model", lora, "fine"])).toHaveLength(1);
  });

  test("token classification from CoNLL and QA from SQuAD JSON", () => {
    const ner = json(["train", "--task", "token-classification", "--data", fx("ner.conll"), "--validation", "0.3", "--out", path.join(tmp, "ner"), "--no-report", ...quick]);
    expect(ner.metrics).toHaveProperty("f1");
    const ents = json(["predict", "--model", path.join(tmp, "ner"), "John lives in Berlin"]);
    expect(Array.isArray(ents[0].entities)).toBe(true);
    const qa = json(["train", "--task", "qa", "--data", fx("squad_small.json"), "--validation", "0.5", "--out", path.join(tmp, "qa"), "--no-report", ...quick]);
    expect(qa.metrics).toHaveProperty("exact_match");
  });

  test("pretrain: continued MLM and from scratch with a new vocabulary", () => {
    const cont = json(["pretrain", "--data", fx("corpus"), "--out", path.join(tmp, "dapt"), "--max-steps", "2", "--batch-size", "2", "--block-size", "16", "--validation", "0.2", "--no-progress"]);
    expect(cont.steps).toBe(2);
    expect(Number.isFinite(cont.perplexity)).toBe(true);
    const texts = path.join(tmp, "corpus.txt");
    fs.writeFileSync(texts, Array.from({ length: 200 }, (_, i) => `the cat number ${i} sat on the mat and looked at the dog`).join("\n\n"));
    const scratch = json(["pretrain", "--from-scratch", "--data", texts, "--vocab-size", "128", "--layers", "1", "--hidden", "16", "--heads", "2",
      "--max-positions", "32", "--out", path.join(tmp, "scratch"), "--max-steps", "2", "--batch-size", "4", "--no-progress", "--dtype", "F16"]);
    expect(scratch.steps).toBe(2);
    const vocab = fs.readFileSync(path.join(tmp, "scratch", "vocab.txt"), "utf8").trim().split("\n");
    expect(vocab).toHaveLength(128);
    expect(vocab.slice(0, 5)).toEqual(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
    expect(JSON.parse(fs.readFileSync(path.join(tmp, "scratch", "config.json"), "utf8")).torch_dtype).toBe("float16");
  });

  test("embed: JSON vectors, and full hidden states as .npy", () => {
    const v = json(["embed", "first text", "second"]);
    const H = json(["info"]).config.hidden;
    expect(v).toHaveLength(2);
    expect(v[0].embedding).toHaveLength(H);
    const npy = path.join(tmp, "h.npy");
    const r = json(["embed", "one two three", "four", "--pooling", "none", "--output", npy]);
    expect(r.shape[0]).toBe(2);
    const buf = fs.readFileSync(npy);
    expect(buf.subarray(0, 6).toString("latin1")).toBe("\x93NUMPY");
    const headerLen = buf.readUInt16LE(8);
    expect(buf.subarray(10, 10 + headerLen).toString("latin1")).toContain(`'shape': (${r.shape.join(", ")})`);
    expect(buf.length - 10 - headerLen).toBe(4 * r.shape.reduce((a: number, b: number) => a * b, 1));
  });

  test("info counts trainable parameters under a method; curve trains both inits at each size", () => {
    const full = json(["info"]), lora = json(["info", "--method", "lora"]);
    expect(full.trainable).toBe(full.parameters);
    expect(lora.trainable).toBeLessThan(full.parameters / 5);
    const c = json(["curve", "--data", fx("reviews.csv"), "--sizes", "4,8", "--validation", "0.3", "--out", path.join(tmp, "curve"), ...quick]);
    expect(c.points.map((p: { size: number; run: string }) => `${p.size}/${p.run}`)).toEqual(["4/pre-trained", "4/random init", "8/pre-trained", "8/random init"]);
    expect(fs.existsSync(path.join(tmp, "curve", "curve.html"))).toBe(true);
  });
});
