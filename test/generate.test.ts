// generate() / streamGenerate() on the tiny GPT-2 fixture: greedy through the key/value cache equals a
// plain loop of full forwards (no cache, one prompt at a time), left-padded batches included; seeded
// sampling; HF's logits processors against a small reference on fixed logits; stop strings and EOS;
// streamed deltas; generation_config.json defaults; errors.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForCausalLM } from "../lib/models/auto";
import type { ModelForCausalLM } from "../lib/models/lm";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { noGrad } from "../lib/tensor/autograd";
import { tidy } from "../lib/tensor/tensor";
import { Rng } from "../lib/data/rng";
import { generate, streamGenerate } from "../lib/generation";
import { applyRepetitionPenalty, applyTemperature, applyTopK, applyTopP, processScores, sample } from "../lib/generation/processors";
import { TextDeltas } from "../lib/generation/text";
import { TunekitError } from "../lib/errors";
import { randn } from "./helpers";

const dir = path.join(__dirname, "fixtures", "models", "gpt2-tiny-random");
let model: ModelForCausalLM;
let tok: Tokenizer;

beforeAll(async () => {
  model = await AutoModelForCausalLM.fromPretrained(dir, { warn: null });
  tok = await AutoTokenizer.fromPretrained(dir);
});

// ---- a reference of HF's processors, written from logits_process.py (torch ops spelled out) ----
const ref = {
  repetition(s: number[], prev: number[], p: number): number[] {
    const out = [...s];
    for (const id of prev) out[id] = s[id] < 0 ? s[id] * p : s[id] / p; // gather then scatter: from the unpenalized scores
    return out;
  },
  topK(s: number[], k: number): number[] {
    const kth = [...s].sort((a, b) => b - a)[k - 1];
    return s.map((x) => (x < kth ? -Infinity : x));
  },
  // Nucleus as "keep the most likely tokens until their mass reaches p" (the same set as HF's ascending cumsum).
  topP(s: number[], p: number): number[] {
    const m = Math.max(...s), e = s.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
    const order = s.map((_, i) => i).sort((a, b) => s[b] - s[a]);
    const keep = new Set<number>();
    let mass = 0;
    for (const i of order) {
      keep.add(i);
      mass += e[i] / z;
      if (mass >= p) break;
    }
    return s.map((x, i) => (keep.has(i) ? x : -Infinity));
  },
};

function refLoop(prompt: number[], n: number, penalty = 1): number[] {
  const ids = [...prompt];
  const V = model.config.vocabSize;
  for (let i = 0; i < n; i++) {
    const logits = noGrad(() => tidy(() => Float32Array.from(model.forward({ inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }).logits.toHost())));
    const last = ref.repetition(Array.from(logits.subarray((ids.length - 1) * V)), ids, penalty);
    ids.push(last.indexOf(Math.max(...last)));
  }
  return ids.slice(prompt.length);
}

const prompts = ["Hello world, this is a test", "The", "A quick fox"];

describe("greedy", () => {
  test.each([1, 5])("a left-padded batch through the cache equals full forwards without a cache (repetition penalty %p)", async (penalty) => {
    const out = await generate(model, tok, prompts, { maxNewTokens: 12, repetitionPenalty: penalty });
    expect(out).toHaveLength(3);
    for (const [i, o] of out.entries()) {
      expect(o.promptTokenIds).toEqual((await tok.encode(prompts[i])).input_ids);
      expect(o.tokenIds).toEqual(refLoop(o.promptTokenIds, 12, penalty));
      expect(o.finishReason).toBe("length");
      expect(o.text).toBe(await tok.decode(o.tokenIds, { skipSpecialTokens: true }));
    }
    // The rows differ in length, so the batch really was padded.
    expect(new Set(out.map((o) => o.promptTokenIds.length)).size).toBe(3);
  });

  test("token-id prompts, one prompt alone gives the same as in a batch; the model's training flag is restored", async () => {
    const ids = (await tok.encode("A quick fox")).input_ids;
    model.train();
    const [alone] = await generate(model, tok, ids, { maxNewTokens: 6, repetitionPenalty: 5 });
    expect(model.training).toBe(true);
    model.eval();
    const batch = await generate(model, tok, prompts, { maxNewTokens: 6, repetitionPenalty: 5 });
    expect(alone.tokenIds).toEqual(batch[2].tokenIds);
  });

  test("an EOS token ends its row (kept in tokenIds) while the others go on; minNewTokens holds EOS back", async () => {
    const [free] = await generate(model, tok, prompts[0], { maxNewTokens: 8, repetitionPenalty: 5 });
    const eos = free.tokenIds[3];
    const first = free.tokenIds.indexOf(eos);
    const out = await generate(model, tok, prompts, { maxNewTokens: 8, repetitionPenalty: 5, eosTokenId: [eos] });
    expect(out[0].finishReason).toBe("eos");
    expect(out[0].tokenIds).toEqual(free.tokenIds.slice(0, first + 1));
    for (const o of out.slice(1)) if (!o.tokenIds.includes(eos)) expect(o.tokenIds).toHaveLength(8);
    const held = await generate(model, tok, prompts[0], { maxNewTokens: 8, repetitionPenalty: 5, eosTokenId: eos, minNewTokens: first + 1 });
    expect(held[0].tokenIds.slice(0, first + 1)).not.toContain(eos);
  });

  test("a stop string ends the row at the token that completes it; the text keeps it", async () => {
    const [free] = await generate(model, tok, prompts[0], { maxNewTokens: 12, repetitionPenalty: 5 });
    // A stop string made of the end of token 4's text and the start of token 5's: it spans two tokens.
    const upTo = async (n: number) => tok.decode(free.tokenIds.slice(0, n), { skipSpecialTokens: true });
    const t4 = await upTo(4), t5 = await upTo(5), t6 = await upTo(6);
    const stop = t6.slice(t4.length - 1, t5.length + 1);
    expect(t5.includes(stop)).toBe(false);
    const [out] = await generate(model, tok, prompts[0], { maxNewTokens: 12, repetitionPenalty: 5, stopStrings: ["zzzz-never", stop] });
    expect(out.finishReason).toBe("stop_string");
    expect(out.tokenIds).toEqual(free.tokenIds.slice(0, 6));
    expect(out.text).toBe(t6);
  });

  test("a stop string may be a special token (matched as written, left out of the text)", async () => {
    // A repetition "penalty" below 1 favours the prompt's tokens: the final <|endoftext|> (556, special) comes next.
    const ids = [...(await tok.encode("The end")).input_ids, 556];
    const o = { maxNewTokens: 3, eosTokenId: [0], repetitionPenalty: 0.05 };
    const [free] = await generate(model, tok, [ids], o);
    expect(free.tokenIds[0]).toBe(556);
    const [out] = await generate(model, tok, [ids], { ...o, stopStrings: "<|endoftext|>" });
    expect([out.finishReason, out.tokenIds, out.text]).toEqual(["stop_string", [556], ""]);
  });
});

describe("sampling", () => {
  const opts = { maxNewTokens: 10, doSample: true, temperature: 1.5, topK: 0 };
  test("the same seed gives the same tokens, another seed others; a row does not depend on the rest of the batch", async () => {
    const a = await generate(model, tok, prompts, { ...opts, seed: 7 });
    const b = await generate(model, tok, prompts, { ...opts, seed: 7 });
    const c = await generate(model, tok, prompts, { ...opts, seed: 8 });
    expect(b.map((o) => o.tokenIds)).toEqual(a.map((o) => o.tokenIds));
    expect(c.map((o) => o.tokenIds)).not.toEqual(a.map((o) => o.tokenIds));
    const [first] = await generate(model, tok, prompts[0], { ...opts, seed: 7 });
    expect(first.tokenIds).toEqual(a[0].tokenIds);
  });

  test("greedy ignores the sampling settings; sampling differs from greedy", async () => {
    const greedy = await generate(model, tok, prompts, { maxNewTokens: 10 });
    const same = await generate(model, tok, prompts, { maxNewTokens: 10, temperature: 3, topK: 2, seed: 1 });
    expect(same.map((o) => o.tokenIds)).toEqual(greedy.map((o) => o.tokenIds));
    const sampled = await generate(model, tok, prompts, { ...opts, seed: 1 });
    expect(sampled.map((o) => o.tokenIds)).not.toEqual(greedy.map((o) => o.tokenIds));
  });

  test("topK 1 is greedy", async () => {
    const greedy = await generate(model, tok, prompts, { maxNewTokens: 8 });
    const k1 = await generate(model, tok, prompts, { maxNewTokens: 8, doSample: true, topK: 1, seed: 3 });
    expect(k1.map((o) => o.tokenIds)).toEqual(greedy.map((o) => o.tokenIds));
  });
});

describe("logits processors (HF's order: repetition penalty, temperature, top-k, top-p)", () => {
  const V = 40;
  const logits = Array.from(randn(V, 11, 2));
  const prev = [3, 5, 5, 17, 39];

  test("each against the reference", () => {
    const run = (f: (s: Float32Array) => void) => { const s = Float32Array.from(logits); f(s); return Array.from(s); };
    const close = (a: number[], b: number[]) => a.forEach((x, i) => (Number.isFinite(b[i]) ? expect(x).toBeCloseTo(b[i], 5) : expect(x).toBe(b[i])));
    close(run((s) => applyRepetitionPenalty(s, prev, 1.7)), ref.repetition(logits, prev, 1.7));
    close(run((s) => applyTemperature(s, 0.6)), logits.map((x) => x / 0.6));
    for (const k of [1, 5, 39]) close(run((s) => applyTopK(s, k)), ref.topK(logits, k));
    for (const p of [0.1, 0.5, 0.9, 0.999]) close(run((s) => applyTopP(s, p)), ref.topP(logits, p));
    // By hand: probabilities .5 .3 .15 .05, top-p .75 keeps .5 and .3; repetition penalty 2 on [2, −2, 1].
    const s = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    applyTopP(s, 0.75);
    expect(Array.from(s).map(Number.isFinite)).toEqual([true, true, false, false]);
    const r = Float32Array.from([2, -2, 1]);
    applyRepetitionPenalty(r, [0, 1, 1], 2);
    expect(Array.from(r)).toEqual([1, -4, 1]);
  });

  test("all together in HF's order", () => {
    const s = Float32Array.from(logits);
    processScores(s, prev, { doSample: true, temperature: 0.7, topK: 12, topP: 0.8, repetitionPenalty: 1.4 });
    const want = ref.topP(ref.topK(ref.repetition(logits, prev, 1.4).map((x) => x / 0.7), 12), 0.8);
    Array.from(s).forEach((x, i) => (Number.isFinite(want[i]) ? expect(x).toBeCloseTo(want[i], 5) : expect(x).toBe(-Infinity)));
    expect(Array.from(s).filter(Number.isFinite).length).toBeGreaterThan(1);
  });

  test("sampling draws follow softmax of the processed scores and never pick a removed token", () => {
    const s = Float32Array.from([1, 0.5, 0, -0.5, 3, -Infinity]);
    applyTopK(s, 4);
    const rng = new Rng(5);
    const counts = new Array(6).fill(0);
    const N = 20000;
    for (let i = 0; i < N; i++) counts[sample(s, rng)]++;
    const e = [1, 0.5, 0, 0, 3, 0].map((x, i) => (i === 3 || i === 5 ? 0 : Math.exp(x)));
    const z = e.reduce((a, b) => a + b, 0);
    counts.forEach((c, i) => expect(Math.abs(c / N - e[i] / z)).toBeLessThan(0.015));
    expect(counts[3] + counts[5]).toBe(0);
  });
});

describe("streaming", () => {
  test("each row's deltas add up to its final text; one last chunk per row, with the output", async () => {
    const texts = ["", "", ""];
    const last: (number | null)[] = [null, null, null];
    let chunks = 0;
    for await (const c of streamGenerate(model, tok, prompts, { maxNewTokens: 15, doSample: true, seed: 4, topK: 0 })) {
      expect(last[c.row]).toBeNull(); // nothing after a row's last chunk
      texts[c.row] += c.delta;
      if (c.finishReason) {
        last[c.row] = chunks;
        expect(c.output!.text).toBe(texts[c.row]);
        expect(c.output!.tokenIds[c.output!.tokenIds.length - 1]).toBe(c.tokenId);
      }
      chunks++;
    }
    expect(last.every((x) => x !== null)).toBe(true);
    const out = await generate(model, tok, prompts, { maxNewTokens: 15, doSample: true, seed: 4, topK: 0 });
    expect(out.map((o) => o.text)).toEqual(texts);
  });

  test("breaking out of the loop stops generation", async () => {
    let n = 0;
    for await (const c of streamGenerate(model, tok, "The", { maxNewTokens: 20 })) {
      n++;
      if (c.tokenId >= 0 && n === 3) break;
    }
    expect(n).toBe(3);
  });

  test("TextDeltas holds back an unfinished character and trailing spaces", () => {
    const d = new TextDeltas();
    expect(d.next("Hi \uFFFD", false)).toBe("Hi");
    expect(d.next("Hi 🤗 ", false)).toBe(" 🤗");
    expect(d.next("Hi 🤗 ,", false)).toBe(" ,");
    expect(d.next("Hi 🤗 , x  ", true)).toBe(" x  ");
  });
});

describe("configuration", () => {
  test("generation_config.json gives the defaults; options override it", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tk-gen-"));
    for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(tmp, f));
    fs.writeFileSync(path.join(tmp, "generation_config.json"), JSON.stringify({ max_new_tokens: 3, repetition_penalty: 5, pad_token_id: null }));
    const m = await AutoModelForCausalLM.fromPretrained(tmp, { warn: null });
    const [a] = await generate(m, tok, prompts[0]);
    expect(a.tokenIds).toEqual(refLoop(a.promptTokenIds, 3, 5));
    const [b] = await generate(m, tok, prompts[0], { maxNewTokens: 5, repetitionPenalty: 1 });
    expect(b.tokenIds).toEqual(refLoop(b.promptTokenIds, 5));
    // No generation_config.json: HF's max_length 20 counts the prompt.
    const [c] = await generate(model, tok, prompts[0]);
    expect(c.promptTokenIds.length + c.tokenIds.length).toBe(20);
    fs.rmSync(tmp, { recursive: true });
  });

  test("bad options and prompts are TunekitErrors naming what was wrong", async () => {
    const bad = async (o: object, p: unknown = "The", msg: RegExp) => {
      const e = await generate(model, tok, p as string, o).catch((x) => x);
      expect(e).toBeInstanceOf(TunekitError);
      expect(e.message).toMatch(msg);
    };
    await bad({ doSample: true, temperature: 0 }, "The", /temperature must be a number > 0.*doSample: false/);
    await bad({ topP: 1.5 }, "The", /topP must be a number in \(0, 1\]/);
    await bad({ topK: -1 }, "The", /topK must be an integer >= 0/);
    await bad({ maxNewTokens: 0 }, "The", /maxNewTokens must be an integer >= 1/);
    await bad({ maxNewTokens: 100 }, "The", /exceed the model's 64 positions/);
    await bad({}, [[1, 2, 99999]], /prompt 0 must be a string or a list of token ids in \[0, 557\)/);
    await bad({}, [], /non-empty list/);
    await bad({ stopStrings: [""] }, "The", /stopStrings must be a non-empty string/);
    await bad({ eosTokenId: 1e6 }, "The", /eosTokenId must be token ids/);
  });
});
