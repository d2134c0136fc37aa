// Parity with PyTorch: every checkpoint in ../shared/models (and the small RoBERTa fixture) gives the
// hidden states, pooled output and LM logits PyTorch gives, and the same gradients of a scalar loss
// for every parameter. References: test/fixtures/golden_models.py (plain torch, HF's math).
import * as fs from "fs";
import * as path from "path";
import { AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM } from "../lib/models/auto";
import { PreTrainedModel } from "../lib/models/pretrained";
import { ModelInputs } from "../lib/models/inputs";
import * as ops from "../lib/tensor/ops";
import { Tensor } from "../lib/tensor/tensor";
import { sharedDir, testShared, timings } from "./shared";
import { maxAbsDiff } from "./helpers";

interface Summary { shape: number[]; sum: number; abs_sum: number; sq_sum: number; max_abs: number; first: number[]; sample: number[]; rows?: { ids: number[]; first16: number[][] } }
interface Golden {
  name: string; cls: string; weights: { dir: string; file: string }; B: number; T: number; H: number; V: number;
  input_ids: number[][]; attention_mask: number[][]; token_type_ids?: number[][]; labels?: number[][];
  last_hidden_state: number[]; pooler_output?: number[]; logits?: { first64: number[]; row_sum: number[]; row_sq_sum: number[] };
  losses: Record<string, { value: number; grads: Record<string, Summary> }>;
  zero_grad_in_exact_arithmetic?: { names: string[] }; conv1d_in_out?: string[];
}

const FIXTURES = path.join(__dirname, "fixtures");
const goldens = fs.readdirSync(path.join(FIXTURES, "models")).filter((f) => f.endsWith(".json"));
const load = (f: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, "models", f), "utf8")) as Golden;
const dirOf = (g: Golden) => (g.weights.dir.startsWith("shared:") ? path.join(sharedDir(), "models", g.weights.dir.slice(7)) : path.join(FIXTURES, g.weights.dir.slice(9)));
const flat = (a: number[][]) => Int32Array.from(a.flat());

function inputs(g: Golden): ModelInputs & { labels?: Int32Array } {
  return {
    inputIds: flat(g.input_ids), attentionMask: g.attention_mask.flat(), tokenTypeIds: g.token_type_ids ? flat(g.token_type_ids) : undefined,
    batchSize: g.B, seqLen: g.T, labels: g.labels ? flat(g.labels) : undefined,
  };
}

const R = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(0.37 * i + 0.1)));

/** Our gradient of `name` laid out as PyTorch's (GPT-2 Conv1D weights are [in, out] there). */
function gradAsTorch(m: PreTrainedModel, name: string, fullName: string, g: Golden): Float32Array {
  const p = [...m.namedParameters()].find(([n]) => n === name)?.[1];
  if (!p) throw new Error(`no parameter ${name}`);
  const grad = p.grad?.toHost() ?? new Float32Array(p.size);
  if (!g.conv1d_in_out?.includes(fullName)) return grad;
  const [o, i] = p.shape, t = new Float32Array(grad.length);
  for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) t[c * o + r] = grad[r * i + c];
  return t;
}

function compareGrads(m: PreTrainedModel, g: Golden, lossName: string, toOurs: (hf: string) => string): number {
  const zero = new Set(g.zero_grad_in_exact_arithmetic?.names ?? []);
  let worst = 0;
  for (const [hf, s] of Object.entries(g.losses[lossName].grads)) {
    // The golden lists every parameter of its class; one the loss never reaches may be absent here
    // (the body-only model has no LM head).
    if (s.max_abs === 0 && ![...m.namedParameters()].some(([n]) => n === toOurs(hf))) continue;
    const ours = gradAsTorch(m, toOurs(hf), hf, g);
    let sum = 0, abs = 0, sq = 0, mx = 0;
    for (const v of ours) { sum += v; abs += Math.abs(v); sq += v * v; mx = Math.max(mx, Math.abs(v)); }
    if (s.max_abs === 0 || (zero.has(hf) && s.max_abs < 1e-4)) {
      // Exactly zero in exact arithmetic: only float noise is allowed.
      if (!(mx < 1e-4)) throw new Error(`${lossName} loss: gradient of ${hf} should be ~0 (as in PyTorch), got max |g| ${mx}`);
      continue;
    }
    const scale = s.max_abs;
    const rel = (a: number, b: number, ref: number) => Math.abs(a - b) / ref;
    const errs = [
      rel(abs, s.abs_sum, s.abs_sum), rel(Math.sqrt(sq), Math.sqrt(s.sq_sum), Math.sqrt(s.sq_sum)), rel(mx, s.max_abs, s.max_abs),
      rel(sum, s.sum, s.abs_sum),
      ...s.first.map((v, k) => rel(ours[k], v, scale)),
      ...s.sample.map((v, k) => rel(ours[(k * 7919) % ours.length], v, scale)),
    ];
    if (s.rows) {
      const C = s.shape[1];
      s.rows.ids.forEach((id, r) => s.rows!.first16[r].forEach((v, k) => errs.push(rel(ours[id * C + k], v, scale))));
    }
    const e = Math.max(...errs);
    if (!(e < 1e-3)) throw new Error(`${lossName} loss: gradient of ${hf} differs from PyTorch by ${e.toExponential(2)} (relative to its max |g| ${scale.toExponential(2)})`);
    worst = Math.max(worst, e);
  }
  return worst;
}

function runLoss(m: PreTrainedModel, x: ModelInputs & { labels?: Int32Array }, pick: (o: ReturnType<typeof forward>) => Tensor) {
  m.zeroGrad();
  const out = forward(m, x);
  const loss = pick(out);
  const value = loss.item();
  loss.backward();
  return value;
}
function forward(m: PreTrainedModel, x: ModelInputs & { labels?: Int32Array }) {
  return (m as unknown as { forward(x: ModelInputs): { lastHiddenState: Tensor; poolerOutput?: Tensor; logits?: Tensor; loss?: Tensor } }).forward(x);
}

describe("parity with PyTorch on real checkpoints", () => {
  const time = timings("model parity");
  const report: string[] = [];
  afterAll(() => console.log(`max differences against PyTorch (float32):\n${report.join("\n")}`));

  // The checkpoints of ../shared are too large to commit; roberta-tiny-random is a fixture.
  for (const file of goldens) {
    const inShared = load(file).weights.dir.startsWith("shared:");
    (inShared ? testShared : test)(inShared ? `${file} (weights in ../shared/models)` : file, () => parity(file));
  }

  async function parity(file: string) {
    const g = load(file);
    const dir = dirOf(g);
    const quiet = { warn: null };
    const isMLM = g.cls.includes("MaskedLM"), isCLM = g.cls === "GPT2LMHeadModel";
    const head = isMLM ? await time(`${g.name}: load (${g.weights.file})`, () => AutoModelForMaskedLM.fromPretrained(dir, quiet))
      : isCLM ? await AutoModelForCausalLM.fromPretrained(dir, quiet) : null;
    const base = await time(`${g.name}: load base model`, () => AutoModel.fromPretrained(dir, quiet));
    const x = inputs(g);
    const prefix = base.prefix;
    const noPrefix = (hf: string) => (hf.startsWith(`${prefix}.`) ? hf.slice(prefix.length + 1) : hf);
    const line: string[] = [g.name.padEnd(26)];

    // Outputs, eval mode.
    const ob = forward(base, x);
    const dh = maxAbsDiff(ob.lastHiddenState.toHost(), g.last_hidden_state);
    expect(dh).toBeLessThan(1e-4);
    line.push(`hidden ${dh.toExponential(1)}`);
    if (g.pooler_output) {
      const dp = maxAbsDiff(ob.poolerOutput!.toHost(), g.pooler_output);
      expect(dp).toBeLessThan(1e-4);
      line.push(`pooled ${dp.toExponential(1)}`);
    }
    if (head && g.logits) {
      const oh = forward(head, x);
      expect(maxAbsDiff(oh.lastHiddenState.toHost(), g.last_hidden_state)).toBeLessThan(1e-4);
      const V = g.V, rows = g.B * g.T, L = oh.logits!.toHost();
      const first = new Float32Array(rows * 64);
      const sums = new Float64Array(rows), sq = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        for (let k = 0; k < 64; k++) first[r * 64 + k] = L[r * V + k];
        for (let k = 0; k < V; k++) { sums[r] += L[r * V + k]; sq[r] += L[r * V + k] ** 2; }
      }
      const dl = maxAbsDiff(first, g.logits.first64);
      expect(dl).toBeLessThan(1e-4);
      for (let r = 0; r < rows; r++) {
        // Mean error per logit below 1e-5 of the row's RMS logit.
        expect(Math.abs(sums[r] - g.logits.row_sum[r])).toBeLessThan(1e-5 * Math.sqrt(V * g.logits.row_sq_sum[r]));
        expect(Math.abs(sq[r] - g.logits.row_sq_sum[r]) / g.logits.row_sq_sum[r]).toBeLessThan(1e-5);
      }
      line.push(`logits ${dl.toExponential(1)}`);
    }

    // Gradients of each scalar loss.
    base.train(false);
    const body = runLoss(base, x, (o) => ops.weightedSum(o.lastHiddenState, R(g.B * g.T * g.H)));
    expect(Math.abs(body - g.losses.body.value)).toBeLessThan(1e-4 * Math.max(1, Math.abs(g.losses.body.value)));
    line.push(`grad(body) ${compareGrads(base, g, "body", noPrefix).toExponential(1)}`);
    if (g.losses.pool) {
      runLoss(base, x, (o) => ops.weightedSum(o.poolerOutput!, R(g.B * g.H)));
      line.push(`grad(pool) ${compareGrads(base, g, "pool", noPrefix).toExponential(1)}`);
    }
    if (head && g.losses.lm) {
      const lm = runLoss(head, x, (o) => o.loss!);
      expect(Math.abs(lm - g.losses.lm.value)).toBeLessThan(1e-4);
      line.push(`lm loss ${Math.abs(lm - g.losses.lm.value).toExponential(1)}`);
      line.push(`grad(lm) ${compareGrads(head, g, "lm", (hf) => hf).toExponential(1)}`);
    }
    report.push(line.join("  "));
  }
});
