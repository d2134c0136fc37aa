// The CLI as a new user meets it: --json is one JSON document on stdout for every command (progress on
// stderr), every flag is checked before any work, --errors 0 is no trap, a failure after training never
// loses the model, and the help of --metric / --limit says what the code does.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../lib/errors";
import { afterSave } from "../lib/cli/run";
import { TASK_METRICS } from "../lib/cli/checks";
import { fx, json, scratch, tunekit, expectUserError, writePairs } from "./cli_helpers";

const tmp = scratch("cli-json");
const small = ["--batch-size", "4", "--max-length", "24"];

describe("--json: stdout holds the JSON document and nothing else", () => {
  const model = path.join(tmp, "model");
  const cases: [string, () => string[], RegExp | null][] = [
    // No --no-progress: the step and evaluation lines must go to stderr.
    ["train", () => ["train", "--data", fx("reviews.csv"), "--validation", "0.3", "--epochs", "1", "--out", model, ...small], /step \d+\/\d+ epoch 1[\s\S]*eval @ step/],
    ["eval", () => ["eval", "--model", model, "--data", fx("reviews.csv")], null],
    ["predict", () => ["predict", "--model", model, "a wonderful film"], null],
    ["embed", () => ["embed", "one text", "another"], null],
    ["curve", () => ["curve", "--data", fx("reviews.csv"), "--validation", "0.3", "--sizes", "4", "--max-steps", "2", "--out", path.join(tmp, "curve"), "--no-report", ...small], null],
    ["pretrain", () => ["pretrain", "--data", fx("corpus"), "--out", path.join(tmp, "dapt"), "--max-steps", "2", "--batch-size", "2", "--block-size", "16", "--validation", "0.2"], /step 2\/2[\s\S]*eval @ step/],
    ["info", () => ["info"], null],
    ["bench", () => ["bench", "--steps", "1", "--batch-size", "2", "--seq-len", "8"], null],
    ["demo", () => ["demo", "--train", "10", "--validation", "10", "--epochs", "1", "--max-length", "16", "--out", path.join(tmp, "demo")], /eval @ step/],
  ];
  test.each(cases)("%s", (_, args, progress) => {
    const r = tunekit(tmp, ...args(), "--json");
    expect({ code: r.code, err: r.code ? r.err : "" }).toEqual({ code: 0, err: "" });
    expect(() => JSON.parse(r.out)).not.toThrow();
    if (progress) expect(r.err).toMatch(progress);
  });
});

describe("every flag is checked before any work", () => {
  // The data file has a malformed row: a flag error that shows first was found before the data was read.
  const data = fx("bad_rows.csv");
  const file = path.join(tmp, "a-file");
  beforeAll(() => fs.writeFileSync(file, "x"));
  const cases: [string, string[], RegExp, number?][] = [
    ["a metric the task does not report", ["--metric", "spearman"], /--metric: 'spearman' is not a metric of --task classification; expected one of loss, accuracy, f1/],
    ["--eval-strategy steps without --eval-steps", ["--eval-strategy", "steps"], /--eval-strategy steps needs --eval-steps/],
    ["--eval-steps without --eval-strategy steps", ["--eval-steps", "5"], /--eval-steps applies with --eval-strategy steps/],
    ["--early-stopping without evaluations", ["--early-stopping", "2", "--eval-strategy", "no"], /--early-stopping needs evaluations/],
    ["fractional epochs (the Trainer counts whole epochs)", ["--epochs", "1.5"], /--epochs.*expected an integer >= 1, got '1.5'/, 2],
    ["a learning rate of 0", ["--lr", "0"], /--lr.*expected a number > 0, got '0'/, 2],
    ["a loss scale of 0", ["--loss-scaling", "0"], /--loss-scaling.*expected a number > 0/, 2],
    ["LoRA dropout 1", ["--lora-dropout", "1"], /--lora-dropout.*expected a number in \[0, 1\)/, 2],
    ["adam beta2 1", ["--adam-beta2", "1"], /--adam-beta2.*expected a number in \[0, 1\), got '1'/, 2],
    ["adam epsilon 0", ["--adam-epsilon", "0"], /--adam-epsilon.*expected a number > 0/, 2],
    ["--resume of a folder that is not there", ["--resume", "nowhere"], /--resume: no such checkpoint folder 'nowhere'/],
    ["--max-length beyond the position table", ["--max-length", "1000"], /--max-length 1000: .* takes at most 128 tokens/],
    ["--doc-stride outside qa", ["--doc-stride", "16"], /--doc-stride applies to --task qa/],
    ["--pooling outside similarity", ["--pooling", "cls"], /--pooling applies to --task similarity/],
    ["a validation file that is not there", ["--validation", "dev.csv"], /--validation: no such file 'dev.csv'/],
    ["a validation fraction above 1", ["--validation", "1.5"], /--validation 1.5: expected a fraction in \(0, 1\)/],
    ["more frozen layers than the model has", ["--method", "freeze-bottom", "--freeze-layers", "9"], /--freeze-layers 9: .* has 4 layers/],
    ["--out naming a file", ["--out", "a-file"], /--out: 'a-file' is a file/],
    ["a report under a file", ["--report", "a-file/report.html"], /--report: 'a-file\/report.html' cannot be created/],
    ["a column flag for qa", ["--task", "qa", "--text", "question"], /--text names a column of a table file; --task qa reads SQuAD JSON/],
  ];
  test.each(cases)("%s", (_, flags, msg, code = 1) => {
    const out = path.join(tmp, "never");
    const args = ["train", "--data", data, ...flags];
    if (!flags.includes("--out")) args.push("--out", out);
    expectUserError(tunekit(tmp, ...args), msg, code);
    expect(fs.existsSync(out)).toBe(false);
  });

  test("pretrain: flags before the corpus is read (a --metric it cannot use is an error, not ignored)", () => {
    const out = path.join(tmp, "never-pretrained");
    expectUserError(tunekit(tmp, "pretrain", "--data", fx("corpus"), "--metric", "accuracy", "--out", out), /--metric: pretrain evaluates the held-out loss only/);
    expectUserError(tunekit(tmp, "pretrain", "--data", fx("corpus"), "--block-size", "500", "--out", out), /--block-size 500: the model takes at most 128 tokens/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test("a metric that needs two labels, on three, is refused after reading the data and before training", () => {
    const out = path.join(tmp, "never-3");
    expectUserError(tunekit(tmp, "train", "--data", fx("pairs.csv"), "--metric", "f1", "--out", out), /--metric f1: the data has 3 labels, so there is no positive class; use macro_f1/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe("nothing after training loses the model", () => {
  test("--errors 0 lists no errors, and the model is saved", () => {
    const out = path.join(tmp, "errors0");
    const r = json(tmp, ["train", "--data", fx("reviews.csv"), "--validation", "0.3", "--max-steps", "2", "--errors", "0", "--out", out, "--no-report", ...small]);
    expect(r.analysis.errors).toEqual([]);
    expect(r.analysis.confusion.labels).toEqual(["negative", "positive"]);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) expect(fs.existsSync(path.join(out, f))).toBe(true);
    expect(json(tmp, ["eval", "--model", out, "--data", fx("reviews.csv"), "--errors", "0"]).analysis.errors).toEqual([]);
  });

  test("an error after the save says where the model is", async () => {
    await expect(afterSave("out-dir", () => { throw new TunekitError("the report failed"); })).rejects.toThrow("the report failed (the trained model is saved in out-dir)");
    await expect(afterSave(undefined, () => { throw new TunekitError("no model"); })).rejects.toThrow(/^no model$/);
  });
});

describe("help says what the code does", () => {
  const help = tunekit(tmp, "train", "--help").out.replace(/\s+/g, " ");
  const pairs = path.join(tmp, "sts.csv");
  beforeAll(() => writePairs(pairs));
  // [task, data, extra flags, the default metric, the names that are not reported here]
  const cases: [string, string, string[], string, string[]][] = [
    ["classification", "reviews.csv", ["--validation", "0.3"], "f1", []],
    ["classification", "pairs.csv", ["--validation", "0.5"], "macro_f1", ["f1", "precision", "recall"]],
    ["regression", "scores.csv", ["--validation", "0.4"], "pearson", []],
    ["multi-label", "topics.jsonl", ["--validation", "0.5"], "micro_f1", []],
    ["token-classification", "ner.conll", ["--validation", "0.5"], "f1", []],
    ["qa", "squad_small.json", ["--validation", "0.5"], "f1", []],
    ["similarity", "", ["--validation", "0.3"], "spearman", []],
  ];
  test.each(cases)("--metric's default for %s (%s) is the one the help names, among the metrics reported", (task, data, flags, metric, absent) => {
    const r = json(tmp, ["train", "--task", task, "--data", data ? fx(data) : pairs, ...flags, "--max-steps", "1", "--eval-strategy", "no",
      "--out", path.join(tmp, `help-${task}-${data}`), "--no-report", ...small]);
    expect(r.metric).toBe(metric);
    const said = task === "classification" ? (metric === "f1" ? "classification f1 with 2 labels" : "else macro_f1") : `${task} ${metric}`;
    expect(help).toContain(said);
    expect(Object.keys(r.metrics)).toEqual(expect.arrayContaining(TASK_METRICS[task as keyof typeof TASK_METRICS].filter((m) => !absent.includes(m))));
  });

  test("--limit: a seeded sample for classification, the first n for token-classification and qa", () => {
    expect(help).toMatch(/--limit <n> train on n training examples: a seeded sample \(stratified by class for classification\) for classification, regression, multi-label and similarity; the first n for token-classification and qa/);
    const a = json(tmp, ["train", "--data", fx("reviews.csv"), "--validation", "0.3", "--limit", "4", "--max-steps", "1", "--out", path.join(tmp, "limit-a"), "--no-report", ...small]);
    expect(a.features.train).toBe(4);
  });
});
