// Vega-Lite specifications of the report's charts. Data is inlined (values), runs are the colour, and
// every mark layer has a name, so its SVG group is class "<name>_marks" (what the tests count).
import type { TopLevelSpec } from "vega-lite";
import type { TrainingLog } from "./log";
import type { ConfusionInput, CurvePoint } from "./input";
import { textWidth } from "./text";

export interface Chart {
  /** File-name part: loss, lr, eval, confusion, curve... */
  name: string;
  title: string;
  spec: TopLevelSpec;
}

export interface RunLog {
  name: string;
  log: TrainingLog;
}

const WIDTH = 380, HEIGHT = 220;
const CONFIG = {
  font: "DejaVu Sans, Helvetica, Arial, sans-serif",
  view: { stroke: "#ddd" },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal" as const, gridColor: "#eee" },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal" as const, labelLimit: 220 },
  title: { fontSize: 14, subtitleFontSize: 11, subtitleColor: "#666", anchor: "start" as const },
};
const SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/**
 * The colour of each run, identical on every chart (category10, in the order the runs were given). The
 * legend sits above the plot when its entries fit in one row of `room` pixels, on the right otherwise.
 */
function runColor(runs: string[], showLegend = runs.length > 1, room = WIDTH) {
  const row = runs.reduce((w, r) => w + textWidth(r, 11) + 35, 0);
  return {
    field: "run", type: "nominal" as const, title: "run", sort: runs,
    scale: { domain: runs, scheme: "category10" },
    legend: showLegend ? { orient: row <= room ? ("top" as const) : ("right" as const), symbolType: "stroke", symbolOpacity: 1, symbolStrokeWidth: 3 } : null,
  };
}

/**
 * Debiased exponential moving average (TensorBoard's smoothing) with weight 1 − 1/window, window =
 * n/10 clamped to [1, 100]: a 30-step run is barely smoothed, a 3,000-step run over ~100 steps.
 */
export function smooth(values: (number | null)[]): { weight: number; smoothed: (number | null)[] } {
  const n = values.filter((v) => v !== null).length;
  const weight = 1 - 1 / Math.min(100, Math.max(1, n / 10));
  let acc = 0, norm = 0;
  const smoothed = values.map((v) => {
    if (v === null) return null;
    acc = weight * acc + (1 - weight) * v;
    norm = weight * norm + (1 - weight);
    return acc / norm;
  });
  return { weight, smoothed };
}

/** A line and its points as two named layers ("<name>_marks", "<name>_points_marks" in the SVG). */
function linePoints(name: string, size: number) {
  return [
    { name, mark: { type: "line" as const, strokeWidth: 2 } },
    { name: `${name}_points`, mark: { type: "point" as const, filled: true, size, opacity: 1 } },
  ];
}

const TRAIN = "train (smoothed)", RAW = "train (raw)", VALID = "validation";

/** Training loss vs step: raw (faint), smoothed, and the validation loss when the log has one. */
export function lossChart(runs: RunLog[]): Chart | null {
  const rows: Record<string, unknown>[] = [];
  const weights: number[] = [];
  let skipped = 0;
  for (const { name, log } of runs) {
    const losses = log.steps.map((s) => s.loss);
    skipped += losses.filter((l) => l === null).length;
    const { weight, smoothed } = smooth(losses);
    weights.push(weight);
    log.steps.forEach((s, i) => {
      if (s.loss === null) return;
      rows.push({ run: name, step: s.step, loss: s.loss, series: RAW });
      rows.push({ run: name, step: s.step, loss: smoothed[i], series: TRAIN });
    });
    for (const e of log.evals) if (typeof e.metrics.loss === "number") rows.push({ run: name, step: e.step, loss: e.metrics.loss, series: VALID });
  }
  if (!rows.length) return null;
  const names = runs.map((r) => r.name);
  const hasValid = rows.some((r) => r.series === VALID);
  const series = hasValid ? [TRAIN, VALID] : [TRAIN];
  const dash = { field: "series", type: "nominal" as const, title: null, scale: { domain: series, range: hasValid ? [[1, 0], [5, 3]] : [[1, 0]] }, legend: { orient: "top" as const, symbolType: "stroke", symbolStrokeColor: "#444", symbolStrokeWidth: 2, symbolSize: 300 } };
  const x = { field: "step", type: "quantitative" as const, title: "optimizer step", scale: { domainMin: 0 }, axis: { tickMinStep: 1 } };
  const y = { field: "loss", type: "quantitative" as const, title: "loss", scale: { zero: false } };
  const w = [...new Set(weights.map((v) => v.toFixed(2)))].join(" / ");
  const subtitle = `faint: raw per-step loss; solid: exponential moving average (weight ${w})` + (skipped ? `; ${skipped} skipped step(s) not shown` : "");
  return {
    name: "loss",
    title: "Training loss",
    spec: {
      $schema: SCHEMA, config: CONFIG, width: WIDTH, height: HEIGHT,
      title: { text: "Training loss", subtitle },
      data: { values: rows },
      layer: [
        { name: "raw", transform: [{ filter: `datum.series === '${RAW}'` }], mark: { type: "line", strokeWidth: 1, opacity: 0.3 }, encoding: { x, y, color: runColor(names) } },
        { name: "smoothed", transform: [{ filter: `datum.series === '${TRAIN}'` }], mark: { type: "line", strokeWidth: 2 }, encoding: { x, y, color: runColor(names), strokeDash: dash } },
        // The validation points are their own layer: a point overlay on the dashed line would give the
        // line-style legend a transparent stroke.
        ...(hasValid ? [
          { name: "validation", transform: [{ filter: `datum.series === '${VALID}'` }], mark: { type: "line" as const, strokeWidth: 2 }, encoding: { x, y, color: runColor(names), strokeDash: dash } },
          { name: "validation_points", transform: [{ filter: `datum.series === '${VALID}'` }], mark: { type: "point" as const, filled: true, size: 40, opacity: 1 }, encoding: { x, y, color: runColor(names) } },
        ] : []),
      ],
    },
  };
}

/** Learning rate vs step (the schedule, warm-up included). */
export function lrChart(runs: RunLog[]): Chart | null {
  // Runs often share one schedule: earlier runs are drawn wider underneath, so every colour stays visible.
  const widthOf = (i: number) => 2 + Math.min(2.5, 3 / Math.max(1, runs.length - 1)) * (runs.length - 1 - i);
  const rows = runs.flatMap(({ name, log }, i) => log.steps.map((s) => ({ run: name, width: widthOf(i), step: s.step, lr: s.lr })));
  if (!rows.length) return null;
  const names = runs.map((r) => r.name);
  return {
    name: "lr",
    title: "Learning rate",
    spec: {
      $schema: SCHEMA, config: CONFIG, width: WIDTH, height: HEIGHT,
      title: { text: "Learning rate", subtitle: "as applied at each optimizer step (schedule and warm-up)" },
      data: { values: rows },
      // (A strokeWidth on the mark would override the encoded one.)
      mark: names.length > 1 ? { type: "line" } : { type: "line", strokeWidth: 2 },
      name: "lr",
      encoding: {
        x: { field: "step", type: "quantitative", title: "optimizer step", scale: { domainMin: 0 }, axis: { tickMinStep: 1 } },
        y: { field: "lr", type: "quantitative", title: "learning rate", axis: { labelExpr: "datum.value === 0 ? '0' : format(datum.value, '~e')" } },
        color: runColor(names),
        // Pixel widths straight from the data (no scale, so no second legend).
        ...(names.length > 1 ? { strokeWidth: { field: "width", type: "quantitative", scale: null } } : {}),
      },
    },
  };
}

/** The metrics to plot: every numeric eval metric but the loss (on the loss chart), in first-seen order. */
export function evalMetricNames(runs: RunLog[], wanted?: string[]): string[] {
  const seen: string[] = [];
  for (const { log } of runs) for (const e of log.evals) for (const [k, v] of Object.entries(e.metrics)) if (k !== "loss" && typeof v === "number" && !seen.includes(k)) seen.push(k);
  if (wanted) return wanted.filter((k) => seen.includes(k));
  // The headline metrics when present; everything otherwise (a regression log has only pearson/spearman...).
  const headline = seen.filter((k) => ["accuracy", "f1", "macro_f1", "entity_f1", "exact_match", "pearson", "spearman", "subset_accuracy", "micro_f1"].includes(k));
  return headline.length ? headline : seen;
}

/**
 * Eval metrics, one small chart per metric, against the epoch when every run evaluated once per whole
 * epoch, against the step otherwise (evaluation every N steps).
 */
export function evalChart(runs: RunLog[], metrics = evalMetricNames(runs)): Chart | null {
  if (!metrics.length) return null;
  const byEpoch = runs.every(({ log }) => {
    const ep = log.evals.map((e) => e.epoch);
    return ep.every((e) => Number.isInteger(e) && e >= 1) && new Set(ep).size === ep.length;
  });
  const xField = byEpoch ? "epoch" : "step";
  const rows = runs.flatMap(({ name, log }) => log.evals.flatMap((e) => metrics.filter((m) => typeof e.metrics[m] === "number").map((m) => ({ run: name, step: e.step, epoch: e.epoch, metric: m, value: e.metrics[m] }))));
  if (!rows.length) return null;
  const names = runs.map((r) => r.name);
  const columns = metrics.length === 4 ? 2 : Math.min(3, metrics.length);
  const one = (m: string, i: number) => ({
    width: 280, height: 180,
    transform: [{ filter: { field: "metric", equal: m } }],
    encoding: {
      x: { field: xField, type: "quantitative" as const, title: byEpoch ? "epoch" : "optimizer step", scale: { domainMin: 0 }, axis: { tickMinStep: 1 } },
      y: { field: "value", type: "quantitative" as const, title: m.replace(/_/g, " "), scale: { zero: false, padding: 10 } },
      color: runColor(names, names.length > 1, columns * 340),
    },
    layer: linePoints(`metric${i}`, 50),
  });
  return {
    name: "eval",
    title: "Evaluation metrics",
    spec: {
      $schema: SCHEMA, config: CONFIG,
      title: { text: "Evaluation metrics", subtitle: `on the validation set, after each ${byEpoch ? "epoch" : "evaluation"}` },
      data: { values: rows },
      concat: metrics.map(one),
      columns,
      resolve: { scale: { y: "independent" } },
    },
  };
}

/** Confusion-matrix heatmap: rows the true label, columns the predicted one, the count written in each cell. */
export function confusionChart(c: ConfusionInput, name: string): Chart {
  const n = c.labels.length;
  const rows = c.matrix.flatMap((row, t) => row.map((v, p) => ({ true: c.labels[t], predicted: c.labels[p], count: v, text: Number.isInteger(v) ? String(v) : v.toFixed(2) })));
  const max = Math.max(0, ...rows.map((r) => r.count));
  const total = rows.reduce((s, r) => s + r.count, 0);
  const correct = c.labels.reduce((s, _, i) => s + c.matrix[i][i], 0);
  const cell = n <= 4 ? 80 : n <= 10 ? 44 : 28;
  // Column labels turn when they would not fit their cell (about 7 px a character at 11 px).
  const turn = Math.max(...c.labels.map((l) => l.length)) * 7 > cell - 4;
  const title = c.run ? `Confusion matrix: ${c.run}` : "Confusion matrix";
  return {
    name,
    title,
    spec: {
      $schema: SCHEMA, config: CONFIG,
      title: { text: title, subtitle: `${total} examples, ${correct} on the diagonal${total ? ` (accuracy ${(correct / total).toFixed(3)})` : ""}` },
      width: cell * n, height: cell * n,
      data: { values: rows },
      encoding: {
        x: { field: "predicted", type: "nominal", sort: c.labels, title: "predicted label", axis: { labelAngle: turn ? -40 : 0, labelLimit: 160 } },
        y: { field: "true", type: "nominal", sort: c.labels, title: "true label", axis: { labelLimit: 160 } },
      },
      layer: [
        { name: "cells", mark: { type: "rect", stroke: "white", strokeWidth: 1 }, encoding: { color: { field: "count", type: "quantitative", title: "count", scale: { scheme: "blues", domainMin: 0 } } } },
        {
          name: "counts", mark: { type: "text", fontSize: n <= 10 ? 13 : 10 },
          encoding: { text: { field: "text" }, color: { condition: { test: `datum.count > ${max / 2}`, value: "white" }, value: "black" } },
        },
      ],
    },
  };
}

/** Learning curve: metric vs training-set size (log x), a line per run; one chart per metric name. */
export function curveCharts(points: CurvePoint[]): Chart[] {
  const metricNames = [...new Set(points.map((p) => p.metricName))];
  const runs = [...new Set(points.map((p) => p.run))];
  return metricNames.map((metricName, i) => {
    const rows = points.filter((p) => p.metricName === metricName).map((p) => ({ size: p.size, run: p.run, metric: p.metric })).sort((a, b) => a.size - b.size);
    // Ticks at the measured sizes (a log axis would label 100, 200, ... 900 and crowd), and a margin around them.
    const sizes = [...new Set(rows.map((r) => r.size))];
    const lo = sizes[0], hi = sizes[sizes.length - 1], pad = Math.max(1.15, Math.pow(hi / lo, 0.05));
    return {
      name: metricNames.length > 1 ? `curve-${i + 1}` : "curve",
      title: `Learning curve: ${metricName.replace(/_/g, " ")}`,
      spec: {
        $schema: SCHEMA, config: CONFIG, width: WIDTH, height: HEIGHT,
        title: { text: `Learning curve: ${metricName.replace(/_/g, " ")}`, subtitle: "validation metric against the number of training examples" },
        data: { values: rows },
        layer: linePoints("curve", 60),
        encoding: {
          x: { field: "size", type: "quantitative", title: "training examples (log scale)", scale: { type: "log", domain: [lo / pad, hi * pad], nice: false }, axis: { values: sizes, format: ".3~s", grid: true } },
          y: { field: "metric", type: "quantitative", title: metricName.replace(/_/g, " "), scale: { zero: false, padding: 10 } },
          color: runColor(runs, true),
        },
      },
    };
  });
}
