// generate() / streamGenerate(): HF's GenerationMixin.generate for greedy search and sampling. The
// prompts are left-padded into one batch, run once through the model (prefill, filling the key/value
// cache), then each step feeds every row's latest token alone through the cache. Rows stop on an EOS
// token, a stop string or the length limit; finished rows are fed the pad token until all are done.
import { TunekitError } from "../errors";
import { Rng, mixSeed } from "../data/rng";
import { noGrad } from "../tensor/autograd";
import { tidy } from "../tensor/tensor";
import type { ModelForCausalLM } from "../models/lm";
import type { Tokenizer } from "../data/tokenizer";
import { resolveGenerationConfig } from "./config";
import type { GenerationOptions, GenerationConfig } from "./config";
import { processScores, argmax, sample } from "./processors";
import { TextDeltas, stopStringEnd } from "./text";

/** A prompt: text (encoded with the tokenizer) or token ids. */
export type Prompt = string | number[];

/** Why a row ended: an EOS token, a stop string, or maxNewTokens / maxLength. */
export type FinishReason = "eos" | "stop_string" | "length";

/** One row's new token of one step, as streamGenerate hands it out. */
export interface GenerationChunk {
  /** Which prompt. */
  row: number;
  tokenId: number;
  /** New text since this row's previous chunk (possibly ""); a row's deltas add up to its final text. */
  delta: string;
  /** Set on the row's last chunk. */
  finishReason: FinishReason | null;
  /** On the row's last chunk: the row's whole output (what generate() returns for it). */
  output?: GenerationOutput;
}

export interface GenerationOutput {
  /** The new text (special tokens left out), without the prompt. */
  text: string;
  /** The new tokens, the final EOS included (as HF's sequences after the prompt). */
  tokenIds: number[];
  /** The prompt's tokens (without padding). */
  promptTokenIds: number[];
  finishReason: FinishReason;
}

type Model = Pick<ModelForCausalLM, "forward" | "newCache" | "config" | "sourceDir" | "training" | "train" | "eval">;

function promptList(prompts: Prompt | Prompt[]): Prompt[] {
  if (typeof prompts === "string") return [prompts];
  if (!Array.isArray(prompts) || prompts.length === 0) throw new TunekitError(`generate: expected a prompt (a string or token ids) or a non-empty list of them, got ${JSON.stringify(prompts)?.slice(0, 80)}`);
  if (prompts.every((p) => typeof p === "number")) return [prompts as number[]];
  return prompts as Prompt[];
}

async function encodePrompts(tokenizer: Tokenizer, prompts: Prompt[], cfg: GenerationConfig, V: number): Promise<number[][]> {
  const texts = prompts.map((p, i) => ({ p, i })).filter((x) => typeof x.p === "string");
  const encoded = texts.length ? (await tokenizer.encodeBatch(texts.map((x) => x.p as string), { addSpecialTokens: cfg.addSpecialTokens })).input_ids : [];
  const rows = prompts.map((p, i) => {
    if (typeof p === "string") return encoded[texts.findIndex((x) => x.i === i)];
    if (!Array.isArray(p) || !p.every((id) => Number.isInteger(id) && id >= 0 && id < V))
      throw new TunekitError(`generate: prompt ${i} must be a string or a list of token ids in [0, ${V}), got ${JSON.stringify(p)?.slice(0, 80)}`);
    return p;
  });
  // An empty prompt starts from BOS, as HF's generate does without inputs.
  return rows.map((r, i) => {
    if (r.length > 0) return r;
    if (cfg.bosTokenId === null) throw new TunekitError(`generate: prompt ${i} has no tokens and the model has no bos_token_id to start from`);
    return [cfg.bosTokenId];
  });
}

/**
 * Generates from each prompt, streaming: one chunk per row and step, in row order. Breaking out of the
 * loop stops generation (and frees the cache).
 */
export async function* streamGenerate(model: Model, tokenizer: Tokenizer, prompts: Prompt | Prompt[], options: GenerationOptions = {}): AsyncGenerator<GenerationChunk> {
  const cfg = resolveGenerationConfig(options, model, tokenizer);
  const V = model.config.vocabSize;
  const rows = await encodePrompts(tokenizer, promptList(prompts), cfg, V);
  const B = rows.length;
  const T0 = Math.max(...rows.map((r) => r.length));
  const maxNew = cfg.maxNewTokens ?? cfg.maxLength - T0;
  if (maxNew < 1) throw new TunekitError(`generate: the prompt has ${T0} tokens, already at maxLength ${cfg.maxLength}; set maxNewTokens`);
  const maxPos = model.config.maxPositions;
  if (T0 + maxNew > maxPos)
    throw new TunekitError(`generate: ${T0} prompt tokens + ${maxNew} new tokens exceed the model's ${maxPos} positions (max_position_embeddings); lower maxNewTokens or shorten the prompt`);

  const pad = cfg.padTokenId ?? 0; // any id: padding is masked out
  let inputIds = new Int32Array(B * T0).fill(pad);
  let attentionMask = new Uint8Array(B * T0);
  rows.forEach((r, b) => {
    inputIds.set(r, b * T0 + T0 - r.length);
    attentionMask.fill(1, b * T0 + T0 - r.length, (b + 1) * T0);
  });
  const seed = cfg.seed ?? Math.floor(Math.random() * 2 ** 32);
  const rngs = rows.map((_, b) => new Rng(mixSeed(seed, b))); // a row's draws do not depend on the other rows
  const history = rows.map((r) => [...r]);
  const generated: number[][] = rows.map(() => []);
  const texts = rows.map(() => "");
  const rawTexts = rows.map(() => "");
  const deltas = rows.map(() => new TextDeltas());
  const finished: (FinishReason | null)[] = rows.map(() => null);

  const cache = model.newCache(B, T0 + maxNew);
  const wasTraining = model.training;
  model.eval();
  try {
    let T = T0;
    for (let step = 0; step < maxNew; step++) {
      const x = { inputIds, attentionMask, batchSize: B, seqLen: T, cache };
      const logits = noGrad(() => tidy(() => Float32Array.from(model.forward(x, { lastTokenOnly: true }).logits.toHost())));
      const next = new Int32Array(B).fill(pad);
      for (let b = 0; b < B; b++) {
        if (finished[b]) continue;
        const scores = logits.subarray(b * V, (b + 1) * V);
        processScores(scores, history[b], cfg, step < cfg.minNewTokens ? cfg.eosTokenId : []);
        next[b] = cfg.doSample ? sample(scores, rngs[b]) : argmax(scores);
        generated[b].push(next[b]);
        history[b].push(next[b]);
      }
      const live = rows.map((_, b) => b).filter((b) => !finished[b]);
      // A model's vocab_size may exceed its tokenizer's (Qwen2.5: 151936 rows for 151665 tokens, padded
      // for the GPU): an id without a token adds no text, as HF's decode skips it.
      const known = live.map((b) => generated[b].filter((id) => id < tokenizer.vocabSize));
      const decoded = await tokenizer.decodeBatch(known, { skipSpecialTokens: true });
      // Stop strings are looked for with the special tokens written out, as HF's token strings have them ("<|im_end|>").
      const raw = cfg.stopStrings.length ? await tokenizer.decodeBatch(known) : null;
      for (const [k, b] of live.entries()) {
        texts[b] = decoded[k];
        const before = rawTexts[b].length;
        if (raw) rawTexts[b] = raw[k];
        const reason: FinishReason | null = cfg.eosTokenId.includes(next[b]) ? "eos"
          : raw && stopStringEnd(rawTexts[b], before, cfg.stopStrings) >= 0 ? "stop_string"
          : step === maxNew - 1 ? "length" : null;
        finished[b] = reason;
        const output = reason ? { text: texts[b], tokenIds: generated[b], promptTokenIds: rows[b], finishReason: reason } : undefined;
        yield { row: b, tokenId: next[b], delta: deltas[b].next(texts[b], reason !== null), finishReason: reason, ...(output && { output }) };
      }
      if (finished.every((f) => f)) break;
      inputIds = next;
      attentionMask = new Uint8Array(B).fill(1);
      T = 1;
    }
  } finally {
    cache.free();
    if (wasTraining) model.train();
  }
}

/**
 * Generates a continuation of each prompt (HF's model.generate + batch_decode of the new tokens).
 * Returns one output per prompt, in order.
 */
export async function generate(model: Model, tokenizer: Tokenizer, prompts: Prompt | Prompt[], options: GenerationOptions = {}): Promise<GenerationOutput[]> {
  const outputs: GenerationOutput[] = [];
  for await (const chunk of streamGenerate(model, tokenizer, prompts, options)) if (chunk.output) outputs[chunk.row] = chunk.output;
  return outputs;
}
