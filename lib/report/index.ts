// writeReport: a training report (report.html with every chart inlined as SVG, plus one .svg file per
// chart beside it) from the Trainer's JSON-lines logs, a confusion matrix, a learning curve and tables.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";
import { writeFileAtomicSync } from "../io/atomic";
import { readTrainingLog } from "./log";
import { checkInput, runsOf } from "./input";
import type { ReportInput } from "./input";
import { lossChart, lrChart, evalChart, evalMetricNames, confusionChart, curveCharts } from "./charts";
import type { Chart, RunLog } from "./charts";
import { renderSvg, prefixIds } from "./render";
import { renderPage } from "./html";
import type { Section } from "./html";

export { readTrainingLog } from "./log";
export type { TrainingLog, StepRecord, EvalRecord } from "./log";
export type { ReportInput, ConfusionInput, CurvePoint, ExampleRow } from "./input";

export interface ReportFiles {
  /** The HTML file written (outFile). */
  html: string;
  /** The SVG files written beside it, one per chart, in page order. */
  svgs: string[];
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");

function confusionCharts(input: ReportInput): Chart[] {
  const list = input.confusion ?? [];
  const used = new Set<string>();
  return list.map((c, i) => {
    let name = list.length === 1 ? "confusion" : `confusion-${(c.run && slug(c.run)) || i + 1}`;
    if (used.has(name)) name = `${name}-${i + 1}`;
    used.add(name);
    return confusionChart(c, name);
  });
}

/**
 * Writes `outFile` (self-contained HTML: charts inlined as SVG, no script, nothing loaded from the network)
 * and `<stem>-<chart>.svg` beside it for every chart: training loss (raw and smoothed, validation loss),
 * learning rate, evaluation metrics, confusion matrices, learning curves. Every file is written atomically.
 * Bad input (a missing or malformed log, a matrix of the wrong shape...) throws a TunekitError naming it.
 */
export async function writeReport(outFile: string, input: ReportInput): Promise<ReportFiles> {
  if (typeof outFile !== "string" || !outFile) throw new TunekitError("report: outFile must be a file path");
  checkInput(input);
  const runs: RunLog[] = runsOf(input).map((r) => ({ name: r.name, log: readTrainingLog(r.logFile) }));

  const training = [lossChart(runs), lrChart(runs), evalChart(runs, evalMetricNames(runs, input.evalMetrics))].filter((c): c is Chart => c !== null);
  const groups: { heading: string; charts: Chart[] }[] = [
    { heading: "Training", charts: training },
    { heading: input.confusion && input.confusion.length > 1 ? "Confusion matrices" : "Confusion matrix", charts: confusionCharts(input) },
    { heading: "Learning curve", charts: input.curve?.length ? curveCharts(input.curve) : [] },
  ];
  const total = groups.reduce((n, g) => n + g.charts.length, 0);
  if (!total && !input.summary?.length && !input.examples?.length) throw new TunekitError("report: nothing to report (no logFile/runs, confusion, curve, summary or examples)");

  const dir = path.dirname(path.resolve(outFile));
  const stem = path.basename(outFile).replace(/\.html?$/i, "");
  const sections: Section[] = [];
  const svgs: string[] = [];
  const files: [string, string][] = [];
  for (const g of groups) {
    const figures = [];
    for (const chart of g.charts) {
      const { svg, warnings } = await renderSvg(chart.spec);
      for (const w of warnings) console.warn(`tunekit report (${chart.name}): ${w}`);
      const file = `${stem}-${chart.name}.svg`;
      files.push([path.join(dir, file), svg]);
      svgs.push(path.join(path.dirname(outFile), file));
      figures.push({ svg: prefixIds(svg, chart.name), file, title: chart.title });
    }
    sections.push({ heading: g.heading, figures });
  }

  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;
  const meta = runs.map(({ name, log }) => `${name}: ${plural(log.steps.length, "step")}${log.steps.length ? ` (${plural(lastEpoch(log.steps), "epoch")})` : ""}, ${plural(log.evals.length, "evaluation")}`);
  const html = renderPage({
    title: input.title,
    meta,
    summary: input.summary,
    sections,
    examples: input.examples,
    logs: runs.map(({ name, log }) => ({ run: name, href: path.relative(dir, path.resolve(log.file)).split(path.sep).join("/") })),
  });
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, svg] of files) writeFileAtomicSync(file, Buffer.from(svg, "utf8"));
  writeFileAtomicSync(outFile, Buffer.from(html, "utf8"));
  return { html: outFile, svgs };
}

const lastEpoch = (steps: { epoch: number }[]) => Number(steps[steps.length - 1].epoch.toFixed(2));
