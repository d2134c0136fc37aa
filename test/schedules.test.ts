// LR schedules against transformers' lambdas driven by torch's LambdaLR (test/fixtures/golden_metrics.py):
// the lr each optimizer step used, at every step; hand-worked values; bad arguments.
import * as fs from "fs";
import * as path from "path";
import {
  constantSchedule, constantWithWarmupSchedule, linearSchedule, cosineSchedule, slantedTriangularSchedule,
  getScheduler, warmupStepsFromRatio, ScheduleName, ScheduleOptions, LrSchedule,
} from "../lib/train/schedules";
import { TunekitError } from "../lib/errors";

interface Run { name: ScheduleName; options: Record<string, number>; baseLr: number; lrs: number[] }
const G = (JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "metrics.json"), "utf8")) as {
  schedules: { runs: Run[]; warmupRatio: [number, number, number][] };
}).schedules;

const camel = (o: Record<string, number>): ScheduleOptions =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/_(.)/g, (_, c: string) => c.toUpperCase()), v]));

const errorMessage = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TunekitError);
    return (e as Error).message;
  }
  throw new Error("did not throw");
};

const values = (f: LrSchedule, n: number) => Array.from({ length: n }, (_, s) => f(s));

test.each(G.runs.map((r) => [`${r.name} ${JSON.stringify(r.options)}`, r] as const))("golden: %s, every step", (_, run) => {
  const f = getScheduler(run.name, camel(run.options));
  expect(run.lrs.length).toBeGreaterThan(1);
  run.lrs.forEach((lr, s) => {
    const got = run.baseLr * f(s);
    if (!(Math.abs(got - lr) <= 1e-15 * run.baseLr)) throw new Error(`step ${s}: got ${got}, want ${lr}`);
  });
});

test("the goldens cover warmup starting at 0, decay to 0, cosine rising past the end, slanted back to 1/ratio", () => {
  const lrs = (name: string, i = 0) => G.runs.filter((r) => r.name === name)[i].lrs;
  expect(lrs("linear")[0]).toBe(0);
  expect(lrs("linear")[100]).toBe(0);
  expect(lrs("cosine")[100]).toBe(0);
  expect(lrs("cosine")[130]).toBeGreaterThan(0.1);
  expect(lrs("slanted_triangular")[0]).toBe(1 / 32);
  expect(lrs("slanted_triangular")[10]).toBe(1);
});

test("hand-worked values", () => {
  expect(values(linearSchedule({ numWarmupSteps: 2, numTrainingSteps: 4 }), 6)).toEqual([0, 0.5, 1, 0.5, 0, 0]);
  const cos = values(cosineSchedule({ numTrainingSteps: 4 }), 5);
  [1, (1 + Math.SQRT1_2) / 2, 0.5, (1 - Math.SQRT1_2) / 2, 0].forEach((v, i) => expect(cos[i]).toBeCloseTo(v, 15));
  expect(values(constantWithWarmupSchedule({ numWarmupSteps: 4 }), 6)).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
  expect(values(constantSchedule(), 3)).toEqual([1, 1, 1]);
  // T = 20, cut_frac 0.25 → cut 5; ratio 5: p rises 0..1 over 5 steps, falls by 1/15 per step
  const st = slantedTriangularSchedule({ numTrainingSteps: 20, cutFrac: 0.25, ratio: 5 });
  expect(st(0)).toBe(0.2);
  expect(st(5)).toBe(1);
  expect(st(20)).toBeCloseTo(0.2, 15);
  expect(st(2)).toBeCloseTo((1 + 0.4 * 4) / 5, 15);
  expect(st(8)).toBeCloseTo((1 + (1 - 3 / 15) * 4) / 5, 15);
});

test("warmupStepsFromRatio = ceil(total × ratio) in float64, as HF (0.07 × 100 → 8)", () => {
  for (const [ratio, total, want] of G.warmupRatio) expect(warmupStepsFromRatio(ratio, total)).toBe(want);
  expect(G.warmupRatio).toContainEqual([0.07, 100, 8]);
});

test("bad arguments", () => {
  const lin = linearSchedule({ numWarmupSteps: 1, numTrainingSteps: 10 });
  expect(errorMessage(() => lin(-1))).toBe("linearSchedule: step must be an integer >= 0, got -1");
  expect(errorMessage(() => lin(1.5))).toBe("linearSchedule: step must be an integer >= 0, got 1.5");
  expect(errorMessage(() => lin(NaN))).toBe("linearSchedule: step must be an integer >= 0, got NaN");
  expect(errorMessage(() => linearSchedule({ numWarmupSteps: 11, numTrainingSteps: 10 })))
    .toBe("linearSchedule: numWarmupSteps (11) must not exceed numTrainingSteps (10)");
  expect(errorMessage(() => cosineSchedule({ numWarmupSteps: -1, numTrainingSteps: 10 })))
    .toBe("cosineSchedule: numWarmupSteps must be an integer >= 0, got -1");
  expect(errorMessage(() => linearSchedule({ numTrainingSteps: 0 }))).toBe("linearSchedule: numTrainingSteps must be an integer >= 1, got 0");
  expect(errorMessage(() => linearSchedule({}))).toBe("linearSchedule: numTrainingSteps must be an integer >= 1, got undefined");
  expect(errorMessage(() => cosineSchedule({ numTrainingSteps: 10, numCycles: 0 }))).toBe("cosineSchedule: numCycles must be a finite number > 0, got 0");
  expect(errorMessage(() => constantWithWarmupSchedule({ numWarmupSteps: 2.5 })))
    .toBe("constantWithWarmupSchedule: numWarmupSteps must be an integer >= 0, got 2.5");
  expect(errorMessage(() => slantedTriangularSchedule({ numTrainingSteps: 9 })))
    .toBe("slantedTriangularSchedule: numTrainingSteps × cutFrac = 9 × 0.1 < 1 leaves no increasing phase; use more steps or a larger cutFrac");
  expect(errorMessage(() => slantedTriangularSchedule({ numTrainingSteps: 100, cutFrac: 1 }))).toBe("slantedTriangularSchedule: cutFrac must be in (0, 1), got 1");
  expect(errorMessage(() => slantedTriangularSchedule({ numTrainingSteps: 100, ratio: 0.5 }))).toBe("slantedTriangularSchedule: ratio must be a finite number >= 1, got 0.5");
  expect(errorMessage(() => slantedTriangularSchedule({ numTrainingSteps: 100 })(101))).toBe("slantedTriangularSchedule: step 101 is past numTrainingSteps 100");
  expect(errorMessage(() => getScheduler("exponential" as ScheduleName, {})))
    .toBe('getScheduler: unknown schedule "exponential"; expected one of constant, constant_with_warmup, linear, cosine, slanted_triangular');
  expect(errorMessage(() => getScheduler("constant", { numWarmupSteps: 10 }))).toBe('getScheduler: "constant" does not use numWarmupSteps (use "constant_with_warmup")');
  expect(errorMessage(() => getScheduler("linear", { numTrainingSteps: 10, numCycles: 1 }))).toBe('getScheduler: "linear" does not use numCycles');
  expect(errorMessage(() => getScheduler("slanted_triangular", { numTrainingSteps: 100, numWarmupSteps: 5 })))
    .toBe('getScheduler: "slanted_triangular" does not use numWarmupSteps (its increasing phase is set by cutFrac)');
  expect(getScheduler("constant", { numWarmupSteps: 0, numTrainingSteps: 10 })(3)).toBe(1);
  expect(errorMessage(() => warmupStepsFromRatio(1.5, 10))).toBe("warmupStepsFromRatio: warmupRatio must be in [0, 1], got 1.5");
  expect(errorMessage(() => warmupStepsFromRatio(0.1, -5))).toBe("warmupStepsFromRatio: numTrainingSteps must be an integer >= 1, got -5");
});
