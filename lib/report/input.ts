// What a report is made of, and the checks that turn bad input into one TunekitError naming the field.
import { TunekitError } from "../errors";

export interface ConfusionInput {
  labels: string[];
  /** matrix[true][predicted], labels.length × labels.length, counts ≥ 0. */
  matrix: number[][];
  run?: string;
}

export interface CurvePoint {
  /** Training-set size (x, log scale). */
  size: number;
  run: string;
  metric: number;
  metricName: string;
}

export interface ExampleRow {
  text: string;
  label: string;
  predicted: string;
  score: number;
}

export interface ReportInput {
  title: string;
  /** One Trainer JSON-lines log (a single run); use `runs` for several. */
  logFile?: string;
  /** Several runs on the same charts, one colour each (e.g. "pre-trained" vs "random init"). */
  runs?: { name: string; logFile: string }[];
  confusion?: ConfusionInput[];
  /** Learning curve: metric vs training-set size, one line per run. */
  curve?: CurvePoint[];
  /** A small table, one object per row (e.g. run, accuracy, f1, seconds). */
  summary?: Record<string, string | number>[];
  /** Sample predictions or most confident errors. */
  examples?: ExampleRow[];
  /** Eval metrics to chart (names without "eval_"); default: the headline ones the log has (accuracy, f1...). */
  evalMetrics?: string[];
}

export interface Run {
  name: string;
  logFile: string;
}

function fail(msg: string): never {
  throw new TunekitError(`report: ${msg}`);
}
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/** The runs to plot: `runs`, or `logFile` as a single run named "run". */
export function runsOf(input: ReportInput): Run[] {
  if (input.logFile !== undefined && input.runs !== undefined) fail("give either 'logFile' or 'runs', not both");
  if (input.logFile !== undefined) {
    if (!isStr(input.logFile)) fail(`'logFile' must be a file path, got ${JSON.stringify(input.logFile)}`);
    return [{ name: "run", logFile: input.logFile }];
  }
  if (input.runs === undefined) return [];
  if (!Array.isArray(input.runs)) fail("'runs' must be an array of { name, logFile }");
  const seen = new Set<string>();
  input.runs.forEach((r, i) => {
    if (!r || !isStr(r.name)) fail(`runs[${i}].name must be a non-empty string`);
    if (!isStr(r.logFile)) fail(`runs[${i}] ('${r.name}'): logFile must be a file path`);
    if (seen.has(r.name)) fail(`runs[${i}]: the run name '${r.name}' is used twice`);
    seen.add(r.name);
  });
  return input.runs;
}

/** Checks everything but the log files (read later, with their own line-numbered errors). */
export function checkInput(input: ReportInput): void {
  if (!input || typeof input !== "object") fail("the input must be an object");
  if (!isStr(input.title)) fail("'title' must be a non-empty string");
  if (input.evalMetrics !== undefined && (!Array.isArray(input.evalMetrics) || !input.evalMetrics.every(isStr))) fail("'evalMetrics' must be an array of metric names");
  input.confusion?.forEach((c, k) => {
    const where = `confusion[${k}]${c?.run ? ` ('${c.run}')` : ""}`;
    if (!c || !Array.isArray(c.labels) || c.labels.length < 1) fail(`${where}: 'labels' must be a non-empty array of strings`);
    const n = c.labels.length;
    c.labels.forEach((l, i) => { if (!isStr(l)) fail(`${where}: labels[${i}] must be a non-empty string, got ${JSON.stringify(l)}`); });
    if (new Set(c.labels).size !== n) fail(`${where}: labels must be distinct, got ${JSON.stringify(c.labels)}`);
    if (!Array.isArray(c.matrix) || c.matrix.length !== n) fail(`${where}: matrix has ${Array.isArray(c.matrix) ? c.matrix.length : "no"} rows, expected ${n} (one per label)`);
    c.matrix.forEach((row, t) => {
      if (!Array.isArray(row) || row.length !== n) fail(`${where}: matrix row ${t} ('${c.labels[t]}') has ${Array.isArray(row) ? row.length : "no"} columns, expected ${n}`);
      row.forEach((v, p) => { if (!isNum(v) || v < 0) fail(`${where}: matrix[${t}][${p}] must be a count >= 0, got ${JSON.stringify(v)}`); });
    });
    if (c.run !== undefined && !isStr(c.run)) fail(`${where}: 'run' must be a non-empty string`);
  });
  input.curve?.forEach((p, i) => {
    const where = `curve[${i}]`;
    if (!p || !isNum(p.size) || p.size <= 0) fail(`${where}: 'size' must be a number > 0 (the x axis is logarithmic), got ${JSON.stringify(p?.size)}`);
    if (!isStr(p.run)) fail(`${where}: 'run' must be a non-empty string`);
    if (!isNum(p.metric)) fail(`${where}: 'metric' must be a finite number, got ${JSON.stringify(p.metric)}`);
    if (!isStr(p.metricName)) fail(`${where}: 'metricName' must be a non-empty string`);
  });
  input.summary?.forEach((row, i) => {
    if (!row || typeof row !== "object" || Array.isArray(row)) fail(`summary[${i}] must be an object`);
    for (const [k, v] of Object.entries(row)) if (typeof v !== "string" && typeof v !== "number") fail(`summary[${i}].${k} must be a string or a number`);
  });
  input.examples?.forEach((e, i) => {
    if (!e || typeof e.text !== "string") fail(`examples[${i}].text must be a string`);
    if (typeof e.label !== "string" || typeof e.predicted !== "string") fail(`examples[${i}]: 'label' and 'predicted' must be strings`);
    if (!isNum(e.score)) fail(`examples[${i}].score must be a finite number, got ${JSON.stringify(e.score)}`);
  });
}
