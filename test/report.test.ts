// The training report: files written from real Trainer logs, SVGs that parse with the expected marks, points,
// axis titles and heatmap counts, a self-contained page, and a TunekitError naming the place of bad input.
// test/fixtures/report/*.jsonl are real logs: bert-tiny-mlm fine-tuned (and the same architecture from random
// init) on 1,000 SST-2 examples, 1 epoch, batch 16 (63 steps), evaluated on the 872 dev examples every 8 steps.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DOMParser } from "@xmldom/xmldom";
import type { Document, Element } from "@xmldom/xmldom";
import { writeReport, readTrainingLog, TunekitError } from "../lib";
import type { ReportInput } from "../lib";
import * as vega from "vega";
import { smooth } from "../lib/report/charts";
import { textWidth } from "../lib/report/text";
import { prefixIds } from "../lib/report/render";

const FIX = path.join(__dirname, "fixtures", "report");
const PRE = path.join(FIX, "pre-trained.jsonl"), RANDOM = path.join(FIX, "random-init.jsonl");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-report-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function parseSvg(svg: string): Document {
  return new DOMParser({ onError: (level, msg) => { throw new Error(`SVG ${level}: ${msg}`); } }).parseFromString(svg, "image/svg+xml");
}
const all = (doc: Document | Element, tag: string) => Array.from(doc.getElementsByTagName(tag)) as Element[];
/** The <g> groups whose class list has `cls` (vega names a mark group "<name>_marks"). */
const groups = (doc: Document, cls: string) => all(doc, "g").filter((g) => (g.getAttribute("class") ?? "").split(" ").includes(cls));
/** The items of every group of a named mark layer. */
const items = (doc: Document, name: string, tag: string) => groups(doc, `${name}_marks`).map((g) => all(g, tag));
const vertices = (p: Element) => (p.getAttribute("d") ?? "").match(/[ML]/g)?.length ?? 0;
const axisTitles = (doc: Document) => groups(doc, "role-axis-title").map((g) => all(g, "text")[0].textContent);
const legendLabels = (doc: Document) => groups(doc, "role-legend-label").flatMap((g) => all(g, "text").map((t) => t.textContent));

const CONF3 = { labels: ["PER-person", "LOC-location", "ORG-organisation"], matrix: [[50, 3, 0], [7, 41, 2], [1, 20, 12]], run: "ner / full fine-tuning" };
const INPUT: ReportInput = {
  title: "SST-2 <pre-trained> & random",
  runs: [{ name: "pre-trained", logFile: PRE }, { name: "random init", logFile: RANDOM }],
  confusion: [{ labels: ["negative", "positive"], matrix: [[411, 17], [333, 111]], run: "pre-trained" }, CONF3],
  curve: [100, 300, 1000].flatMap((size, i) => [
    { size, run: "pre-trained", metric: [0.509, 0.511, 0.599][i], metricName: "accuracy" },
    { size, run: "random init", metric: 0.509, metricName: "accuracy" },
  ]),
  summary: [{ run: "pre-trained", accuracy: 0.598623, seconds: 7.8 }, { run: "random init", accuracy: 0.509174, seconds: 10.1 }],
  examples: [
    { text: "and the lesson , in the end , is nothing new .", label: "negative", predicted: "positive", score: 0.806 },
    { text: "unflinchingly bleak and desperate", label: "negative", predicted: "negative", score: 0.694 },
  ],
};

describe("writeReport from two real runs", () => {
  const out = path.join(tmp, "two", "report.html");
  let result: { html: string; svgs: string[] };
  let warn: jest.SpyInstance;
  const svg = (name: string) => parseSvg(fs.readFileSync(path.join(tmp, "two", `report-${name}.svg`), "utf8"));
  beforeAll(async () => {
    warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    result = await writeReport(out, INPUT);
    warn.mockRestore();
  });

  test("writes report.html and one SVG per chart, atomically (no temporary files left), with no vega warning", () => {
    const names = ["loss", "lr", "eval", "confusion-pre-trained", "confusion-ner-full-fine-tuning", "curve"];
    expect(result.html).toBe(out);
    expect(result.svgs).toEqual(names.map((n) => path.join(tmp, "two", `report-${n}.svg`)));
    expect(fs.readdirSync(path.dirname(out)).sort()).toEqual(["report.html", ...names.map((n) => `report-${n}.svg`)].sort());
    expect(warn).not.toHaveBeenCalled();
  });

  test("loss chart: raw and smoothed line per run over all 63 steps, validation loss at the 7 evaluations", () => {
    const doc = svg("loss");
    for (const layer of ["raw", "smoothed"]) {
      const lines = items(doc, layer, "path");
      expect(lines).toHaveLength(2);
      for (const l of lines) expect(l.map(vertices)).toEqual([63]);
    }
    expect(items(doc, "validation", "path").map((g) => g.map(vertices))).toEqual([[7], [7]]);
    expect(items(doc, "validation_points", "path").flat()).toHaveLength(14);
    expect(axisTitles(doc)).toEqual(expect.arrayContaining(["optimizer step", "loss"]));
    expect(legendLabels(doc)).toEqual(expect.arrayContaining(["pre-trained", "random init", "train (smoothed)", "validation"]));
    // Text measured with font widths: vega's own 0.8 em a character guess made this chart 652 px wide.
    expect(Number(doc.documentElement!.getAttribute("width"))).toBeLessThan(480);
    // The raw line is faint, the smoothed one is not.
    expect(items(doc, "raw", "path")[0][0].getAttribute("opacity")).toBe("0.3");
  });

  test("learning-rate chart: one 63-step line per run, the first wider (both runs share one schedule), its y axis titled", () => {
    const doc = svg("lr");
    expect(items(doc, "lr", "path").map((g) => g.map(vertices))).toEqual([[63], [63]]);
    expect(items(doc, "lr", "path").map((g) => g[0].getAttribute("stroke-width"))).toEqual(["4.5", "2"]);
    expect(legendLabels(doc)).toEqual(["pre-trained", "random init"]);
    expect(axisTitles(doc)).toEqual(expect.arrayContaining(["optimizer step", "learning rate"]));
  });

  test("eval chart: accuracy, f1 and macro f1, 7 points per run each, against the step", () => {
    const doc = svg("eval");
    for (let i = 0; i < 3; i++) {
      expect(items(doc, `metric${i}`, "path").map((g) => g.map(vertices))).toEqual([[7], [7]]);
      expect(items(doc, `metric${i}_points`, "path").flat()).toHaveLength(14);
    }
    expect(groups(doc, "metric3_marks")).toHaveLength(0);
    const titles = axisTitles(doc);
    expect(titles).toEqual(expect.arrayContaining(["accuracy", "f1", "macro f1"]));
    expect(titles.filter((t) => t === "optimizer step")).toHaveLength(3);
  });

  test("confusion heatmaps: N×N cells, each count written in its cell, row-major, white text on dark cells", () => {
    for (const [name, c] of [["confusion-pre-trained", INPUT.confusion![0]], ["confusion-ner-full-fine-tuning", CONF3]] as const) {
      const doc = svg(name);
      const n = c.labels.length;
      expect(items(doc, "cells", "path").flat()).toHaveLength(n * n);
      const texts = items(doc, "counts", "text").flat();
      expect(texts.map((t) => Number(t.textContent))).toEqual(c.matrix.flat());
      const max = Math.max(...c.matrix.flat());
      expect(texts.map((t) => t.getAttribute("fill"))).toEqual(c.matrix.flat().map((v) => (v > max / 2 ? "white" : "black")));
      // Cells carry their (true, predicted) pair in the aria label, in the order of the labels.
      const cells = items(doc, "cells", "path").flat();
      expect(cells[1].getAttribute("aria-label")).toContain(`predicted label: ${c.labels[1]}; true label: ${c.labels[0]}`);
      expect(axisTitles(doc)).toEqual(expect.arrayContaining(["predicted label", "true label"]));
    }
  });

  test("learning curve: a 3-point line per run on a log axis ticked at the measured sizes", () => {
    const doc = svg("curve");
    expect(items(doc, "curve", "path").map((g) => g.map(vertices))).toEqual([[3], [3]]);
    expect(items(doc, "curve_points", "path").flat()).toHaveLength(6);
    expect(axisTitles(doc)).toEqual(expect.arrayContaining(["training examples (log scale)", "accuracy"]));
    const ticks = groups(doc, "role-axis-label").flatMap((g) => all(g, "text").map((t) => t.textContent));
    expect(ticks).toEqual(expect.arrayContaining(["100", "300", "1k"]));
  });

  test("report.html: self-contained, every chart inline, ids unique across the page, tables escaped", () => {
    const html = fs.readFileSync(out, "utf8");
    expect(html.match(/<svg[\s>]/g)).toHaveLength(6);
    expect(html).not.toMatch(/<script|<link|<iframe|<img|\ssrc=|@import/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).toContain("<h1>SST-2 &lt;pre-trained&gt; &amp; random</h1>");
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(html).toContain('<td class="num">0.5986</td>');
    expect(html.match(/<tr class="wrong">/g)).toHaveLength(1);
    // The logs, linked relative to the page (so the folder can move as a whole).
    expect(html).toContain(`href="${path.relative(path.dirname(out), PRE).split(path.sep).join("/")}"`);
    // Well-formed inline SVG: each parses on its own.
    for (const m of html.matchAll(/<svg[\s\S]*?<\/svg>/g)) expect(() => parseSvg(m[0])).not.toThrow();
  });
});

describe("a single resumed run with a skipped step and per-epoch evaluation", () => {
  const log = path.join(tmp, "single.jsonl");
  beforeAll(() => {
    const lines: object[] = [];
    for (let step = 1; step <= 20; step++) lines.push({ step, epoch: step / 10, loss: step === 5 ? null : 1 / step, lr: 1e-3, grad_norm: 1 });
    lines.push({ step: 10, epoch: 1, eval_loss: 0.5, eval_pearson: 0.7, eval_spearman: 0.68, eval_confusion_matrix: [[1, 0], [0, 1]] });
    // A resume from step 15: steps 16..20 were logged, then logged again with other losses (the later ones win).
    for (let step = 16; step <= 20; step++) lines.push({ step, epoch: step / 10, loss: 2, lr: 1e-3, grad_norm: null });
    lines.push({ step: 20, epoch: 2, eval_loss: 0.4, eval_pearson: 0.8, eval_spearman: 0.79 });
    fs.writeFileSync(log, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  });

  test("readTrainingLog: later records win, null losses are kept as skipped steps, arrays are left out", () => {
    const l = readTrainingLog(log);
    expect(l.steps).toHaveLength(20);
    expect(l.steps[4].loss).toBeNull();
    expect(l.steps.slice(15).map((s) => s.loss)).toEqual([2, 2, 2, 2, 2]);
    expect(l.steps[19].gradNorm).toBeNull();
    expect(l.evals.map((e) => e.metrics)).toEqual([{ loss: 0.5, pearson: 0.7, spearman: 0.68 }, { loss: 0.4, pearson: 0.8, spearman: 0.79 }]);
  });

  test("charts: no run legend for one run, the skipped step left out and said, eval against the epoch", async () => {
    const r = await writeReport(path.join(tmp, "single", "out.htm"), { title: "one run", logFile: log, evalMetrics: ["spearman"] });
    expect(r.svgs.map((f) => path.basename(f))).toEqual(["out-loss.svg", "out-lr.svg", "out-eval.svg"]);
    const loss = parseSvg(fs.readFileSync(r.svgs[0], "utf8"));
    expect(items(loss, "raw", "path").map((g) => g.map(vertices))).toEqual([[19]]);
    expect(legendLabels(loss)).not.toContain("run");
    expect(groups(loss, "role-title-subtitle").map((g) => all(g, "text")[0].textContent).join(" ")).toContain("1 skipped step(s) not shown");
    const ev = parseSvg(fs.readFileSync(r.svgs[2], "utf8"));
    expect(axisTitles(ev)).toEqual(expect.arrayContaining(["epoch", "spearman"]));
    expect(items(ev, "metric0_points", "path").flat()).toHaveLength(2);
    expect(groups(ev, "metric1_marks")).toHaveLength(0);
    expect(fs.readFileSync(path.join(tmp, "single", "out.htm"), "utf8")).toContain("run: 20 steps (2 epochs), 2 evaluations");
  });
});

test("smooth: debiased EMA (the first value is kept), constant stays constant, nulls pass through", () => {
  expect(smooth([3, 3, null, 3]).smoothed).toEqual([3, 3, null, 3]);
  const s = smooth(Array.from({ length: 100 }, (_, i) => (i % 2 ? 1 : 0)));
  expect(s.weight).toBeCloseTo(0.9);
  expect(s.smoothed[0]).toBe(0);
  expect(Math.abs((s.smoothed[99] as number) - 0.5)).toBeLessThan(0.1);
  expect(smooth([1, 5]).smoothed).toEqual([1, 5]); // a 2-step run is not smoothed (window 1)
});

test("text widths: DejaVu Sans advances, bold wider, installed in vega only while a report renders", async () => {
  expect(textWidth("Hello", 10)).toBeCloseTo((752 + 615 + 278 + 278 + 612) / 100, 6);
  expect(textWidth("Hello", 10, true)).toBeGreaterThan(textWidth("Hello", 10));
  expect(textWidth("日本", 10)).toBe(20);
  const metrics = (vega as unknown as { textMetrics: { width: unknown; estimateWidth: unknown } }).textMetrics;
  const before = metrics.width;
  await writeReport(path.join(tmp, "widths", "r.html"), { title: "t", curve: [{ size: 1, run: "a", metric: 1, metricName: "m" }] });
  expect(metrics.width).toBe(before);
});

test("prefixIds rewrites ids and their references only", () => {
  const svg = '<svg><clipPath id="clip1"><rect/></clipPath><g clip-path="url(#clip1)"><use href="#clip1"/><text>url(#other)</text></g></svg>';
  expect(prefixIds(svg, "loss")).toBe('<svg><clipPath id="loss-clip1"><rect/></clipPath><g clip-path="url(#loss-clip1)"><use href="#loss-clip1"/><text>url(#other)</text></g></svg>');
});

describe("bad input is a TunekitError naming what and where", () => {
  const write = (name: string, text: string) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const fails = async (input: Partial<ReportInput>, message: string | RegExp) => {
    const p = writeReport(path.join(tmp, "bad", "r.html"), { title: "t", ...input });
    await expect(p).rejects.toThrow(TunekitError);
    await expect(p).rejects.toThrow(message);
  };
  const ok = JSON.stringify({ step: 1, epoch: 0.1, loss: 0.7, lr: 1e-4, grad_norm: 1 });

  test("log files: missing, malformed line, wrong field, unknown record, empty", async () => {
    const missing = path.join(tmp, "nope.jsonl");
    await fails({ logFile: missing }, `report: log file ${missing} does not exist`);
    const bad = write("bad.jsonl", `${ok}\n${ok}\n{"step": 3, "epoch": 0.3, "loss": 0.6,\n`);
    await fails({ runs: [{ name: "a", logFile: PRE }, { name: "b", logFile: bad }] }, `report: ${bad}:3: not valid JSON`);
    await fails({ logFile: write("str.jsonl", `${ok}\n{"step":2,"epoch":0.2,"loss":"0.5","lr":1e-4}\n`) }, /str\.jsonl:2: 'loss' must be a number/);
    await fails({ logFile: write("nolr.jsonl", `{"step":2,"epoch":0.2,"loss":0.5}\n`) }, /nolr\.jsonl:1: 'lr' must be a finite number, got undefined/);
    await fails({ logFile: write("step.jsonl", `{"step":-1,"epoch":0,"loss":0.5,"lr":1}\n`) }, /step\.jsonl:1: 'step' must be a non-negative integer, got -1/);
    await fails({ logFile: write("arr.jsonl", `[1,2]\n`) }, /arr\.jsonl:1: expected a JSON object per line/);
    await fails({ logFile: write("other.jsonl", `${ok}\n{"step":2,"epoch":0.2,"note":"hi"}\n`) }, /other\.jsonl:2: neither a step record/);
    const empty = write("empty.jsonl", "\n\n");
    await fails({ logFile: empty }, `report: log file ${empty} is empty (no step or eval records)`);
  });

  test("confusion matrix of the wrong shape, bad counts, repeated labels", async () => {
    await fails({ confusion: [{ labels: ["a", "b"], matrix: [[1, 2]] }] }, "report: confusion[0]: matrix has 1 rows, expected 2 (one per label)");
    await fails({ confusion: [{ labels: ["a", "b"], matrix: [[1, 2], [3]], run: "x" }] }, "report: confusion[0] ('x'): matrix row 1 ('b') has 1 columns, expected 2");
    await fails({ confusion: [{ labels: ["a", "b"], matrix: [[1, -2], [3, 4]] }] }, "report: confusion[0]: matrix[0][1] must be a count >= 0, got -2");
    await fails({ confusion: [{ labels: ["a", "a"], matrix: [[1, 2], [3, 4]] }] }, 'report: confusion[0]: labels must be distinct, got ["a","a"]');
  });

  test("runs, curve, title and an empty report", async () => {
    await fails({ logFile: PRE, runs: [] }, "report: give either 'logFile' or 'runs', not both");
    await fails({ runs: [{ name: "a", logFile: PRE }, { name: "a", logFile: RANDOM }] }, "report: runs[1]: the run name 'a' is used twice");
    await fails({ curve: [{ size: 0, run: "a", metric: 0.5, metricName: "accuracy" }] }, "report: curve[0]: 'size' must be a number > 0 (the x axis is logarithmic), got 0");
    await fails({ curve: [{ size: 10, run: "a", metric: NaN, metricName: "accuracy" }] }, "report: curve[0]: 'metric' must be a finite number, got null");
    await fails({ title: "" }, "report: 'title' must be a non-empty string");
    await fails({}, "report: nothing to report");
    expect(fs.existsSync(path.join(tmp, "bad"))).toBe(false); // nothing was written
  });
});
